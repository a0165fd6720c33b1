#!/usr/bin/env bash
# One-time set-up on a fresh machine (idempotent): system packages, a virtualenv in .venv with the
# project installed, and the real PBR sets used by tests and benchmarks in .cache/data. It ends by proving
# that what the viewer and the tests need works (an OpenGL 4.3 context through EGL, Xvfb, astcenc), and
# fails, saying what is missing, when it does not: under CI a test skipped for want of it fails the run too.
set -euo pipefail
cd "$(dirname "$0")/.."
# Debian packages: Mesa's EGL and llvmpipe (headless OpenGL 4.3: the viewer, its renders and the GL tests),
# Xvfb (the viewer's window test), astcenc (a second ASTC decoder the tests compare against) and Chromium (headless:
# the test that renders a library's library.html), gcc (training's C kernels, models/native_build.py).
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"; }
need=()
if command -v dpkg-query >/dev/null; then
  for pkg in libegl1 libegl-mesa0 libgl1-mesa-dri; do installed "$pkg" || need+=("$pkg"); done
fi
command -v astcenc >/dev/null || need+=(astcenc)
command -v Xvfb >/dev/null || need+=(xvfb xauth)
command -v chromium >/dev/null || need+=(chromium)
command -v gcc >/dev/null || need+=(gcc)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "setup: not root, cannot apt-get install ${need[*]} (checked below)" >&2
  fi
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
# torch is pinned: 2.13.0 is the CPU build on this machine's disk; an unpinned torch pulls a multi-GB CUDA build.
.venv/bin/python -m pip install -q --disable-pip-version-check torch==2.13.0 -e '.[dev]' 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/python -c "import torch, moderngl, ray, models, viewer" || { echo "setup: install failed" >&2; exit 1; }
bash scripts/fetch_data.sh
# Prove it: a headless OpenGL 4.3 context, the binaries, the data.
missing=()
if ! gl=$(.venv/bin/python -c "
import moderngl
ctx = moderngl.create_standalone_context(backend='egl', require=430)
print(ctx.info['GL_RENDERER'], ctx.info['GL_VERSION'])
ctx.release()" 2>&1); then
  missing+=("headless OpenGL 4.3 through EGL ($(echo "$gl" | tail -n 1)): Mesa's EGL and llvmpipe, apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri")
fi
command -v Xvfb >/dev/null || missing+=("Xvfb: apt-get install xvfb xauth")
command -v astcenc >/dev/null || missing+=("astcenc: apt-get install astcenc")
command -v chromium >/dev/null || missing+=("headless Chromium: apt-get install chromium")
for kernel in native_reads native_synthesizer native_grid_adam; do
  .venv/bin/python -m "models.$kernel" >/dev/null 2>&1 \
    || missing+=("training's C kernel models/$kernel.py (.venv/bin/python -m models.$kernel says why): apt-get install gcc")
done
[ -f .cache/data/.done ] || missing+=("the test data in .cache/data: bash scripts/fetch_data.sh")
if [ ${#missing[@]} -gt 0 ]; then
  printf 'setup: missing %s\n' "${missing[@]}" >&2
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing did not make it work (packages above: installed, yet unusable?)" >&2
  else
    echo "setup: run this script as root to install the packages" >&2
  fi
  exit 1
fi
echo "setup: ok ($gl)"
