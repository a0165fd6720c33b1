#!/bin/bash
# The BoomBox's top presets with 8 times mip 0's texels a step (4 now), 240 s of one thread, two at a time.
cd /work/main
M='.cache/data/BoomBoxWithAxes.mtlx.glb#materials[0]'
D=bench/probes_2026-12-06f
run() { OMP_NUM_THREADS=1 .venv/bin/python -m models.bench_capacity "$M" --preset $1 --seconds 240 --threads 1 --mips 5 --variants $2 --out $D/$3.json > $D/$3.log 2>&1; }
run bpp16 mip0_boost=8 boombox_bpp16_boost8 & run bpp12 mip0_boost=8 boombox_bpp12_boost8 & wait
