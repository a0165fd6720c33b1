#!/usr/bin/env bash
# Run ON the device tool's GPU machine, after scripts/device/prepare.sh here:
#   device run: command "bash scripts/device/gpu_bench.sh", carry [".device", ".cache/data/rocks"]
# The working tree that travels must stay under 64 MiB: take bench/ out of the index for the call (docs/benchmarks.md).
# Stages (STAGES, all by default: "fit tests decode bench bench-4k"; each under its own time limit): what a 10-s
# fit reaches on this GPU (issue 10), the shader parity tests with its own compiler (decode on feedback's tiles
# too), the decoder's throughput in compute (python -m viewer.bench_decode: texels decoded per second, GFLOP/s
# against the chip's FP32 peak, per weights block), then `ngtc bench` in every mode (reference, ASTC, neural on
# sample, on load, on feedback, transcoded to ASTC) at 1920x1080 and 3840x2160 (issue 4: on sample <= 3x ASTC;
# issue 11: feedback steady <= 1.5x ASTC, orbit p95 <= 3x, transcoded within 1.1x ASTC at the same bytes) and at
# 1280x720 with --viewer (issues 5 and 11: the viewer's whole frame at >= 60 fps in every mode).
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
# compiled at install: a module compiled later (pyrr) prints SyntaxWarnings into every CLI's stderr
"$py" -m pip install -q --no-index --no-deps --no-cache-dir --upgrade --target /tmp/ngtc-site \
  "$kit"/whl/*.whl || exit 1
export PYTHONPATH="/tmp/ngtc-site:$PWD" PYTHONUNBUFFERED=1 NGTC_CACHE="$kit/cache"
egl=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
[ -f "$egl" ] && export __EGL_VENDOR_LIBRARY_FILENAMES="$egl"
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv 2>&1 || true; } | tee "$log"
"$py" -c "import moderngl; c = moderngl.create_standalone_context(backend='egl', require=430); print(c.info['GL_RENDERER'], c.info['GL_VERSION'])" 2>&1 | tee -a "$log"
status=0
stages=" ${STAGES:-fit tests decode bench bench-4k} "  # a subset, e.g. STAGES="decode bench", when device time is short
# stage NAME SECONDS CMD...: run CMD when NAME is among the stages, stopped after SECONDS, logged; its exit status counts.
stage() {
  local name=$1 limit=$2; shift 2
  [[ $stages == *" $name "* ]] || return 0
  echo "== $name: $*" | tee -a "$log"
  timeout "$limit" "$@" 2>&1 | tee -a "$log"
  status=$((status | PIPESTATUS[0]))
}
# Issue 10: what a 10-s fit reaches on this GPU (rocks, 1024x1024, carried as .cache/data/rocks), decoded from the
# stored bytes, against the 120 s on 2 CPU cores of docs/benchmarks.md. A fit step is launch-bound at the CPU's
# batch, so larger batches are tried; the first variant (seed=1) only warms CUDA up.
fit=("$py" -m models.bench_capacity .cache/data/rocks --device cuda --seconds "${FIT_SECONDS:-10}" --stored --mips 5)
if [ -d .cache/data/rocks ]; then
  stage fit 200 "${fit[@]}" --preset bpp2.4 --out "$out/fit_rocks_bpp2.4.json" \
    --variants seed=1,base,batch=32768,batch=65536,batch=131072,batch=65536+deterministic=0
  stage fit 100 "${fit[@]}" --preset bpp16 --variants seed=1,batch=65536,batch=131072 --out "$out/fit_rocks_bpp16.json"
elif [[ $stages == *" fit "* ]]; then
  echo "== fit: skipped, .cache/data/rocks was not carried" | tee -a "$log"
fi
# The shader parity tests with this GPU's own compiler.
stage tests 300 "$py" -m pytest -q -p no:cacheprovider \
  ${TESTS:-tests/test_shader_parity.py tests/test_feedback.py tests/test_bench_gpu.py}
# The decoder in compute: what decode on load and on feedback run, and what carries over between GPUs; the weights
# in a uniform block or a storage buffer, the MLP unrolled or as loops.
stage decode 120 "$py" -m viewer.bench_decode -o "$out/decode_compute.json" \
  --variants default,ubo,ssbo,no-unroll ${DECODE_ARGS:-}
# ngtc bench: a mode stops after MAX_SECONDS; the on-sample modes (the decoder in fragment shaders, 8 decodes a pixel
# trilinear) run apart, with few frames, and again with their weights in a storage buffer (NGTC_WEIGHTS_BLOCK).
frames=${FRAMES:-200}
bench=("$py" -m viewer.cli bench --warmup 1 --max-seconds "${MAX_SECONDS:-10}" --astc 4x4,12x12)
fast=reference,astc-4x4,astc-12x12,neural,neural-feedback,neural-astc-4x4,neural-astc-12x12
slow=neural-trilinear,neural-stochastic
stage bench 120 "${bench[@]}" --frames "$frames" --modes "$fast" -o "$out/bench_1080p.json" ${BENCH_ARGS:-}
stage bench 90 "${bench[@]}" --frames 3 --modes "$slow" -o "$out/bench_1080p_on_sample.json" ${BENCH_ARGS:-}
stage bench 90 env NGTC_WEIGHTS_BLOCK=ssbo "${bench[@]}" --frames 3 --modes "$slow" \
  -o "$out/bench_1080p_on_sample_ssbo.json" ${BENCH_ARGS:-}
stage bench-4k 120 "${bench[@]}" --4k --frames "$frames" --modes "$fast" -o "$out/bench_4k.json" ${BENCH_ARGS:-}
stage bench-4k 120 "${bench[@]}" --size 1280x720 --viewer --frames "$frames" -o "$out/bench_720p_viewer.json" \
  ${BENCH_ARGS:-}
exit $status
