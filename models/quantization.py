"""4-bit uniform quantization of grid features (training and storage); the codes' packing is the file's
(models/ngtc_file.py)."""

from __future__ import annotations

import torch

from .spec import QUANT_RANGE, QUANT_STEP


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
    Training's inputs are inside QUANT_RANGE already (free grids are clamped after every step, the
    encoder's end in tanh), so "noise" and "ste" do not clamp in the autograd graph: that clamp and its
    backward were ~8% of a fine-grid training step (docs/benchmarks.md). "ste" still rounds to the 16
    stored levels whatever its input.
    """
    if mode == "noise":
        return x + (torch.rand_like(x) - 0.5) * QUANT_STEP
    if mode == "ste":
        return x + (from_codes(to_codes(x.detach())) - x.detach())
    if mode == "none":
        return x.clamp(*QUANT_RANGE)
    raise ValueError(f"unknown quantization mode {mode!r}")
