#!/bin/bash
# bpp1, bpp2.4 and bpp4 with mip 1 weighing twice, 120 s each, two threads, one set at a time (run from a worktree of
# the commit that made them so); merged into the last full report of each set afterwards.
OUT=/work/main/bench/eval120_mip1w
for s in aluminium:.cache/data/eval/qt3d-aluminium-brushed chest:.cache/data/eval/stk-old-chest rocks:.cache/data/rocks \
         walnut:.cache/data/eval/qt3d-walnut snowrock:.cache/data/eval/stk-snow-rock tiles:.cache/data/tiles \
         'boombox:.cache/data/BoomBoxWithAxes.mtlx.glb#materials[0]'; do
  name=${s%%:*}; path=${s#*:}
  .venv/bin/python -m viewer.cli eval "$path" --seconds 120 --quality medium --astc-packing compact \
    --presets bpp1,bpp2.4,bpp4 --blocks 12x12 --out $OUT/$name > $OUT/$name.log 2>&1
  rm -rf $OUT/$name/astc $OUT/$name/ngtc $OUT/$name/compare_*.png
  mv $OUT/$name.log $OUT/$name/log.txt
done
