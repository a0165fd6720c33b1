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

Prefiltered (`DecoderShape.pyramid_prefilter`): the pyramid of the grid's bilinear field rather than of its
codes. Level 1 is the codes filtered by [1, 6, 1] / 8 along each axis (wrapping), the mean of the bilinear
interpolant over each cell, read from mip k = log2(cell) on; level l + 1 is again the 2x2 mean of level l, the
interpolant's mean over 2^l x 2^l cells. Without it, mip k read the codes themselves: point values of a field
the finer mips interpolate, where the texel's target is that field's mean over the cell, so the synthesizer
saw a sharper input than it was asked for (no neighbours to blur with) and mip k fell 1.5-4 dB under mips k - 1
and k + 1 (docs/benchmarks.md, "Prefiltered grid pyramids").
"""

from __future__ import annotations

import numpy as np

from .spec import QUANT_BITS, QUANT_RANGE, quant_step


def depth(rows: int, cols: int) -> int:
    """Levels above a rows x cols grid: halvings while both sides are even."""
    levels = 0
    while rows and cols and rows % 2 == 0 and cols % 2 == 0:
        rows, cols, levels = rows // 2, cols // 2, levels + 1
    return levels


def levels(rows: int, cols: int, prefilter: bool) -> int:
    """Levels above a rows x cols grid of codes: its halvings, plus the prefiltered grid itself."""
    return depth(rows, cols) + int(prefilter)


def level(mip: int, cell: int, levels: int, prefilter: bool = False) -> int:
    """The pyramid level that mip `mip` reads for a grid of `cell` x `cell` texel cells with `levels` levels
    (0: the codes, read by the mips finer than the cell and, without prefilter, the cell's own)."""
    past = mip - (cell.bit_length() - 1)
    return 0 if past < 0 else min(past + int(prefilter), levels)


def prefilter_weights(side: int) -> list[float]:
    """Per-axis weights over the side + 2 cells (from one before to one after) whose codes make a cell of the
    prefiltered pyramid that covers side x side grid cells: the box of `side` convolved with [1, 6, 1] / 8."""
    taps = [0.0] * (side + 2)
    for i in range(side):
        for k, w in enumerate((0.125, 0.75, 0.125)):
            taps[i + k] += w / side
    return taps


def footprint_weights(level: int, prefilter: bool) -> list[float]:
    """Per-axis weights of the grid cells a level's cell is made of: the 2^level box, or prefiltered."""
    return prefilter_weights(1 << (level - 1)) if prefilter else [1.0 / (1 << level)] * (1 << level)


def pyramid_texels(channels: int) -> int:
    """Texels per cell of a pyramid level on the GPU: 4 channels (RGBA16F) each."""
    return -(-channels // 4)


def halve(grid):
    """2x2 mean of an (H, W, C) numpy array (or tensor) with even sides; the same float32 arithmetic in both."""
    return (grid[0::2, 0::2] + grid[0::2, 1::2] + grid[1::2, 0::2] + grid[1::2, 1::2]) * 0.25


def _rolled(grid, shift: int, axis: int):
    """`grid` rolled by `shift` along `axis` (wrapping), numpy array or tensor."""
    if isinstance(grid, np.ndarray):
        return np.roll(grid, shift, axis=axis)
    return grid.roll(shift, dims=axis)


def prefiltered(grid):
    """An (H, W, C) numpy array (or tensor) filtered by [1, 6, 1] / 8 along rows, then columns, wrapping: the
    mean of its bilinear interpolant over each cell (the same float32 arithmetic in both)."""
    for axis in (0, 1):
        grid = (_rolled(grid, 1, axis) + grid * 6.0 + _rolled(grid, -1, axis)) * 0.125
    return grid


def levels_from_codes(codes: np.ndarray, prefilter: bool = False, bits: int = QUANT_BITS) -> list[np.ndarray]:
    """Levels 1 .. `levels` of a stored grid, (H_l, W_l, C) each, from its (H, W, C) `bits`-bit codes.

    The means are taken in float32, level after level, and each level is then rounded to float16: the GPU
    keeps them as half floats (half the memory; the rounding, at most 2^-11 of a value in [-1, 1], is ~0.4%
    of a 4-bit code step) and the PyTorch decoder reads the same values. Level 1 of a prefiltered pyramid stays
    float32: the GLSL decoder computes it from the codes where it reads it (stored, it would be a float copy
    of the grid, several times the codes' memory)."""
    values = codes.astype(np.float32) * np.float32(quant_step(bits)) + np.float32(QUANT_RANGE[0])  # = from_codes
    out = []
    if prefilter:
        values = prefiltered(values)
        out.append(values)
    for _ in range(depth(*codes.shape[:2])):
        values = halve(values)
        out.append(values.astype(np.float16))
    return out
