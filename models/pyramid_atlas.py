"""The grid pyramids as the PyTorch codec reads them (models/grid_pyramid.py defines them).

Decoding (`Pyramid.from_codes`): every level from one atlas tensor, levels 1.. one after the other, of the
file's half floats, built once: the values the GLSL decoder's upload gets too.

Training (`Pyramid.of`): a texel at level l <= SPARSE_LEVELS reads each of its four taps as the mean of the
tap's 4^l grid cells, gathered from the grid itself and quantized as gathered, like level 0: the exact
pooled values, and a gradient that reaches those cells only. Rebuilding the whole pyramid every step with
its gradient instead cost 1.25-1.3x a step on 1024x1024 sets and 1.6-1.8x on 2048x2048 (whole-grid
passes, memory-bound; docs/benchmarks.md, "Grid pyramid"). Deeper levels, read only by mips past
SPARSE_LEVELS + log2(cell), come from an atlas without gradient that the caller may reuse for a few steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .grid_pyramid import depth, halve, levels_from_codes
from .grid_taps import MIX, Transform, tap_cells
from .quantization import rounded
from .spec import QUANT_STEP

SPARSE_LEVELS = 2  # levels training reads from their grid cells (16 a tap at level 2)


@dataclass(frozen=True)
class Pyramid:
    """Levels 1.. of a grid: `atlas` (cells, C) holds them one after the other, each row-major, so one gather
    reads every texel whatever its level; `shapes` their (rows, cols). In training, `grid` is the grid whose
    cells levels 1 .. `sparse_levels` are read from (the atlas serves the deeper ones)."""

    atlas: torch.Tensor
    shapes: tuple[tuple[int, int], ...]
    grid: torch.Tensor | None = None
    sparse_levels: int = 0

    @property
    def levels(self) -> int:
        return len(self.shapes)

    def level(self, k: int) -> torch.Tensor:
        """Level k >= 1 of the atlas as an (H_k, W_k, C) view."""
        h, w = self.shapes[k - 1]
        start = sum(r * c for r, c in self.shapes[:k - 1])
        return self.atlas[start:start + h * w].reshape(h, w, -1)

    def geometry(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per level 0 .. levels: (cols, rows) and the first atlas row; level 0 (the grid itself) has none."""
        sizes = [(0, 0)] + [(w, h) for h, w in self.shapes]
        offsets = np.concatenate([[0, 0], np.cumsum([h * w for h, w in self.shapes])[:-1]]) if self.shapes else [0]
        device = self.atlas.device
        return torch.tensor(sizes, device=device), torch.as_tensor(offsets, dtype=torch.long, device=device)

    @classmethod
    def from_codes(cls, codes: np.ndarray, device: torch.device | str = "cpu") -> Pyramid:
        """The decoder's pyramid: `levels_from_codes`, the values the GLSL decoder's upload gets too."""
        levels = levels_from_codes(codes)
        flat = [v.reshape(-1, codes.shape[2]) for v in levels]
        atlas = np.concatenate(flat).astype(np.float32) if flat else np.zeros((0, codes.shape[2]), np.float32)
        return cls(torch.from_numpy(atlas).to(device), tuple(v.shape[:2] for v in levels))

    @classmethod
    def of(cls, grid: torch.Tensor, quantized: bool = False, deep: Pyramid | None = None) -> Pyramid:
        """Training's pyramid of a float grid (H, W, C): levels up to SPARSE_LEVELS read from `grid` (with its
        gradient), deeper ones from `deep` (an earlier `dense`), else from a new `dense(grid, quantized)`."""
        deep = deep or dense(grid, quantized)
        return cls(deep.atlas, deep.shapes, grid, SPARSE_LEVELS)


def dense(grid: torch.Tensor, quantized: bool = False) -> Pyramid:
    """Every level of a float grid (H, W, C), without gradient; `quantized`: of the grid rounded to its codes
    (the stored pyramid before its float16 rounding)."""
    x = rounded(grid.detach()) if quantized else grid.detach()
    parts, shapes = [], []
    for _ in range(depth(*grid.shape[:2])):
        x = halve(x)
        parts.append(x.reshape(-1, grid.shape[2]))
        shapes.append(tuple(x.shape[:2]))
    return Pyramid(torch.cat(parts) if parts else grid.new_zeros(0, grid.shape[2]), tuple(shapes))


def pyramid_noise(level: torch.Tensor) -> Transform:
    """Training's stand-in for the quantization error of atlas levels (N,), for the 4N cells of their taps:
    the mean of 4^level cells' rounding errors has the spread of uniform noise 2^level times narrower than
    one code step."""
    scale = (QUANT_STEP / torch.exp2(level.to(torch.float32))).repeat(4)[:, None]
    return lambda cells: cells + (torch.rand_like(cells) - 0.5) * scale


def _cell_children(xs: torch.Tensor, ys: torch.Tensor, level: int, width: int) -> torch.Tensor:
    """Row-major grid indices (len(xs) * 4^level,) of the 2^level x 2^level grid cells under each level cell."""
    side = 1 << level
    d = torch.arange(side, device=xs.device)
    cols, rows = xs[:, None] * side + d, ys[:, None] * side + d
    return (rows[:, :, None] * width + cols[:, None, :]).reshape(-1)


def read_pyramid(kind: str, grid: torch.Tensor, pyramid: Pyramid, level: torch.Tensor, uv: torch.Tensor,
                 wrap: bool, transform: Transform, noise: bool) -> torch.Tensor:
    """Each texel read (`grid_taps.MIX[kind]`) from its pyramid level: level 0 and, in training, the sparse
    levels from the grid (one gather, quantized by `transform`), the others from the atlas (with
    `pyramid_noise` when `noise`)."""
    h0, w0, c = grid.shape
    sparse = pyramid.sparse_levels if pyramid.grid is not None else 0
    parts, order, indices, finish = [], [], [], []
    for lv in range(min(sparse, pyramid.levels) + 1):
        rows = (level == lv).nonzero().squeeze(1)
        if not len(rows):
            continue
        h, w = (h0, w0) if lv == 0 else pyramid.shapes[lv - 1]
        size = torch.tensor([w, h], dtype=uv.dtype, device=uv.device)
        xs, ys, fx, fy = tap_cells(uv.index_select(0, rows) * size - 0.5, w, h, wrap)
        indices.append(ys * w0 + xs if lv == 0 else _cell_children(xs, ys, lv, w0))
        finish.append((rows, 1 << 2 * lv, fx, fy))
    if indices:
        cells = grid.reshape(h0 * w0, c).index_select(0, torch.cat(indices))
        for (rows, per_tap, fx, fy), chunk in zip(finish, cells.split([len(i) for i in indices]), strict=True):
            if per_tap == 1 or not noise:  # "ste": each cell rounded, so the mean is the stored pyramid's
                taps = chunk if transform is None else transform(chunk)
                taps = taps if per_tap == 1 else taps.view(-1, per_tap, c).mean(1)
            else:  # noise on the mean, as on the atlas: the same spread as the cells' own, 4^l fewer draws
                lv = torch.full((len(rows),), per_tap.bit_length() // 2, device=uv.device)
                taps = pyramid_noise(lv)(chunk.view(-1, per_tap, c).mean(1))
            parts.append(MIX[kind](taps, fx, fy))
            order.append(rows)
    rows = (level > sparse).nonzero().squeeze(1)
    if len(rows):
        lv = level.index_select(0, rows)
        sizes, offsets = pyramid.geometry()
        size, offset = sizes.index_select(0, lv), offsets.index_select(0, lv)
        pos = uv.index_select(0, rows) * size.to(uv.dtype) - 0.5  # grid_pos, on each texel's level
        xs, ys, fx, fy = tap_cells(pos, size[:, 0], size[:, 1], wrap)
        cells = pyramid.atlas.index_select(0, offset.repeat(4) + ys * size[:, 0].repeat(4) + xs)
        if noise:
            cells = pyramid_noise(lv)(cells)
        parts.append(MIX[kind](cells, fx, fy))
        order.append(rows)
    if len(parts) == 1:
        return parts[0]
    inverse = torch.empty(len(uv), dtype=torch.long, device=uv.device)
    inverse[torch.cat(order)] = torch.arange(len(uv), device=uv.device)
    return torch.cat(parts).index_select(0, inverse)
