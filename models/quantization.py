"""Uniform quantization of grid features to `bits`-bit codes (training and storage): 2^bits levels spanning
QUANT_RANGE, 4 bits by default (the paper's); each grid has its own width (DecoderShape.g0_bits, .g1_bits). The
codes' packing is the file's (models/ngtc_file.py). In training a grid's bits may differ per channel (`GridBits`: G0's
digit pairs, models/digit_pairs.py)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from .spec import QUANT_BITS, QUANT_RANGE, quant_step

GridBits = int | tuple[int, ...]  # a grid's bits per feature, or per channel


def feature_step(bits: GridBits, device: torch.device, dtype: torch.dtype = torch.float32) -> float | torch.Tensor:
    """The distance between neighbouring feature values: a number, or per channel (C,) where `bits` is per channel
    (it then scales the last axis of a grid or of its gathered cells)."""
    return quant_step(bits) if isinstance(bits, int) else _steps(bits, device, dtype)


@functools.lru_cache(maxsize=64)
def _steps(bits: tuple[int, ...], device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Per-channel steps, made once per device (read only)."""
    return torch.tensor([quant_step(b) for b in bits], device=device, dtype=dtype)


def to_codes(x: torch.Tensor, bits: GridBits = QUANT_BITS) -> torch.Tensor:
    """Float features -> integer codes 0 .. 2^bits - 1 (nearest level)."""
    lo, hi = QUANT_RANGE
    return torch.round((x.clamp(lo, hi) - lo) / feature_step(bits, x.device, x.dtype)).to(torch.uint8)


def from_codes(codes: torch.Tensor, bits: GridBits = QUANT_BITS) -> torch.Tensor:
    """Integer codes -> the float feature values the decoder sees."""
    return codes.to(torch.float32) * feature_step(bits, codes.device) + QUANT_RANGE[0]


def rounded(x: torch.Tensor, bits: GridBits = QUANT_BITS) -> torch.Tensor:
    """from_codes(to_codes(x)), the same bits, on one copy of x without the uint8 round trip (~4x faster)."""
    lo, hi = QUANT_RANGE
    step = feature_step(bits, x.device, x.dtype)
    return x.clamp(lo, hi).sub_(lo).div_(step).round_().mul_(step).add_(lo)


def quantize(x: torch.Tensor, mode: str, bits: GridBits = QUANT_BITS) -> torch.Tensor:
    """Quantization as seen in training.

    "noise": additive uniform noise of one quantization step of `bits`-bit codes (a differentiable proxy, early
    training);
    "ste": hard rounding with a straight-through gradient (late training, matches the stored codes);
    "none": the clamped float features.
    Training's inputs are inside QUANT_RANGE already (free grids are clamped after every step, the
    encoder's end in tanh), so "noise" and "ste" do not clamp in the autograd graph: that clamp and its
    backward were ~8% of a fine-grid training step (docs/benchmarks.md). "ste" still rounds to the 2^bits
    stored levels whatever its input.
    """
    if mode == "noise":
        return x + uniform_noise(x, bits)
    if mode == "ste":
        d = x.detach()
        return x + rounded(d, bits).sub_(d)
    if mode == "none":
        return x.clamp(*QUANT_RANGE)
    raise ValueError(f"unknown quantization mode {mode!r}")


@dataclass(frozen=True)
class Quantizer:
    """`quantize` in one mode for one grid's bits, as a transform of gathered cells: what a fused read
    (models/native_reads.py) needs to know to do it itself."""
    mode: str
    bits: GridBits = QUANT_BITS

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return quantize(x, self.mode, self.bits)


NOISE_TABLE = 1 << 22  # values of uniform noise kept per device
_noise_tables: dict[tuple[torch.device, int], torch.Tensor] = {}


def uniform_noise(x: torch.Tensor, bits: GridBits = QUANT_BITS) -> torch.Tensor:
    """Uniform noise in +-quant_step(bits) / 2 shaped like x: a slice of a fixed table, at a random offset.
    Drawing it afresh cost ~3.5 ns a value on CPU, most of a noise-mode quantization; which texels a batch
    reads changes every step, so no cell sees the same sequence twice. Per-channel bits: the 1-bit table's noise
    (a step of 2) scaled per channel."""
    if not isinstance(bits, int):
        return uniform_noise(x, 1) * (feature_step(bits, x.device, x.dtype) / quant_step(1))
    n, step = x.numel(), quant_step(bits)
    if n > NOISE_TABLE // 2:
        return (torch.rand_like(x) - 0.5) * step
    table = _noise_tables.get((x.device, bits))
    if table is None:
        # its own generator: the global one (seeded per fit) then draws the same offsets in every fit
        values = torch.rand(NOISE_TABLE, generator=torch.Generator().manual_seed(0))
        table = _noise_tables[(x.device, bits)] = ((values - 0.5) * step).to(x.device)
    start = int(torch.randint(0, NOISE_TABLE - n + 1, ()))
    return table[start:start + n].view_as(x).to(x.dtype)
