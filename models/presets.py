"""Bitrate presets: a name and a DecoderShape (grid channels and cell sizes, the synthesizer).

Bits per texel of the grids = 4 * (c0 / s0^2 + c1 / s1^2) (`DecoderShape.grid_bits_per_texel`); the
synthesizer's fp16 weights and the metadata come on top (`nominal_bpp`). Real rates are always measured
from the stored file.
"""

from __future__ import annotations

from dataclasses import dataclass

from .decoder_shape import DecoderShape, decoder_shape

# Bytes a file spends beside the grids at the default synthesizer: fp16 weights (~2.9k of them for 7
# channels) plus the metadata JSON and headers; measured on the bundled tiles.ngtc (313,566 bytes for
# 294,912 bytes of grid codes at 1024x1024).
OVERHEAD_BYTES = 18_700


@dataclass(frozen=True)
class Preset:
    name: str
    shape: DecoderShape

    def nominal_bpp(self, width: int = 1024, height: int = 1024) -> float:
        """The rate a file of this preset has, about: grids plus the fixed cost of weights and metadata."""
        return self.shape.grid_bits_per_texel + OVERHEAD_BYTES * 8 / (width * height)


def preset(name: str, g0_channels: int, g0_cell: int, g1_channels: int, g1_cell: int, *, hidden_dim: int = 32,
           num_residual_blocks: int = 4, positional_encoding_levels: int = 10, g0_sampling: str = "corners") -> Preset:
    """A preset from its grid pair; the synthesizer defaults are the paper's (hidden 32, 4 blocks, 10 levels)."""
    return Preset(name, decoder_shape(g0_channels=g0_channels, g0_cell=g0_cell, g1_channels=g1_channels,
                                      g1_cell=g1_cell, hidden_dim=hidden_dim, num_residual_blocks=num_residual_blocks,
                                      positional_encoding_levels=positional_encoding_levels, g0_sampling=g0_sampling))


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        preset("bpp0.5", 4, 8, 8, 16),  # 0.375 bpp of grids
        preset("bpp1", 12, 8, 16, 16),  # 1.0
        preset("bpp2.4", 8, 4, 16, 16),  # 2.25
        preset("bpp4", 12, 4, 16, 8),  # 4.0
        preset("bpp8", 28, 4, 16, 8),  # 8.0
    )
}
DEFAULT_PRESET = "bpp2.4"


def nearest_preset(bpp: float) -> Preset:
    """The preset whose nominal rate at 1024x1024 is nearest to `bpp`."""
    return min(PRESETS.values(), key=lambda p: abs(p.nominal_bpp() - bpp))


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None
