#!/bin/bash
# Third round: mip 1 at 1.5 times its weight, and rocks.
cd /work/main
D=bench/probes_2026-12-06f
A=.cache/data/eval/qt3d-aluminium-brushed
C=.cache/data/eval/stk-old-chest
R=.cache/data/rocks
run() { MIP1_WEIGHT=$3 OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python $D/mip1_weight.py $1 --preset $2 --steps 3000 --threads 1 --mips 5 --out $D/mip1w_$4_$2_k$3.json > $D/mip1w_$4_$2_k$3.log 2>&1; }
run $A bpp4 1.5 aluminium & run $A bpp2.4 1.5 aluminium & wait
run $C bpp4 1.5 chest & run $C bpp2.4 1.5 chest & wait
run $A bpp1 1.5 aluminium & run $R bpp2.4 1 rocks & wait
run $R bpp2.4 1.5 rocks & run $R bpp4 1 rocks & wait
run $R bpp4 1.5 rocks & run $R bpp2.4 2 rocks & wait
