"""The grid pyramids as the PyTorch codec reads them (models/grid_pyramid.py defines them).

Decoding (`Pyramid.from_codes`): every level from one atlas tensor, levels 1.. one after the other, of the
file's half floats, built once: the values the GLSL decoder's upload gets too.

Training (`Pyramid.of`): a texel at level l <= SPARSE_LEVELS reads each of its four taps as the mean of the
tap's 4^l grid cells (prefiltered: the weighted mean of (2^(l-1) + 2)^2 cells, one level more), gathered from
the grid itself and quantized as gathered, like level 0: the exact pooled values, and a gradient that reaches
those cells only. Texels on their level's cell centres, as every mip that halves with the level is, gather
one tap, not four. Rebuilding the whole pyramid every step with
its gradient instead cost 1.25-1.3x a step on 1024x1024 sets and 1.6-1.8x on 2048x2048 (whole-grid
passes, memory-bound; docs/benchmarks.md, "Grid pyramid"). Deeper levels, read only by mips past
SPARSE_LEVELS + log2(cell), come from an atlas without gradient that the caller may reuse for a few steps
(`deep_levels`: built straight from the grid, without the full-size levels before them).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from . import native_reads
from .grid_gradient import gather
from .grid_pyramid import depth, footprint_weights, halve, levels_from_codes, prefiltered
from .grid_taps import MIX, Transform, constant, mix_centred, tap_cells, wrapped
from .quantization import GridBits, feature_step, rounded
from .spec import QUANT_BITS

SPARSE_LEVELS = 2  # mips past a grid's cell that training reads from its cells (16 a tap at level 2; prefiltered, 36)


@dataclass(frozen=True)
class Pyramid:
    """Levels 1.. of a grid: `atlas` (cells, C) holds them one after the other, each row-major, so one gather
    reads every texel whatever its level; `shapes` their (rows, cols). In training, `grid` is the grid whose
    cells levels 1 .. `sparse_levels` are read from (the atlas serves the deeper ones)."""

    atlas: torch.Tensor
    shapes: tuple[tuple[int, int], ...]
    grid: torch.Tensor | None = None
    sparse_levels: int = 0
    prefilter: bool = False  # `DecoderShape.pyramid_prefilter`: level 1 is the prefiltered grid
    first: int = 1  # the atlas's first level: training's holds only the levels past the sparse ones (`deep_levels`)
    bits: GridBits = QUANT_BITS  # the grid's bits per feature (or per channel): its step scales training's noise

    @property
    def levels(self) -> int:
        return len(self.shapes)

    def _rows(self) -> list[int]:
        """Atlas rows of each level 1 .. levels (none below `first`)."""
        return [h * w if k >= self.first else 0 for k, (h, w) in enumerate(self.shapes, start=1)]

    def level(self, k: int) -> torch.Tensor:
        """Level k >= `first` of the atlas as an (H_k, W_k, C) view."""
        if k < self.first:
            raise IndexError(f"level {k} is not in this atlas (it starts at level {self.first})")
        h, w = self.shapes[k - 1]
        start = sum(self._rows()[:k - 1])
        return self.atlas[start:start + h * w].reshape(h, w, -1)

    def geometry(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per level 0 .. levels: (cols, rows) and the first atlas row; level 0 (the grid itself) has none."""
        sizes = ((0, 0),) + tuple((w, h) for h, w in self.shapes)
        offsets = (0, 0) + tuple(int(o) for o in np.cumsum(self._rows())[:-1]) if self.shapes else (0,)
        device = self.atlas.device
        return constant(sizes, torch.long, device), constant(offsets, torch.long, device)

    @classmethod
    def from_codes(cls, codes: np.ndarray, device: torch.device | str = "cpu", prefilter: bool = False,
                   bits: int = QUANT_BITS) -> Pyramid:
        """The decoder's pyramid: `levels_from_codes`, the values the GLSL decoder's upload gets too."""
        levels = levels_from_codes(codes, prefilter, bits)
        flat = [v.reshape(-1, codes.shape[2]) for v in levels]
        atlas = np.concatenate(flat).astype(np.float32) if flat else np.zeros((0, codes.shape[2]), np.float32)
        return cls(torch.from_numpy(atlas).to(device), tuple(v.shape[:2] for v in levels), prefilter=prefilter,
                   bits=bits)

    @classmethod
    def of(cls, grid: torch.Tensor, quantized: bool = False, deep: Pyramid | None = None,
           prefilter: bool = False, bits: GridBits = QUANT_BITS) -> Pyramid:
        """Training's pyramid of a float grid (H, W, C): levels up to SPARSE_LEVELS read from `grid` (with its
        gradient), deeper ones from `deep` (an earlier `deep_levels`), else from a new `deep_levels(grid, ...)`."""
        sparse = SPARSE_LEVELS + int(prefilter)  # prefiltered, level l is read by the mip level l - 1 was
        deep = deep or deep_levels(grid, quantized, prefilter, bits)
        return cls(deep.atlas, deep.shapes, grid, sparse, prefilter, deep.first, bits)


def dense(grid: torch.Tensor, quantized: bool = False, prefilter: bool = False, bits: GridBits = QUANT_BITS) -> Pyramid:
    """Every level of a float grid (H, W, C), without gradient; `quantized`: of the grid rounded to its `bits`-bit codes
    (the stored pyramid before its float16 rounding). Prefiltered wrapping, as decoding does (an encoder crop's
    deep levels, read by few texels, differ at its border from its clamped sparse reads)."""
    x = rounded(grid.detach(), bits) if quantized else grid.detach()
    parts, shapes = [], []
    if prefilter:
        x = prefiltered(x)
        parts.append(x.reshape(-1, grid.shape[2]))
        shapes.append(tuple(x.shape[:2]))
    for _ in range(depth(*grid.shape[:2])):
        x = halve(x)
        parts.append(x.reshape(-1, grid.shape[2]))
        shapes.append(tuple(x.shape[:2]))
    return Pyramid(torch.cat(parts) if parts else grid.new_zeros(0, grid.shape[2]), tuple(shapes),
                   prefilter=prefilter, bits=bits)


def deep_levels(grid: torch.Tensor, quantized: bool = False, prefilter: bool = False,
                bits: GridBits = QUANT_BITS) -> Pyramid:
    """The levels of a float grid (H, W, C) that training reads from an atlas (past the sparse ones), as `dense`
    makes them but without the levels before: the first of them comes straight from the grid, one box sum over
    it and small corrections along each axis (`_footprint_axis`), then halvings. `dense` built every level from
    the full-size prefiltered grid on: at 2048x2048 (bpp16) that rebuild cost ~10 ms a step over its 16 steps."""
    first = SPARSE_LEVELS + int(prefilter) + 1
    shapes = _level_shapes(grid.shape[0], grid.shape[1], prefilter)
    if first > len(shapes):
        return Pyramid(grid.new_zeros(0, grid.shape[2]), shapes, prefilter=prefilter, first=first, bits=bits)
    x = rounded(grid.detach(), bits) if quantized else grid.detach()
    weights = footprint_weights(first, prefilter)
    side = 1 << (first - 1) if prefilter else 1 << first
    for axis in (1, 0):  # columns first: a row-major grid's inner axis, then rows of a grid side times smaller
        x = _footprint_axis(x, axis, weights, side, prefilter)
    parts = [x.reshape(-1, grid.shape[2])]
    for _ in range(first, len(shapes)):
        x = halve(x)
        parts.append(x.reshape(-1, grid.shape[2]))
    return Pyramid(torch.cat(parts), shapes, prefilter=prefilter, first=first, bits=bits)


def _level_shapes(rows: int, cols: int, prefilter: bool) -> tuple[tuple[int, int], ...]:
    """(rows, cols) of levels 1 .. of a rows x cols grid, as `dense` builds them."""
    shapes = [(rows, cols)] if prefilter else []
    for k in range(1, depth(rows, cols) + 1):
        shapes.append((rows >> k, cols >> k))
    return tuple(shapes)


def _footprint_axis(x: torch.Tensor, axis: int, weights: list[float], side: int, prefilter: bool) -> torch.Tensor:
    """x reduced along `axis` by a level's per-axis footprint (`footprint_weights`: the box of `side` cells, or
    prefiltered, one more wrapping cell on each side): cell j = sum_k weights[k] * x[j * side - pad + k]. A deep
    level spans at least 2 cells a side (past the sparse levels), so its block has two distinct edge cells."""
    blocks = x.unflatten(axis, (-1, side))
    out = blocks.sum(axis + 1) * (1.0 / side)
    if not prefilter:
        return out
    first, last = blocks.select(axis + 1, 0), blocks.select(axis + 1, side - 1)
    edge = weights[0]  # the outer cells' weight; the block's own edge cells weigh 1 / side - edge
    return out - (first + last) * edge + (last.roll(1, dims=axis) + first.roll(-1, dims=axis)) * edge


def noise_spread(levels: int, prefilter: bool, device: torch.device | str = "cpu") -> torch.Tensor:
    """Per level 0 .. levels, the spread of a level cell's rounding error in code steps: a weighted mean of
    independent uniform errors has sqrt(sum w^2) of one cell's (per axis sum w^2, the weights separable);
    1 / 2^level for the box."""
    return constant(_spread(levels, prefilter), torch.float32, torch.device(device))


@functools.cache
def _spread(levels: int, prefilter: bool) -> tuple[float, ...]:
    return (1.0,) + tuple(sum(w * w for w in footprint_weights(lv, prefilter)) for lv in range(1, levels + 1))


def pyramid_noise(level: torch.Tensor, spread: torch.Tensor, bits: GridBits = QUANT_BITS) -> Transform:
    """Training's stand-in for the quantization error of atlas levels (N,), for the 4N cells of their taps:
    uniform noise of `spread`[level] code steps of `bits`-bit codes (`noise_spread`)."""
    scale = spread.index_select(0, level).repeat(4)[:, None] * feature_step(bits, spread.device, spread.dtype)
    return lambda cells: cells + (torch.rand_like(cells) - 0.5) * scale


def _footprint(xs: torch.Tensor, ys: torch.Tensor, level: int, prefilter: bool, width: int, height: int,
               wrap: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Row-major grid indices (len(xs) * n^2,) of the n x n grid cells each cell (xs, ys) of `level` is made of,
    and their weights (n^2,) (`grid_pyramid.footprint_weights`): the 2^level x 2^level cells under it, or with
    prefilter one cell more on every side (wrapping, or clamped at the edge)."""
    weights = constant(tuple(footprint_weights(level, prefilter)), torch.float32, xs.device)
    side, pad = (1 << (level - 1), 1) if prefilter else (1 << level, 0)
    d = constant(tuple(range(len(weights))), torch.long, xs.device)
    cols, rows = xs[:, None] * side - pad + d, ys[:, None] * side - pad + d
    if wrap:
        cols, rows = wrapped(cols, width), wrapped(rows, height)
    else:
        cols, rows = cols.clamp(0, width - 1), rows.clamp(0, height - 1)
    return (rows[:, :, None] * width + cols[:, None, :]).reshape(-1), torch.outer(weights, weights).reshape(-1)


class LevelRun(NamedTuple):
    """Rows [start, stop) of a batch sorted by mip that read one pyramid `level`: the texel centres of a mip of
    `mip_size` (w, h) (`grid_sampler.MipRun`, training's batches). With runs, `read_pyramid` slices the batch and
    knows which reads sit on cell centres without reading the device (a GPU would wait for its queue to drain)."""
    level: int
    start: int
    stop: int
    mip_size: tuple[int, int]


def read_pyramid(kind: str, grid: torch.Tensor, pyramid: Pyramid, level: torch.Tensor, uv: torch.Tensor,
                 wrap: bool, transform: Transform, noise: bool,
                 runs: Sequence[LevelRun] | None = None) -> torch.Tensor:
    """Each texel read (`grid_taps.MIX[kind]`) from its pyramid level: level 0 and, in training, the sparse
    levels from the grid (one gather, quantized by `transform`), the others from the atlas (with
    `pyramid_noise` when `noise`). A level whose texels sit on its cell centres (a mip that halves with the
    level: every read past the cell but the deepest) gathers one tap, not four: the others weigh 0. `runs`: the
    texels are sorted by level in these runs (training's batches), found without reading the device; such a batch
    of a CPU grid reads through the C kernel (models/native_reads.py): these values, in one call."""
    if runs is not None and native_reads.usable(grid, uv, transform, wrap):
        table = [(r.level, r.start, r.stop, centred(r, pyramid.shapes)) for r in runs if r.stop > r.start]
        return native_reads.read_pyramid(kind, grid, pyramid, uv, transform, noise, table,
                                         _spread(pyramid.levels, pyramid.prefilter))
    h0, w0, c = grid.shape
    sparse = min(pyramid.sparse_levels if pyramid.grid is not None else 0, pyramid.levels)
    spread = noise_spread(pyramid.levels, pyramid.prefilter, uv.device) if noise else None
    reads, deep = _split(level, sparse, pyramid.shapes, runs)
    parts, order, indices, finish = [], [], [], []
    for lv, rows, on_centre in reads:
        h, w = (h0, w0) if lv == 0 else pyramid.shapes[lv - 1]
        xs, ys, fx, fy = tap_cells(_take(uv, rows) * constant((w, h), uv.dtype, uv.device) - 0.5, w, h, wrap)
        if on_centre is None:
            on_centre = lv > 0 and not bool(fx.any() or fy.any())
        taps = 1 if on_centre else 4
        n = _length(rows)
        xs, ys = xs[:n * taps], ys[:n * taps]
        weights = None
        if lv == 0:
            indices.append(ys * w0 + xs)
        else:
            cells, weights = _footprint(xs, ys, lv, pyramid.prefilter, w0, h0, wrap)
            indices.append(cells)
        finish.append((rows, taps, lv, weights, fx, fy))
    if indices:
        cells = gather(grid, torch.cat(indices))
        for (rows, taps, lv, weights, fx, fy), chunk in zip(finish, cells.split([len(i) for i in indices]),
                                                            strict=True):
            if weights is None or not noise:  # "ste": each cell rounded, so the pooled value is the stored one
                values = chunk if transform is None else transform(chunk)
                values = values if weights is None else _pool(values, weights, pyramid.prefilter)
            else:  # noise on the pooled value, as on the atlas: the same spread, n^2 fewer draws
                values = _pool(chunk, weights, pyramid.prefilter)
                step = feature_step(pyramid.bits, values.device, values.dtype)
                values = values + (torch.rand_like(values) - 0.5) * (step * spread[lv])
            parts.append(MIX[kind](values, fx, fy) if taps == 4 else mix_centred(kind, values))
            order.append(rows)
    if deep is not None:
        lv = _take(level, deep)
        sizes, offsets = pyramid.geometry()
        size, offset = sizes.index_select(0, lv), offsets.index_select(0, lv)
        pos = _take(uv, deep) * size.to(uv.dtype) - 0.5  # grid_pos, on each texel's level
        xs, ys, fx, fy = tap_cells(pos, size[:, 0], size[:, 1], wrap)
        cells = pyramid.atlas.index_select(0, offset.repeat(4) + ys * size[:, 0].repeat(4) + xs)
        if noise:
            cells = pyramid_noise(lv, spread, pyramid.bits)(cells)
        parts.append(MIX[kind](cells, fx, fy))
        order.append(deep)
    if len(parts) == 1:
        return parts[0]
    if runs is not None or bool((level[1:] >= level[:-1]).all()):  # sorted by level: parts are in row order
        return torch.cat(parts)
    inverse = torch.empty(len(uv), dtype=torch.long, device=uv.device)
    inverse[torch.cat(order)] = torch.arange(len(uv), device=uv.device)
    return torch.cat(parts).index_select(0, inverse)


Rows = slice | torch.Tensor  # a batch's rows: a run of them, or their indices
Read = tuple[int, Rows, bool | None]  # a level, its rows, whether they sit on its cell centres (None: not known)


def _split(level: torch.Tensor, sparse: int, shapes: tuple[tuple[int, int], ...],
           runs: Sequence[LevelRun] | None) -> tuple[list[Read], Rows | None]:
    """The rows read from the grid, per level 0 .. `sparse`, and the rows read from the atlas (None: none): from
    `runs` without reading the device, else from `level`, reading each level's row count back."""
    if runs is not None:
        return _split_runs(runs, sparse, shapes)
    reads: list[Read] = []
    for lv in range(sparse + 1):
        rows = (level == lv).nonzero().squeeze(1)
        if len(rows):
            reads.append((lv, rows, None))
    rows = (level > sparse).nonzero().squeeze(1)
    return reads, rows if len(rows) else None


def _split_runs(runs: Sequence[LevelRun], sparse: int,
                shapes: tuple[tuple[int, int], ...]) -> tuple[list[Read], Rows | None]:
    """`_split` of a batch sorted by level in `runs`: slices, and whether they sit on cell centres from the sizes."""
    reads: list[Read] = []
    deep = None
    for run in runs:
        if run.stop <= run.start:
            continue
        if run.level > sparse:
            deep = slice(run.start if deep is None else deep.start, run.stop)
            continue
        on_centre = centred(run, shapes)
        rows = slice(run.start, run.stop)
        if reads and reads[-1][0] == run.level:  # several mips on one (the deepest) level
            _, before, was = reads.pop()
            rows, on_centre = slice(before.start, run.stop), was and on_centre
        reads.append((run.level, rows, on_centre))
    return reads, deep


def centred(run: LevelRun, shapes: tuple[tuple[int, int], ...]) -> bool:
    """Whether a run's texels sit on the cell centres of the pyramid level they read (level 0, the grid: no)."""
    return run.level > 0 and on_centres(*run.mip_size, *shapes[run.level - 1][::-1])


@functools.lru_cache(maxsize=1024)
def on_centres(mip_w: int, mip_h: int, w: int, h: int) -> bool:
    """Whether every texel centre of a mip_w x mip_h mip sits on a cell centre of a w x h grid level: its position
    there, computed in float32 as training computes it (`texel_index_uv`, then uv * size - 0.5), is whole."""
    for texels, cells in ((mip_w, w), (mip_h, h)):
        uv = (torch.arange(texels).to(torch.float32) + 0.5) / texels
        pos = uv * torch.tensor([cells], dtype=torch.float32) - 0.5
        if bool((pos != torch.floor(pos)).any()):
            return False
    return True


def _take(x: torch.Tensor, rows: Rows) -> torch.Tensor:
    return x[rows] if isinstance(rows, slice) else x.index_select(0, rows)


def _length(rows: Rows) -> int:
    return rows.stop - rows.start if isinstance(rows, slice) else len(rows)


def _pool(cells: torch.Tensor, weights: torch.Tensor, prefilter: bool) -> torch.Tensor:
    """Cells (T * n^2, C) pooled per tap with their footprint weights (n^2,): (T, C); the box as a plain mean."""
    n2, c = len(weights), cells.shape[1]
    if not prefilter:
        return cells.view(-1, n2, c).mean(1)
    return (cells.view(-1, n2, c) * weights[:, None]).sum(1)
