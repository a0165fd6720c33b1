"""Bitrate presets: grid channels and cell sizes (mip-0 texels per grid cell, per axis).

Bits per texel of the grids = 4 * (c0 / s0^2 + c1 / s1^2); the synthesizer's fp16 weights and the
metadata add about 0.1 bpp at 1024x1024. Real rates are always measured from the stored file.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .spec import QUANT_BITS


@dataclass(frozen=True)
class Preset:
    name: str
    g0_channels: int
    g0_cell: int
    g1_channels: int
    g1_cell: int
    hidden_dim: int = 32
    num_residual_blocks: int = 4
    positional_encoding_levels: int = 10
    g0_sampling: str = "corners"  # see grid_sampler.py

    @property
    def grid_bpp(self) -> float:
        return QUANT_BITS * (self.g0_channels / self.g0_cell**2 + self.g1_channels / self.g1_cell**2)

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("bpp0.5", 4, 8, 8, 16),  # 0.375 bpp of grids
        Preset("bpp1", 12, 8, 16, 16),  # 1.0
        Preset("bpp2.4", 8, 4, 16, 16),  # 2.25
        Preset("bpp4", 12, 4, 16, 8),  # 4.0
        Preset("bpp8", 28, 4, 16, 8),  # 8.0
    )
}
DEFAULT_PRESET = "bpp2.4"


def nearest_preset(bpp: float) -> Preset:
    """The preset whose nominal rate (grids + ~0.1 bpp of weights) is nearest to `bpp`."""
    return min(PRESETS.values(), key=lambda p: abs(p.grid_bpp + 0.1 - bpp))


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None
