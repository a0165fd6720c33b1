#!/bin/bash
# BoomBox (2048x2048): bpp16's 4 extra bpp in a finer G1 (16 channels at cell 4, four times fewer rows than G0's, each
# read four times as often a step) instead of 4 more G0 channels; 240 s of one thread, two at a time.
cd /work/main
M='.cache/data/BoomBoxWithAxes.mtlx.glb#materials[0]'
D=bench/probes_2026-12-06g
run() { OMP_NUM_THREADS=1 .venv/bin/python -m models.bench_capacity "$M" --preset $1 --seconds 240 --threads 1 --mips 5 --variants $2 --out $D/$3.json > $D/$3.log 2>&1; }
run bpp12 base boombox_bpp12_base & run bpp16 g0_channels=12+g1_channels=16+g1_cell=4 boombox_bpp16_g1x16c4 & wait
run bpp16 base boombox_bpp16_base & run bpp16 g0_channels=14+g1_channels=8+g1_cell=4 boombox_bpp16_g0x14_g1x8c4 & wait
