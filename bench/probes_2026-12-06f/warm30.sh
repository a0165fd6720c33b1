#!/bin/bash
# The warm start against free grids at about 30 s of two threads (60 s of one), bpp2.4, two sets side by side.
cd /work/main
D=bench/probes_2026-12-06f
V=base,method=warm,method=warm+lr_grids_refine=0.04+refine_lr_scale=1.0
run() { OMP_NUM_THREADS=1 .venv/bin/python -m models.bench_capacity $1 --preset bpp2.4 --seconds 60 --threads 1 --mips 5 --variants $V --out $D/warm30_$2.json > $D/warm30_$2.log 2>&1; }
run .cache/data/tiles tiles & run .cache/data/eval/stk-old-chest chest & wait
