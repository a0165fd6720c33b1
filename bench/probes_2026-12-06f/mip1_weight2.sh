#!/bin/bash
# Second round: the old chest's baselines and bpp1 on aluminium.
cd /work/main
D=bench/probes_2026-12-06f
A=.cache/data/eval/qt3d-aluminium-brushed
C=.cache/data/eval/stk-old-chest
run() { MIP1_WEIGHT=$3 OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python $D/mip1_weight.py $1 --preset $2 --steps 3000 --threads 1 --mips 5 --out $D/mip1w_$4_$2_k$3.json > $D/mip1w_$4_$2_k$3.log 2>&1; }
run $C bpp4 1 chest & run $A bpp1 2 aluminium & wait
run $C bpp2.4 1 chest & run $C bpp2.4 2 chest & wait
