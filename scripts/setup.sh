#!/usr/bin/env bash
# One-time set-up on a fresh machine (idempotent): system packages, a virtualenv in .venv with the
# project installed, and the real PBR sets used by tests and benchmarks in .cache/data.
set -euo pipefail
cd "$(dirname "$0")/.."
# Debian's astcenc (a second ASTC decoder the tests compare against) and Xvfb (viewer tests).
need=()
command -v astcenc >/dev/null || need+=(astcenc)
command -v Xvfb >/dev/null || need+=(xvfb xauth)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "setup: not root, skipping apt-get install ${need[*]} (the tests that need them will skip)" >&2
  fi
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
# torch is pinned: 2.13.0 is the CPU build on this machine's disk; an unpinned torch pulls a multi-GB CUDA build.
.venv/bin/python -m pip install -q --disable-pip-version-check torch==2.13.0 -e '.[dev]' 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/python -c "import torch, moderngl, models, viewer" || { echo "setup: install failed" >&2; exit 1; }
bash scripts/fetch_data.sh
