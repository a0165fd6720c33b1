"""Probe: G0 read from the 4x4 cells around a mip-0 texel ("wide") instead of its 2x2 corners, at equal stored bits.

The inner 2x2 slots are the corners as now (bilinear weights); the outer ring's 12 cells follow, weighted per axis
by (1 - fx) / 2 (the cell before) and fx / 2 (the cell after), so a cell's weight is 0 where it leaves the window.
Only mip 0 (G0's level 0) reads the ring; coarser mips get zeros there. A monkeypatch for
`python -m models.bench_capacity`: run this file with its arguments and a variant `g0_sampling=wide`.
"""
import sys

import torch

from models import bench_capacity, grid_sampler, grid_taps, spec
from models.decoder_shape import DecoderShape
from models.grid_gradient import gather

spec.FEATURES_PER_CHANNEL["wide"] = 16
grid_taps.MIX["wide"] = grid_taps.mix_corners
grid_taps.SAMPLING["wide"] = grid_taps.corners
bench_capacity.decoder_shape = lambda **fields: DecoderShape(**fields)
_forward = grid_sampler.GridSampler.forward
RING = [(-1, -1), (0, -1), (1, -1), (2, -1), (-1, 0), (2, 0), (-1, 1), (2, 1), (-1, 2), (0, 2), (1, 2), (2, 2)]


def axis_weight(i: int, f: torch.Tensor) -> torch.Tensor:
    return {-1: (1 - f) * 0.5, 0: 1 - f, 1: f, 2: f * 0.5}[i]


def ring(g0: torch.Tensor, uv: torch.Tensor, wrap: bool, transform) -> torch.Tensor:
    h, w, c = g0.shape
    pos = grid_taps.grid_pos(g0, uv)
    p0 = torch.floor(pos)
    f = pos - p0
    x0, y0 = p0[:, 0].long(), p0[:, 1].long()
    fx, fy = f[:, :1], f[:, 1:]
    xs = torch.cat([grid_taps.wrapped(x0 + dx, w) for dx, _ in RING])
    ys = torch.cat([grid_taps.wrapped(y0 + dy, h) for _, dy in RING])
    cells = gather(g0, ys * w + xs)
    if transform is not None:
        cells = transform(cells)
    chunks = cells.chunk(len(RING))
    return torch.cat([chunk * (axis_weight(dx, fx) * axis_weight(dy, fy))
                      for chunk, (dx, dy) in zip(chunks, RING, strict=True)], dim=-1)


def forward(self, g0, g1, uv, wrap=True, transforms=(None, None), mip=None, pyramids=None, noise=False,
            mip_runs=None):
    feats = _forward(self, g0, g1, uv, wrap, transforms, mip, pyramids, noise, mip_runs)
    if self.g0_sampling != "wide":
        return feats
    n, c = len(uv), g0.shape[-1]
    inner, rest = feats[:, :4 * c], feats[:, 4 * c:]
    outer = feats.new_zeros(n, 12 * c)
    if mip_runs is not None:
        n0 = mip_runs[0].count if mip_runs[0].mip == 0 else 0
        if n0:
            outer = torch.cat([ring(g0, uv[:n0], wrap, transforms[0]), outer[n0:]])
    elif mip is None or bool((mip == 0).all()):
        outer = ring(g0, uv, wrap, transforms[0])
    elif bool((mip == 0).any()):
        raise NotImplementedError("mixed mips without runs")
    return torch.cat([inner, outer, rest], dim=-1)


grid_sampler.GridSampler.forward = forward

if __name__ == "__main__":
    sys.argv[0] = "bench_capacity"
    bench_capacity.main()
