#!/bin/bash
# The BoomBox in full (every preset in one run, so that the machine's speed is one), bpp12 and bpp16 with 12 G1
# channels; run from a worktree of the commit that made them so.
OUT=/work/main/bench/eval120_g1x12/boombox_full
.venv/bin/python -m viewer.cli eval '.cache/data/BoomBoxWithAxes.mtlx.glb#materials[0]' --seconds 120 --quality medium \
  --astc-packing compact --out $OUT > $OUT.log 2>&1
rm -rf $OUT/astc $OUT/ngtc $OUT/compare_*.png
mv $OUT.log $OUT/log.txt
