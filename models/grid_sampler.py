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
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .spec import mip_size


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


def _taps(grid: torch.Tensor, pos: torch.Tensor, wrap: bool, transform: Transform = None):
    """The four cells around positions pos (N, 2) in grid cells (x, y), and the fractions (fx, fy).

    One gather for all four taps: its backward then scatters into one grid-sized gradient, not four.
    `transform` (training's quantization) applies to the gathered cells only, not to every cell."""
    h, w, c = grid.shape
    p0 = torch.floor(pos)
    f = pos - p0
    x0, y0 = p0[:, 0].long(), p0[:, 1].long()
    if wrap:
        x0, x1 = x0 % w, (x0 + 1) % w
        y0, y1 = y0 % h, (y0 + 1) % h
    else:
        x0, x1 = x0.clamp(0, w - 1), (x0 + 1).clamp(0, w - 1)
        y0, y1 = y0.clamp(0, h - 1), (y0 + 1).clamp(0, h - 1)
    idx = torch.cat([y0 * w + x0, y0 * w + x1, y1 * w + x0, y1 * w + x1])
    cells = grid.reshape(h * w, c).index_select(0, idx)  # ~2x faster than [idx], forward and backward
    if transform is not None:
        cells = transform(cells)
    return cells.chunk(4), f[:, :1], f[:, 1:]


def bilinear(grid: torch.Tensor, pos: torch.Tensor, wrap: bool = True, transform: Transform = None) -> torch.Tensor:
    """Bilinear read of grid (H, W, C) at positions pos (N, 2) given in grid cells (x, y)."""
    (c00, c10, c01, c11), fx, fy = _taps(grid, pos, wrap, transform)
    top = c00 * (1 - fx) + c10 * fx
    bottom = c01 * (1 - fx) + c11 * fx
    return top * (1 - fy) + bottom * fy


def corners(grid: torch.Tensor, pos: torch.Tensor, wrap: bool = True, transform: Transform = None) -> torch.Tensor:
    """The four cells' features times their bilinear weights, side by side: (N, 4C), summing to bilinear."""
    (c00, c10, c01, c11), fx, fy = _taps(grid, pos, wrap, transform)
    gx, gy = 1 - fx, 1 - fy
    return torch.cat([c00 * (gx * gy), c10 * (fx * gy), c01 * (gx * fy), c11 * (fx * fy)], dim=-1)


SAMPLING = {"bilinear": bilinear, "corners": corners}


class GridSampler(nn.Module):
    """Samples G0 (fine) and G1 (coarse) at texture coordinates; returns their features concatenated."""

    def __init__(self, g0_sampling: str = "corners"):
        super().__init__()
        if g0_sampling not in SAMPLING:
            raise ValueError(f"unknown G0 sampling {g0_sampling!r}")
        self.g0_sampling = g0_sampling

    def forward(self, g0: torch.Tensor, g1: torch.Tensor, uv: torch.Tensor, wrap: bool = True,
                transform: Transform = None) -> torch.Tensor:
        feats = []
        for g, read in ((g0, SAMPLING[self.g0_sampling]), (g1, bilinear)):
            size = torch.tensor([g.shape[1], g.shape[0]], dtype=uv.dtype, device=uv.device)
            feats.append(read(g, uv * size - 0.5, wrap, transform))
        return torch.cat(feats, dim=-1)
