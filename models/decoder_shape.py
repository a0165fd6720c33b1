"""DecoderShape: the one typed description of a neural texture decoder's shape.

The grids (channels, cell size and bits per feature of G0 and G1, how G0 is read, whether coarse mips read their
pyramid), the TextureSynthesizer (hidden width,
residual blocks, positional-encoding levels, activation) and everything derived from them: the MLP's
input width, weight shapes, grid shapes and the grids' bits per texel. A preset is a name plus a
DecoderShape; `CompressionModel` is built from one; the `.ngtc` file stores it under "synthesizer" and
reads it back through `msgspec` (strict types, the bounds of `models.spec`); `viewer.neural_gl` makes
the GLSL decoder's `#define`s from it. Torch-free, so that reading a file needs no PyTorch.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from .spec import (
    FEATURES_PER_CHANNEL,
    MAX_BLOCKS,
    MAX_CELL,
    MAX_GRID_CHANNELS,
    MAX_HIDDEN,
    MAX_PE_LEVELS,
    QUANT_BITS,
    pe_dim,
)

GridChannels = Annotated[int, Meta(ge=2, le=MAX_GRID_CHANNELS)]
Cell = Annotated[int, Meta(ge=1, le=MAX_CELL)]
G0Sampling = Literal["corners", "bilinear"]
Bits = Literal[1, 2, 4, 8]  # spec.GRID_BITS


class DecoderShape(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Shape of the grid pair and the synthesizer. Cells are mip-0 texels per grid cell, per axis."""

    g0_channels: GridChannels
    g0_cell: Cell
    g1_channels: GridChannels
    g1_cell: Cell
    hidden_dim: Annotated[int, Meta(ge=1, le=MAX_HIDDEN)]
    num_residual_blocks: Annotated[int, Meta(ge=0, le=MAX_BLOCKS)]
    positional_encoding_levels: Annotated[int, Meta(ge=0, le=MAX_PE_LEVELS)]
    g0_sampling: G0Sampling = "bilinear"  # files written before "corners" existed lack the key
    activation: Literal["relu", "silu"] = "relu"  # files written before "silu" existed lack the key
    # Coarse mips read a box-filtered pyramid of each grid instead of striding over it (models/grid_pyramid.py)
    grid_pyramid: bool = False  # files written before it existed lack the key
    # The pyramid is of the grid's bilinear field: its codes filtered by [1, 6, 1] / 8 first, read from the mip of
    # the cell on (models/grid_pyramid.py); False: of the codes, the codes themselves at that mip
    pyramid_prefilter: bool = False  # files written before it existed lack the key
    # Bits per feature: G0 at 2 bits with twice the channels of 4 bits reads more, coarser values per texel for the
    # same stored bits (NTC's fine grids are 2-bit too); files written before the choice lack the keys (4 bits)
    g0_bits: Bits = QUANT_BITS
    g1_bits: Bits = QUANT_BITS

    def __post_init__(self) -> None:
        for grid in ("g0", "g1"):
            channels, bits = getattr(self, f"{grid}_channels"), getattr(self, f"{grid}_bits")
            if channels % channel_step(bits):
                raise ValueError(f"{grid}_channels {channels} at {bits} bits do not fill whole bytes "
                                 f"(a multiple of {channel_step(bits)} channels)")
        for name in ("g0_cell", "g1_cell"):
            cell = getattr(self, name)
            if cell & (cell - 1):
                raise ValueError(f"{name} {cell} must be a power of two")
        if self.pyramid_prefilter and not self.grid_pyramid:
            raise ValueError("pyramid_prefilter needs grid_pyramid")

    # -- derived ----------------------------------------------------------------------------------
    @property
    def g0_features(self) -> int:
        """Values the GridSampler delivers for G0: 4 per channel when read as corners."""
        return self.g0_channels * FEATURES_PER_CHANNEL[self.g0_sampling]

    @property
    def in_dim(self) -> int:
        """Synthesizer input: G0 features, G1 features, positional encoding, mip."""
        return self.g0_features + self.g1_channels + pe_dim(self.positional_encoding_levels) + 1

    @property
    def grid_bits_per_texel(self) -> float:
        """Bits of grid codes per mip-0 texel (the weights and metadata come on top)."""
        return (self.g0_bits * self.g0_channels / self.g0_cell**2
                + self.g1_bits * self.g1_channels / self.g1_cell**2)

    @property
    def grid_bits(self) -> tuple[int, int]:
        """Bits per feature of G0 and G1."""
        return self.g0_bits, self.g1_bits

    def grid_shapes(self, width: int, height: int) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
        """(rows, cols, channels) of G0 and G1 for a width x height texture."""
        return (grid_shape(width, height, self.g0_cell) + (self.g0_channels,),
                grid_shape(width, height, self.g1_cell) + (self.g1_channels,))

    def weight_shapes(self, out_channels: int) -> dict[str, tuple[int, ...]]:
        """Synthesizer weight names and shapes, in storage (and GPU buffer) order."""
        hidden = self.hidden_dim
        shapes: dict[str, tuple[int, ...]] = {"input.weight": (hidden, self.in_dim), "input.bias": (hidden,)}
        for i in range(self.num_residual_blocks):
            shapes[f"blocks.{i}.linear.weight"] = (hidden, hidden)
            shapes[f"blocks.{i}.linear.bias"] = (hidden,)
        shapes["output.weight"] = (out_channels, hidden)
        shapes["output.bias"] = (out_channels,)
        return shapes

    def weight_count(self, out_channels: int) -> int:
        return sum(math.prod(s) for s in self.weight_shapes(out_channels).values())

    def decode_flops(self, out_channels: int) -> int:
        """Arithmetic of one texel decode: 2 x the synthesizer's multiply-adds (grid reads and encoding aside)."""
        return 2 * sum(math.prod(s) for k, s in self.weight_shapes(out_channels).items() if k.endswith(".weight"))

    def to_dict(self) -> dict:
        return msgspec.to_builtins(self)


def channel_step(bits: int) -> int:
    """Grid channels of `bits`-bit codes come in multiples of this, so that a cell's codes fill whole bytes (and
    at least 2: the shortest grid)."""
    return max(2, 8 // math.gcd(8, bits))


def grid_shape(width: int, height: int, cell: int) -> tuple[int, int]:
    """Grid cells covering the texture (rows, columns); partial cells at the edge count whole."""
    return math.ceil(height / cell), math.ceil(width / cell)


def decoder_shape(**fields) -> DecoderShape:
    """A DecoderShape from Python values, type-checked like one read from a file (ValueError if invalid)."""
    try:
        return msgspec.convert(fields, DecoderShape, strict=True)
    except msgspec.ValidationError as e:
        raise ValueError(f"invalid decoder shape: {e}") from None
