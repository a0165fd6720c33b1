#!/usr/bin/env bash
# Run ON the device tool's GPU machine, after scripts/device/prepare.sh here:
#   device run: command "bash scripts/device/gpu_bench.sh", carry [".device"]
# The shader parity tests on this GPU (its own compiler), then `ngtc bench` at 1920x1080 and
# 3840x2160 (issue 4's targets: neural on sample <= 3x ASTC, < 1 ms a frame) and at 1280x720 with --viewer
# (issue 5's: the viewer's whole frame at >= 60 fps in every mode).
# Results (JSON, one log) go to $OUT (the device tool's) or out/device/. FRAMES: frames per mode;
# BENCH_ARGS: more options (a quick try here: PYTHON=.venv/bin/python NGTC_KEEP_GL=1 KIT=/tmp/kit
# BENCH_ARGS="--size 64x48 --warmup 0" after KIT_PYTHON=3.11 KIT=/tmp/kit scripts/device/prepare.sh).
set -uo pipefail
cd "$(dirname "$0")/../.."
kit=$(realpath -m "${KIT:-.device}")
out=${OUT:-out/device}
py=${PYTHON:-python3}
mkdir -p "$out"
log="$out/log.txt"
ls "$kit"/whl/*.whl >/dev/null 2>&1 || { echo "gpu_bench: no $kit/whl: run scripts/device/prepare.sh here first" >&2; exit 2; }
if [ -z "${NGTC_KEEP_GL:-}" ]; then  # unpack the GL loaders over / (only on the throwaway device machine)
  for f in "$kit"/gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
# X11 client libraries (imgui-bundle needs them loaded, not a display): only those the system lacks, from
# /tmp/ngtc-libs, so that no newer system library is replaced by the kit's.
rm -rf /tmp/ngtc-x11 /tmp/ngtc-libs && mkdir -p /tmp/ngtc-x11 /tmp/ngtc-libs
for f in "$kit"/x11/*.deb; do dpkg -x "$f" /tmp/ngtc-x11; done
for so in /tmp/ngtc-x11/usr/lib/x86_64-linux-gnu/lib*.so.[0-9]; do
  ldconfig -p | grep -q "^[[:space:]]*$(basename "$so") " || cp -L "$so" /tmp/ngtc-libs/
done
export LD_LIBRARY_PATH="/tmp/ngtc-libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
echo "kit libraries used: $(ls /tmp/ngtc-libs | tr '\n' ' ')"
"$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/ngtc-site \
  "$kit"/whl/*.whl || exit 1
export PYTHONPATH="/tmp/ngtc-site:$PWD" PYTHONUNBUFFERED=1 NGTC_CACHE="$kit/cache"
egl=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
[ -f "$egl" ] && export __EGL_VENDOR_LIBRARY_FILENAMES="$egl"
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv 2>&1 || true; } | tee "$log"
"$py" -c "import moderngl; c = moderngl.create_standalone_context(backend='egl', require=430); print(c.info['GL_RENDERER'], c.info['GL_VERSION'])" 2>&1 | tee -a "$log"
status=0
# The shader parity tests with this GPU's own compiler.
"$py" -m pytest -q -p no:cacheprovider tests/test_shader_parity.py tests/test_bench_gpu.py 2>&1 | tee -a "$log"
status=$((status | PIPESTATUS[0]))
frames=${FRAMES:-200}
run() { "$py" -m viewer.cli bench --frames "$frames" --warmup 5 --astc 4x4,12x12 "$@" ${BENCH_ARGS:-} 2>&1 | tee -a "$log"; status=$((status | PIPESTATUS[0])); }
run -o "$out/bench_1080p.json"
run --4k -o "$out/bench_4k.json"
run --size 1280x720 --viewer -o "$out/bench_720p_viewer.json"
exit $status
