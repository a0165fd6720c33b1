#!/bin/bash
# A second full 120-s run of the two sets whose targets hold by the thinnest margins (aluminium's mip 1, the old
# chest's mip 0), on commit 382f0e0, to measure how far a run's BD-rate moves: two threads, one set at a time.
cd /work/main
OUT=bench/eval120_rerun
for s in aluminium:.cache/data/eval/qt3d-aluminium-brushed chest:.cache/data/eval/stk-old-chest; do
  name=${s%%:*}; path=${s#*:}
  .venv/bin/python -m viewer.cli eval "$path" --seconds 120 --quality medium --astc-packing compact \
    --out $OUT/$name > $OUT/$name.log 2>&1
  rm -rf $OUT/$name/astc $OUT/$name/ngtc $OUT/$name/compare_*.png
  mv $OUT/$name.log $OUT/$name/log.txt
done
