#!/bin/bash
# BoomBox (2048x2048) top presets at 240 s of one thread (about the steps two threads give in 120 s), two at a time.
cd /work/main
M='.cache/data/BoomBoxWithAxes.mtlx.glb#materials[0]'
D=bench/probes_2026-12-06f
run() { OMP_NUM_THREADS=1 .venv/bin/python -m models.bench_capacity "$M" --preset $1 --seconds 240 --threads 1 --mips 5 --variants $2 --out $D/$3.json > $D/$3.log 2>&1; }
run bpp16 base boombox_bpp16_base & run bpp16 g0_paired=0.5 boombox_bpp16_paired50 & wait
run bpp12 base boombox_bpp12_base & run bpp16 g0_paired=0.25 boombox_bpp16_paired25 & wait
