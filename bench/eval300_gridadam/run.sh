#!/bin/bash
# bpp2.4 at 300 s on the three sets whose 30-s gap the issue tracks (tiles, the old chest) and rocks, one at a time,
# two threads, beside the 30- and 120-s fits of docs/benchmarks.md.
cd /work/main
for s in rocks:.cache/data/rocks tiles:.cache/data/tiles chest:.cache/data/eval/stk-old-chest; do
  name=${s%%:*}; path=${s#*:}
  .venv/bin/python -m viewer.cli eval "$path" --seconds 300 --quality medium --astc-packing compact --presets bpp2.4 \
    --blocks 4x4 --out bench/eval300_gridadam/$name > bench/eval300_gridadam/$name.log 2>&1
  rm -rf bench/eval300_gridadam/$name/{astc,ngtc} bench/eval300_gridadam/$name/compare_*.png
  mv bench/eval300_gridadam/$name.log bench/eval300_gridadam/$name/log.txt
done
