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
striding over it (models/grid_pyramid.py): the same reads, on a coarser level (models/pyramid_atlas.py).
The reads themselves are in models/grid_taps.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from . import grid_pyramid
from .grid_taps import SAMPLING, Transform, bilinear, corners, grid_pos, read
from .pyramid_atlas import LevelRun, Pyramid, read_pyramid
from .spec import mip_size

__all__ = ["SAMPLING", "GridSampler", "MipRun", "bilinear", "corners", "grid_pos", "texel_index_uv", "texel_uv"]


class MipRun(NamedTuple):
    """`count` texel centres of mip `mip` (`width` x `height` texels), one after the other in a batch sorted by
    mip: training's batches (`fit.MipSampler.runs`). Known on the host, so reading the batch needs no device reads."""
    mip: int
    count: int
    width: int
    height: int


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
                transforms: tuple[Transform, Transform] = (None, None), mip: torch.Tensor | None = None,
                pyramids: tuple[Pyramid, Pyramid] | None = None, noise: bool = False,
                mip_runs: Sequence[MipRun] | None = None) -> torch.Tensor:
        """`transforms`: each grid's quantization of the cells it reads (they differ in bits); `pyramids`: each
        grid's, read at the texels' `mip`; `noise`: training's stand-in for the quantization of their atlas levels
        (`pyramid_atlas.pyramid_noise`); `mip_runs`: the texels are these runs of texel centres, sorted by mip."""
        feats = []
        for i, (g, kind) in enumerate(((g0, self.g0_sampling), (g1, "bilinear"))):
            transform = transforms[i]
            if pyramids is None or not pyramids[i].levels or mip is None:
                feats.append(read(kind, g, grid_pos(g, uv), wrap, transform))
                continue
            past = torch.floor(mip).long() - (self.cells[i].bit_length() - 1)  # grid_pyramid.level, for all
            level = torch.where(past < 0, 0, (past + int(pyramids[i].prefilter)).clamp(max=pyramids[i].levels))
            runs = None if mip_runs is None else level_runs(mip_runs, self.cells[i], pyramids[i])
            feats.append(read_pyramid(kind, g, pyramids[i], level, uv, wrap, transform, noise, runs))
        return torch.cat(feats, dim=-1)


def level_runs(mip_runs: Sequence[MipRun], cell: int, pyramid: Pyramid) -> list[LevelRun]:
    """The pyramid level each run of a sorted batch reads (`GridSampler.forward`'s per-texel level, on the host)."""
    runs, start = [], 0
    for run in mip_runs:
        level = grid_pyramid.level(run.mip, cell, pyramid.levels, pyramid.prefilter)
        runs.append(LevelRun(level, start, start + run.count, (run.width, run.height)))
        start += run.count
    return runs
