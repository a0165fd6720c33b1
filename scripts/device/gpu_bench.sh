#!/usr/bin/env bash
# Run ON the device tool's GPU machine, after scripts/device/prepare.sh here:
#   device run: command "bash scripts/device/gpu_bench.sh", carry [".device"]
# The shader parity tests on this GPU (its own compiler; decode on feedback's tiles too), the decoder's throughput
# in compute (python -m viewer.bench_decode: texels decoded per second, GFLOP/s against the chip's FP32 peak), then
# `ngtc bench` in every mode (reference, ASTC, neural on sample, on load, on feedback, transcoded to ASTC) at
# 1920x1080 and 3840x2160 (issue 4: on sample <= 3x ASTC; issue 11: feedback steady <= 1.5x ASTC, orbit p95 <= 3x,
# transcoded within 1.1x ASTC at the same bytes) and at 1280x720 with --viewer (issues 5 and 11: the viewer's
# whole frame at >= 60 fps in every mode).
# Results (JSON, one log) go to $OUT (the device tool's) or out/device/. FRAMES: frames per mode;
# BENCH_ARGS / DECODE_ARGS: more options for ngtc bench / bench_decode (a quick try here:
# PYTHON=.venv/bin/python NGTC_KEEP_GL=1 KIT=/tmp/kit BENCH_ARGS="--size 64x48 --warmup 0"
# DECODE_ARGS="--mip 5 --repeats 2" TESTS=tests/test_feedback.py after KIT_PYTHON=3.11 KIT=/tmp/kit
# scripts/device/prepare.sh; TESTS: the test files to run instead of the parity, feedback and bench tests).
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
"$py" -m pytest -q -p no:cacheprovider ${TESTS:-tests/test_shader_parity.py tests/test_feedback.py tests/test_bench_gpu.py} \
  2>&1 | tee -a "$log"
status=$((status | PIPESTATUS[0]))
# The decoder in compute: what decode on load and on feedback run, and what carries over between GPUs.
"$py" -m viewer.bench_decode -o "$out/decode_compute.json" ${DECODE_ARGS:-} 2>&1 | tee -a "$log"
status=$((status | PIPESTATUS[0]))
frames=${FRAMES:-200}
# A mode stops after MAX_SECONDS (on-sample trilinear at 4K can be slow): the three runs fit the device tool's 10 minutes.
run() { "$py" -m viewer.cli bench --frames "$frames" --warmup 5 --max-seconds "${MAX_SECONDS:-10}" --astc 4x4,12x12 "$@" ${BENCH_ARGS:-} 2>&1 | tee -a "$log"; status=$((status | PIPESTATUS[0])); }
run -o "$out/bench_1080p.json"
run --4k -o "$out/bench_4k.json"
run --size 1280x720 --viewer -o "$out/bench_720p_viewer.json"
exit $status
