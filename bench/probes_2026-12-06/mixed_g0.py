"""Probe: G0 with mixed bits per channel, training only, through bench_capacity.

    MIX4=2 OMP_NUM_THREADS=1 python bench/probes_2026-12-06/mixed_g0.py MATERIAL --preset bpp4 --steps N \
        --threads 1 --mips 5 --variants base,g0_channels=6 --out F

A 4-bit G0 of MIX_CHANNELS (6) channels is read as MIX4 channels of 4-bit codes and the rest at 2 bits: 2 x 4 + 4 x 2
= 16 bits a cell, bpp4's 4 x 4. The precise channels keep smooth materials' values, the 2-bit ones give noisy
materials more features (2-bit 8 channels: rocks +1.3 dB at 120 s, aluminium -1.7). Rounding, training noise and the
pyramids' deep levels use each channel's step; the pyramid levels' own noise keeps the 4-bit step (coarse mips, noise
phase only).
"""

from __future__ import annotations

import os
import sys

import torch

from models import bench_capacity, pyramid_atlas, quantization
from models.spec import QUANT_RANGE, quant_step

MIX_CHANNELS = int(os.environ.get("MIX_CHANNELS", "6"))
MIX4 = int(os.environ.get("MIX4", "2"))
_rounded, _noise = quantization.rounded, quantization.uniform_noise
_steps: dict = {}


def mixed(x: torch.Tensor, bits: int) -> bool:
    return bits == 4 and x.shape[-1] == MIX_CHANNELS


def steps(x: torch.Tensor) -> torch.Tensor:
    key = (x.device, x.dtype)
    if key not in _steps:
        _steps[key] = torch.tensor([quant_step(4)] * MIX4 + [quant_step(2)] * (MIX_CHANNELS - MIX4),
                                   device=x.device, dtype=x.dtype)
    return _steps[key]


def rounded(x: torch.Tensor, bits: int = 4) -> torch.Tensor:
    if not mixed(x, bits):
        return _rounded(x, bits)
    lo, hi = QUANT_RANGE
    step = steps(x)
    return x.clamp(lo, hi).sub_(lo).div_(step).round_().mul_(step).add_(lo)


def uniform_noise(x: torch.Tensor, bits: int = 4) -> torch.Tensor:
    if not mixed(x, bits):
        return _noise(x, bits)
    return (torch.rand_like(x) - 0.5) * steps(x)


quantization.rounded = rounded
quantization.uniform_noise = uniform_noise
pyramid_atlas.rounded = rounded

if __name__ == "__main__":
    sys.argv[0] = "bench_capacity"
    bench_capacity.main()
