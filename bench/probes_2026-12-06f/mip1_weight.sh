#!/bin/bash
# Aluminium's mip 1: bpp2.4 and bpp4 at 3000 steps with mip 1 at 1 and 2 times its weight, one thread a run, two at a time.
cd /work/main
D=bench/probes_2026-12-06f
A=.cache/data/eval/qt3d-aluminium-brushed
run() { MIP1_WEIGHT=$3 OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python $D/mip1_weight.py $1 --preset $2 --steps 3000 --threads 1 --mips 5 --out $D/mip1w_$4_$2_k$3.json > $D/mip1w_$4_$2_k$3.log 2>&1; }
run $A bpp2.4 2 aluminium & run $A bpp4 2 aluminium & wait
run $A bpp4 1 aluminium & run .cache/data/eval/stk-old-chest bpp4 2 chest & wait
