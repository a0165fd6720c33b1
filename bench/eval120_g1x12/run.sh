#!/bin/bash
# bpp12 and bpp16 with 12 G1 channels (8 before), 120 s each, two threads, one set at a time, run from a worktree of
# the commit that made them so; merged into each set's standing report afterwards.
OUT=/work/main/bench/eval120_g1x12
for s in 'boombox:.cache/data/BoomBoxWithAxes.mtlx.glb#materials[0]' chest:.cache/data/eval/stk-old-chest \
         tiles:.cache/data/tiles snowrock:.cache/data/eval/stk-snow-rock rocks:.cache/data/rocks \
         aluminium:.cache/data/eval/qt3d-aluminium-brushed walnut:.cache/data/eval/qt3d-walnut; do
  name=${s%%:*}; path=${s#*:}
  .venv/bin/python -m viewer.cli eval "$path" --seconds 120 --quality medium --astc-packing compact \
    --presets bpp12,bpp16 --blocks 12x12 --out $OUT/$name > $OUT/$name.log 2>&1
  rm -rf $OUT/$name/astc $OUT/$name/ngtc $OUT/$name/compare_*.png
  mv $OUT/$name.log $OUT/$name/log.txt
done
