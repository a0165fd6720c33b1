"""4-bit uniform quantization of grid features, and packing of the codes two per byte."""

from __future__ import annotations

import numpy as np
import torch

from .spec import QUANT_LEVELS, QUANT_RANGE, QUANT_STEP


def to_codes(x: torch.Tensor) -> torch.Tensor:
    """Float features -> integer codes 0 .. QUANT_LEVELS-1 (nearest level)."""
    lo, hi = QUANT_RANGE
    return torch.round((x.clamp(lo, hi) - lo) / QUANT_STEP).to(torch.uint8)


def from_codes(codes: torch.Tensor) -> torch.Tensor:
    """Integer codes -> the float feature values the decoder sees."""
    return codes.to(torch.float32) * QUANT_STEP + QUANT_RANGE[0]


def quantize(x: torch.Tensor, mode: str) -> torch.Tensor:
    """Quantization as seen in training.

    "noise": additive uniform noise of one quantization step (a differentiable proxy, early training);
    "ste": hard rounding with a straight-through gradient (late training, matches the stored codes);
    "none": the clamped float features.
    """
    lo, hi = QUANT_RANGE
    x = x.clamp(lo, hi)
    if mode == "noise":
        return x + (torch.rand_like(x) - 0.5) * QUANT_STEP
    if mode == "ste":
        return x + (from_codes(to_codes(x)) - x).detach()
    if mode == "none":
        return x
    raise ValueError(f"unknown quantization mode {mode!r}")


def pack_nibbles(codes: np.ndarray) -> np.ndarray:
    """(..., C) codes (C even) -> (..., C/2) bytes; code 2k in the low nibble, 2k+1 in the high one."""
    if codes.shape[-1] % 2:
        raise ValueError("grid channels must be even to pack 4-bit codes")
    if codes.max(initial=0) >= QUANT_LEVELS:
        raise ValueError("codes out of range")
    c = codes.astype(np.uint8)
    return (c[..., 0::2] | (c[..., 1::2] << 4)).astype(np.uint8)


def unpack_nibbles(packed: np.ndarray) -> np.ndarray:
    """Inverse of pack_nibbles."""
    out = np.empty(packed.shape[:-1] + (packed.shape[-1] * 2,), np.uint8)
    out[..., 0::2] = packed & 0x0F
    out[..., 1::2] = packed >> 4
    return out
