"""Probe: soft rounding (Agustsson & Theis 2020, "Universally Quantized Neural Compression") in place of uniform
noise for the quantization the free grids' gathered cells see in the noise part of a fit.

    SOFT_ALPHA=1,16 OMP_NUM_THREADS=1 python bench/probes_2026-12-05g/soft_round.py MATERIAL --preset P \
        --steps N --threads 1 --mips 5 --variants base --out F

The noise phase's quantization becomes s_a(s_a(c) + u) in code units (c = (x - lo) / step, u uniform in +-1/2),
a annealed geometrically from SOFT_ALPHA's first value to its second over the phase; straight-through after it
as before. Pyramid levels (coarse mips) keep the float-grid-plus-noise stand-in.
"""

from __future__ import annotations

import math
import os
import sys

import torch

from models import bench_capacity, compression_model, fit, quantization
from models.spec import QUANT_RANGE, quant_levels, quant_step

A0, A1 = (float(v) for v in os.environ.get("SOFT_ALPHA", "1,16").split(","))
NOISE_SHARE = 0.6
state = {"local": 0.0}
_cosine = fit.cosine


def tracked_cosine(fraction: float, floor: float) -> float:
    state["local"] = fraction
    return _cosine(fraction, floor)


def soft(c: torch.Tensor, alpha: float) -> torch.Tensor:
    f = torch.floor(c)
    r = c - f - 0.5
    return f + 0.5 + 0.5 * torch.tanh(alpha * r) / math.tanh(alpha / 2)


_quantize = quantization.quantize


def soft_quantize(x: torch.Tensor, mode: str, bits: int = 4) -> torch.Tensor:
    if mode != "noise":
        return _quantize(x, mode, bits)
    t = min(state["local"] / NOISE_SHARE, 1.0)
    alpha = A0 * (A1 / A0) ** t
    lo, step, top = QUANT_RANGE[0], quant_step(bits), quant_levels(bits) - 1
    c = (x - lo) / step
    u = torch.rand_like(c) - 0.5
    q = soft(soft(c, alpha) + u, alpha).clamp(0, top)
    return q * step + lo


fit.cosine = tracked_cosine
compression_model.quantize = soft_quantize

if __name__ == "__main__":
    sys.argv[0] = "bench_capacity"
    bench_capacity.main()
