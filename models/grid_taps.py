"""The GridSampler's reads: the four cells around a position in a grid, and how their features are mixed.

A position is in grid cells (x, y); texel centres sit at uv * (W_g, H_g) - 0.5 (`grid_pos`). The four
cells around it are addressed with wrap-around (materials tile) or clamped (encoder crops). G1, and G0 read
"bilinear", mix them bilinearly; G0 read as "corners" keeps them side by side, each times its bilinear
weight (see models/grid_sampler.py). The GLSL decoder does exactly this.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch

from .grid_gradient import gather

Transform = Callable[[torch.Tensor], torch.Tensor] | None


@functools.lru_cache(maxsize=512)
def constant(values: tuple, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A small tensor of fixed values on a device, made once and never written to: made afresh every training
    step it is a host-to-device copy, and on a GPU such a copy waits for the queue to drain."""
    return torch.tensor(values, dtype=dtype, device=device)


def grid_pos(grid: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    """Positions in grid cells of texture coordinates uv: texel centres, so uv * size - 0.5."""
    return uv * constant((grid.shape[1], grid.shape[0]), uv.dtype, uv.device) - 0.5


def wrapped(i: torch.Tensor, n: int | torch.Tensor) -> torch.Tensor:
    """i mod n, the wrap-around address; a bitwise and where n is a power of two (grids usually are), which is
    several times cheaper than an integer remainder."""
    if isinstance(n, int) and n & (n - 1) == 0:
        return i & (n - 1)
    return i % n


def tap_cells(pos: torch.Tensor, w: int | torch.Tensor, h: int | torch.Tensor, wrap: bool):
    """Columns and rows (4N,) of the four cells around positions pos (N, 2) on a w x h grid (w, h: numbers,
    or (N,) per position), in the order c00, c10, c01, c11, and the fractions fx, fy (N, 1)."""
    p0 = torch.floor(pos)
    f = pos - p0
    x0, y0 = p0[:, 0].long(), p0[:, 1].long()
    if wrap:
        x0, x1 = wrapped(x0, w), wrapped(x0 + 1, w)
        y0, y1 = wrapped(y0, h), wrapped(y0 + 1, h)
    else:  # torch.minimum: w and h may be tensors
        x0, x1 = (torch.minimum(x.clamp(min=0), torch.as_tensor(w - 1)) for x in (x0, x0 + 1))
        y0, y1 = (torch.minimum(y.clamp(min=0), torch.as_tensor(h - 1)) for y in (y0, y0 + 1))
    return torch.cat([x0, x1, x0, x1]), torch.cat([y0, y0, y1, y1]), f[:, :1], f[:, 1:]


def mix_bilinear(cells: torch.Tensor, fx: torch.Tensor, fy: torch.Tensor) -> torch.Tensor:
    """The four taps' cells (4N, C), in tap order, interpolated bilinearly: (N, C)."""
    c00, c10, c01, c11 = cells.chunk(4)
    top = c00 * (1 - fx) + c10 * fx
    bottom = c01 * (1 - fx) + c11 * fx
    return top * (1 - fy) + bottom * fy


def mix_corners(cells: torch.Tensor, fx: torch.Tensor, fy: torch.Tensor) -> torch.Tensor:
    """The four taps' cells times their bilinear weights, side by side: (N, 4C), summing to bilinear."""
    c00, c10, c01, c11 = cells.chunk(4)
    gx, gy = 1 - fx, 1 - fy
    return torch.cat([c00 * (gx * gy), c10 * (fx * gy), c01 * (gx * fy), c11 * (fx * fy)], dim=-1)


MIX = {"bilinear": mix_bilinear, "corners": mix_corners}


def mix_centred(kind: str, cells: torch.Tensor) -> torch.Tensor:
    """`MIX[kind]` of reads that sit on their cell's centre (fractions 0): the first tap weighs 1, the others 0,
    so only that tap's cells (N, C) are needed."""
    if kind == "bilinear":
        return cells
    return torch.cat([cells, cells.new_zeros(len(cells), 3 * cells.shape[1])], dim=-1)


def read(kind: str, grid: torch.Tensor, pos: torch.Tensor, wrap: bool = True, transform: Transform = None):
    """Grid (H, W, C) read at positions pos (N, 2): one gather for all four taps, so that its backward
    scatters into one grid-sized gradient, not four (kept across steps, models/grid_gradient.py). `transform`
    (training's quantization) applies to the gathered cells only, not to every cell."""
    h, w, c = grid.shape
    xs, ys, fx, fy = tap_cells(pos, w, h, wrap)
    cells = gather(grid, ys * w + xs)  # index_select: ~2x faster than [idx], forward and backward
    if transform is not None:
        cells = transform(cells)
    return MIX[kind](cells, fx, fy)


def bilinear(grid: torch.Tensor, pos: torch.Tensor, wrap: bool = True, transform: Transform = None) -> torch.Tensor:
    """Bilinear read of grid (H, W, C) at positions pos (N, 2) given in grid cells (x, y)."""
    return read("bilinear", grid, pos, wrap, transform)


def corners(grid: torch.Tensor, pos: torch.Tensor, wrap: bool = True, transform: Transform = None) -> torch.Tensor:
    """The four cells' features times their bilinear weights, side by side: (N, 4C)."""
    return read("corners", grid, pos, wrap, transform)


SAMPLING = {"bilinear": bilinear, "corners": corners}
