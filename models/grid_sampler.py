"""GridSampler: reads the grid pair at a texture coordinate and mip level.

Grids are (H_g, W_g, C) feature maps covering the whole texture. A texel of mip m at integer (x, y) is
read at its centre uv = ((x + 0.5) / W_m, (y + 0.5) / H_m), i.e. grid position uv * (W_g, H_g) - 0.5,
from the four surrounding cells with wrap-around addressing (materials tile). Coarser mips therefore
read the same grids with a larger stride (see `spec.grid_stride`). The GLSL decoder does exactly this.

G1 (coarse) is interpolated bilinearly. G0 (fine) is read as "corners" by default: the four cells'
features, each weighted by its bilinear weight, side by side rather than summed. Their sum is the
bilinear value, so the synthesizer can still interpolate, but it also sees the cells separately and
can place detail inside a cell: at equal stored bits this measured +0.8 dB at mip 0 and +2 dB at
mip 1 on rocks (NVIDIA's NTC concatenates its fine grid's corners for the same reason).

A decoder with `grid_pyramid` reads mips past a grid's cell from the grid's box-filtered pyramid instead of
striding over it (models/grid_pyramid.py): the same reads, on a coarser level.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .pyramid_atlas import Pyramid
from .spec import QUANT_STEP, mip_size


def texel_uv(width: int, height: int, mip: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """uv of every texel centre of `mip`, row-major, (H_m * W_m, 2) float32."""
    w, h = mip_size(width, height, mip)
    ys, xs = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
    return texel_index_uv(xs.reshape(-1), ys.reshape(-1), w, h)


def texel_index_uv(xs: torch.Tensor, ys: torch.Tensor, w: int, h: int) -> torch.Tensor:
    """uv of the centres of texels (xs, ys) in a w x h mip."""
    u = (xs.to(torch.float32) + 0.5) / w
    v = (ys.to(torch.float32) + 0.5) / h
    return torch.stack([u, v], dim=-1)


Transform = Callable[[torch.Tensor], torch.Tensor] | None


def _taps(grid: torch.Tensor, pos: torch.Tensor, wrap: bool, transform: Transform = None,
          atlas: tuple[torch.Tensor, torch.Tensor] | None = None):
    """The four cells around positions pos (N, 2) in grid cells (x, y), and the fractions (fx, fy).

    One gather for all four taps: its backward then scatters into one grid-sized gradient, not four.
    `transform` (training's quantization) applies to the gathered cells only, not to every cell.
    `atlas`: per position (cols, rows) (N, 2) and first row (N,) of its level in `grid`, a pyramid's atlas
    (cells, C) (grid_pyramid.Pyramid)."""
    if atlas is None:
        h, w, c = grid.shape
        flat, offset = grid.reshape(h * w, c), 0
    else:
        (w, h), offset = atlas[0].unbind(1), atlas[1]
        flat = grid
    p0 = torch.floor(pos)
    f = pos - p0
    x0, y0 = p0[:, 0].long(), p0[:, 1].long()
    if wrap:
        x0, x1 = x0 % w, (x0 + 1) % w
        y0, y1 = y0 % h, (y0 + 1) % h
    else:
        x0, x1 = x0.clamp(0, w - 1), (x0 + 1).clamp(0, w - 1)
        y0, y1 = y0.clamp(0, h - 1), (y0 + 1).clamp(0, h - 1)
    idx = torch.cat([offset + y0 * w + x0, offset + y0 * w + x1, offset + y1 * w + x0, offset + y1 * w + x1])
    cells = flat.index_select(0, idx)  # ~2x faster than [idx], forward and backward
    if transform is not None:
        cells = transform(cells)
    return cells.chunk(4), f[:, :1], f[:, 1:]


def bilinear(grid: torch.Tensor, pos: torch.Tensor, wrap: bool = True, transform: Transform = None,
             atlas: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Bilinear read of grid (H, W, C) at positions pos (N, 2) given in grid cells (x, y)."""
    (c00, c10, c01, c11), fx, fy = _taps(grid, pos, wrap, transform, atlas)
    top = c00 * (1 - fx) + c10 * fx
    bottom = c01 * (1 - fx) + c11 * fx
    return top * (1 - fy) + bottom * fy


def corners(grid: torch.Tensor, pos: torch.Tensor, wrap: bool = True, transform: Transform = None,
            atlas: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """The four cells' features times their bilinear weights, side by side: (N, 4C), summing to bilinear."""
    (c00, c10, c01, c11), fx, fy = _taps(grid, pos, wrap, transform, atlas)
    gx, gy = 1 - fx, 1 - fy
    return torch.cat([c00 * (gx * gy), c10 * (fx * gy), c01 * (gx * fy), c11 * (fx * fy)], dim=-1)


SAMPLING = {"bilinear": bilinear, "corners": corners}
Read = Callable[..., torch.Tensor]


def grid_pos(grid: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    """Positions in grid cells of texture coordinates uv: texel centres, so uv * size - 0.5."""
    size = torch.tensor([grid.shape[1], grid.shape[0]], dtype=uv.dtype, device=uv.device)
    return uv * size - 0.5


def pyramid_noise(level: torch.Tensor) -> Transform:
    """Training's stand-in for the quantization error of pyramid levels (N,), for the 4N cells of their taps:
    the mean of 4^level cells' rounding errors has the spread of uniform noise 2^level times narrower than
    one code step. (Rounding the whole grid every step, for the exact error, costs ~4 ms a step more.)"""
    scale = (QUANT_STEP / torch.exp2(level.to(torch.float32))).repeat(4)[:, None]
    return lambda cells: cells + (torch.rand_like(cells) - 0.5) * scale


def read_pyramid(read: Read, grid: torch.Tensor, pyramid: Pyramid, level: torch.Tensor, uv: torch.Tensor,
                 wrap: bool, transform: Transform, noise: bool) -> torch.Tensor:
    """`read` of each texel from its pyramid level: level 0 from the grid itself (with `transform`), the
    others from the pyramid's atlas (with `pyramid_noise` when `noise`)."""
    coarse = level > 0
    if not bool(coarse.any()):
        return read(grid, grid_pos(grid, uv), wrap, transform)
    fine_rows, coarse_rows = (~coarse).nonzero().squeeze(1), coarse.nonzero().squeeze(1)
    level = level.index_select(0, coarse_rows)
    sizes, offsets = pyramid.geometry()
    size, offset = sizes.index_select(0, level), offsets.index_select(0, level)
    pos = uv.index_select(0, coarse_rows) * size.to(uv.dtype) - 0.5  # grid_pos, per texel's level
    parts = [read(pyramid.atlas, pos, wrap, pyramid_noise(level) if noise else None, (size, offset))]
    if len(fine_rows):
        parts.insert(0, read(grid, grid_pos(grid, uv.index_select(0, fine_rows)), wrap, transform))
    inverse = torch.empty(len(uv), dtype=torch.long, device=uv.device)
    inverse[torch.cat([fine_rows, coarse_rows])] = torch.arange(len(uv), device=uv.device)
    return torch.cat(parts).index_select(0, inverse)


class GridSampler(nn.Module):
    """Samples G0 (fine) and G1 (coarse) at texture coordinates; returns their features concatenated.

    With pyramids (`DecoderShape.grid_pyramid`), texels of mips past a grid's cell read its box-filtered
    levels instead (models/grid_pyramid.py); `cells` (mip-0 texels per cell of G0, G1) picks the level."""

    def __init__(self, g0_sampling: str = "corners", cells: tuple[int, int] = (1, 1)):
        super().__init__()
        if g0_sampling not in SAMPLING:
            raise ValueError(f"unknown G0 sampling {g0_sampling!r}")
        self.g0_sampling = g0_sampling
        self.cells = cells

    def forward(self, g0: torch.Tensor, g1: torch.Tensor, uv: torch.Tensor, wrap: bool = True,
                transform: Transform = None, mip: torch.Tensor | None = None,
                pyramids: tuple[Pyramid, Pyramid] | None = None,
                noise: bool = False) -> torch.Tensor:
        """`pyramids`: levels 1.. of each grid, read at the texels' `mip`; `noise`: training's stand-in for
        their quantization (`pyramid_noise`)."""
        feats = []
        for i, (g, read) in enumerate(((g0, SAMPLING[self.g0_sampling]), (g1, bilinear))):
            if pyramids is None or not pyramids[i].levels or mip is None:
                feats.append(read(g, grid_pos(g, uv), wrap, transform))
                continue
            shift = self.cells[i].bit_length() - 1  # grid_pyramid.level, for every texel at once
            level = (torch.floor(mip).long() - shift).clamp(0, pyramids[i].levels)
            feats.append(read_pyramid(read, g, pyramids[i], level, uv, wrap, transform, noise))
        return torch.cat(feats, dim=-1)
