"""The grid pyramid: box-filtered levels of a grid, read at the mips where a texel covers several cells.

Without it, a grid with cells of 2^k mip-0 texels is read at mip m > k with a stride of 2^(m-k) cells (the
paper's stride sampling): a texel's four taps see 4 of the 4^(m-k) cells under its footprint, so coarse mips
alias. With it (`DecoderShape.grid_pyramid`), mip m reads level l = m - k of the grid's pyramid, where level
l + 1 is the 2x2 mean of level l, as a mip-mapped texture would: again about one cell per texel. Levels exist
while both sides halve exactly (`depth`); deeper mips read the last one.

The pyramid is derived from the stored codes (it costs no bits). `levels_from_codes` builds it once per
file, in numpy, for both the PyTorch decoder and the GLSL decoder's upload, so the two read the same floats.
Training builds it from the float grids every step (models/pyramid_atlas.py). Torch-free, like the file
reader, so that the viewer's GPU path needs no PyTorch.
"""

from __future__ import annotations

import numpy as np

from .spec import QUANT_RANGE, QUANT_STEP


def depth(rows: int, cols: int) -> int:
    """Levels above a rows x cols grid: halvings while both sides are even."""
    levels = 0
    while rows and cols and rows % 2 == 0 and cols % 2 == 0:
        rows, cols, levels = rows // 2, cols // 2, levels + 1
    return levels


def level(mip: int, cell: int, levels: int) -> int:
    """The pyramid level that mip `mip` reads for a grid of `cell` x `cell` texel cells with `levels` levels."""
    return min(max(0, mip - (cell.bit_length() - 1)), levels)


def pyramid_texels(channels: int) -> int:
    """Texels per cell of a pyramid level on the GPU: 4 channels (RGBA16F) each."""
    return -(-channels // 4)


def halve(grid):
    """2x2 mean of an (H, W, C) numpy array (or tensor) with even sides; the same float32 arithmetic in both."""
    return (grid[0::2, 0::2] + grid[0::2, 1::2] + grid[1::2, 0::2] + grid[1::2, 1::2]) * 0.25


def levels_from_codes(codes: np.ndarray) -> list[np.ndarray]:
    """Levels 1 .. depth of a stored grid, (H_l, W_l, C) float16 each, from its (H, W, C) 4-bit codes.

    The means are taken in float32, level after level, and each level is then rounded to float16: the GPU
    keeps them as half floats (half the memory; the rounding, at most 2^-11 of a value in [-1, 1], is ~0.4%
    of one code step) and the PyTorch decoder reads the same values."""
    values = codes.astype(np.float32) * np.float32(QUANT_STEP) + np.float32(QUANT_RANGE[0])  # = from_codes
    out = []
    for _ in range(depth(*codes.shape[:2])):
        values = halve(values)
        out.append(values.astype(np.float16))
    return out
