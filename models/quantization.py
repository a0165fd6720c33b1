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


def rounded(x: torch.Tensor) -> torch.Tensor:
    """from_codes(to_codes(x)), the same bits, on one copy of x without the uint8 round trip (~4x faster)."""
    lo, hi = QUANT_RANGE
    return x.clamp(lo, hi).sub_(lo).div_(QUANT_STEP).round_().mul_(QUANT_STEP).add_(lo)


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
        return x + uniform_noise(x)
    if mode == "ste":
        d = x.detach()
        return x + rounded(d).sub_(d)
    if mode == "none":
        return x.clamp(*QUANT_RANGE)
    raise ValueError(f"unknown quantization mode {mode!r}")


NOISE_TABLE = 1 << 22  # values of uniform noise kept per device
_noise_tables: dict[torch.device, torch.Tensor] = {}


def uniform_noise(x: torch.Tensor) -> torch.Tensor:
    """Uniform noise in +-QUANT_STEP / 2 shaped like x: a slice of a fixed table, at a random offset.
    Drawing it afresh cost ~3.5 ns a value on CPU, most of a noise-mode quantization; which texels a batch
    reads changes every step, so no cell sees the same sequence twice."""
    n = x.numel()
    if n > NOISE_TABLE // 2:
        return (torch.rand_like(x) - 0.5) * QUANT_STEP
    table = _noise_tables.get(x.device)
    if table is None:
        # its own generator: the global one (seeded per fit) then draws the same offsets in every fit
        values = torch.rand(NOISE_TABLE, generator=torch.Generator().manual_seed(0))
        table = _noise_tables[x.device] = ((values - 0.5) * QUANT_STEP).to(x.device)
    start = int(torch.randint(0, NOISE_TABLE - n + 1, ()))
    return table[start:start + n].view_as(x).to(x.dtype)
