#!/usr/bin/env bash
# Run HERE (a machine with PyPI and Debian): packs into .device/ what scripts/device/gpu_bench.sh needs on
# the device tool's GPU machine, which has Python 3.12 with torch, numpy, pillow, rich, typer and safetensors
# but no network: the other wheels (same versions as .venv), the GL loader packages, and the ASTC
# encodings of the bundled material (encoded here, once, by astcenc).
#   bash scripts/device/prepare.sh            # then: device run, carry [".device"], see gpu_bench.sh
# KIT_PYTHON=3.11 KIT=/tmp/kit: wheels for another Python, elsewhere (to try gpu_bench.sh on this machine).
set -euo pipefail
cd "$(dirname "$0")/../.."
kit=$(realpath -m "${KIT:-.device}")
py=${KIT_PYTHON:-3.12}
[ -x .venv/bin/python ] || { echo "prepare: no .venv: run scripts/setup.sh first" >&2; exit 2; }
mkdir -p "$kit/whl" "$kit/gl" "$kit/cache"

# Wheels the device image lacks (its package list: the device tool's KINDS.md), pinned to what .venv runs
# (pure-Python ones need no platform tag). msgspec: DecoderShape; OpenEXR: the IBL environments.
pkgs=(moderngl glcontext glfw pyrr trimesh imgui-bundle astc-encoder-py archspec msgspec OpenEXR)
pins=$(.venv/bin/python -c "import importlib.metadata as m, sys; print(' '.join(f'{p}=={m.version(p)}' for p in sys.argv[1:]))" "${pkgs[@]}")
rm -f "$kit"/whl/*.whl
python3 -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: --python-version "$py" \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
  --platform any -d "$kit/whl" $pins 2>&1 | grep -v '^WARNING: Location' || true
[ "$(ls "$kit"/whl/*.whl | wc -l)" -eq ${#pkgs[@]} ] || { echo "prepare: expected ${#pkgs[@]} wheels in $kit/whl" >&2; exit 1; }

# GLVND and EGL loaders (the device tool's README: the GPU image may lack them; the driver brings the rest),
# and the X11 client libraries imgui-bundle's extension links against (a headless CUDA image has none).
if ! ls "$kit"/gl/*.deb "$kit"/x11/*.deb >/dev/null 2>&1; then
  mkdir -p "$kit/x11" /tmp/ngtc-apt-lists/partial
  o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/ngtc-apt-lists
     -oAPT::Sandbox::User=root)
  apt-get "${o[@]}" update -qq
  (cd "$kit/gl" && apt-get "${o[@]}" download -qq libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
  (cd "$kit/x11" && apt-get "${o[@]}" download -qq libx11-6 libxcb1 libxext6 libxau6 libxdmcp6 libbsd0 libmd0)
fi

# ASTC of the default material, through the viewer's own on-demand encoder, into the carried cache.
NGTC_CACHE="$kit/cache" .venv/bin/python -m viewer.cli bench --size 64x48 --frames 1 --warmup 0 \
  --max-seconds 1 --astc "${ASTC_BLOCKS:-4x4,12x12}" -o /tmp/ngtc-prepare-bench.json >/dev/null
du -sh "$kit"/*
