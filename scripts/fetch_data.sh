#!/usr/bin/env bash
# Fetch the real PBR sets used by tests and benchmarks (see ../shared/assets/README.md) into .cache/data/.
# The wheels are only unzipped, never installed: pypbr's wheel would add a top-level `tests` package.
set -euo pipefail
dest="${1:-$(dirname "$0")/../.cache/data}"
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
if [ -f "$dest/.done" ]; then exit 0; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download -q --no-deps -d "$tmp" pypbr==0.1.0b5 materialxgltf==1.39.5
unzip -q -o "$tmp"/pypbr-*.whl 'tests/data/*' -d "$tmp/pypbr"
unzip -q -o "$tmp"/materialxgltf-*.whl 'materialxgltf/data/BoomBoxWithAxes.mtlx.glb' -d "$tmp/mx"
rm -rf "$dest/rocks" "$dest/tiles"
cp -r "$tmp/pypbr/tests/data/rocks" "$tmp/pypbr/tests/data/tiles" "$dest/"
cp "$tmp/mx/materialxgltf/data/BoomBoxWithAxes.mtlx.glb" "$dest/"
touch "$dest/.done"
