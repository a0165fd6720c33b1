"""Probe: G0 read at its cell's mip (the prefiltered pyramid's first level, one tap on the cell centre) fills the
second of the four corner slots, empty there, with the cell's own code: the synthesizer sees the cell mean of the
bilinear field and the code itself. Training only (no GLSL, no stored file), through bench_capacity.
`read_pyramid` below is models/pyramid_atlas.py's as of commit ca19ac3 with one branch added (marked "the probe"):
a frozen copy, so that the probe measures what was recorded whatever the library becomes.

    OMP_NUM_THREADS=1 PYTHONPATH=. python bench/probes_2026-12-06b/centre_code.py MATERIAL --preset P --steps N \
        --threads 1 --mips 5 --variants base --out F
"""

from __future__ import annotations

import sys

import torch

from models import bench_capacity, grid_sampler
from models.pyramid_atlas import (
    MIX,
    _footprint,
    _length,
    _pool,
    _split,
    _take,
    constant,
    feature_step,
    gather,
    mix_centred,
    noise_spread,
    pyramid_noise,
    tap_cells,
)


def read_pyramid(kind: str, grid: torch.Tensor, pyramid: object, level: torch.Tensor, uv: torch.Tensor,
                 wrap: bool, transform: object, noise: bool,
                 runs: list | None = None) -> torch.Tensor:
    """Each texel read (`grid_taps.MIX[kind]`) from its pyramid level: level 0 and, in training, the sparse
    levels from the grid (one gather, quantized by `transform`), the others from the atlas (with
    `pyramid_noise` when `noise`). A level whose texels sit on its cell centres (a mip that halves with the
    level: every read past the cell but the deepest) gathers one tap, not four: the others weigh 0. `runs`: the
    texels are sorted by level in these runs (training's batches), found without reading the device."""
    h0, w0, c = grid.shape
    sparse = min(pyramid.sparse_levels if pyramid.grid is not None else 0, pyramid.levels)
    spread = noise_spread(pyramid.levels, pyramid.prefilter, uv.device) if noise else None
    reads, deep = _split(level, sparse, pyramid.shapes, runs)
    parts, order, indices, finish = [], [], [], []
    for lv, rows, centred in reads:
        h, w = (h0, w0) if lv == 0 else pyramid.shapes[lv - 1]
        xs, ys, fx, fy = tap_cells(_take(uv, rows) * constant((w, h), uv.dtype, uv.device) - 0.5, w, h, wrap)
        if centred is None:
            centred = lv > 0 and not bool(fx.any() or fy.any())
        taps = 1 if centred else 4
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
            if taps == 1 and kind == "corners" and lv == 1 and pyramid.prefilter:  # the probe: the cell's own code too
                centre = chunk.view(-1, len(weights), c)[:, len(weights) // 2]
                centre = centre if transform is None else transform(centre)
                parts.append(torch.cat([values, centre, values.new_zeros(len(values), 2 * c)], dim=-1))
            else:
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


grid_sampler.read_pyramid = read_pyramid

if __name__ == "__main__":
    sys.argv[0] = "bench_capacity"
    bench_capacity.main()
