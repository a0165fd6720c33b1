"""Probe: the prefiltered pyramid's first-level filter [a, 1 - 2a, a] (a = 1/8 is the bilinear field's cell mean),
training only (no GLSL, no stored file), through bench_capacity:

    PF_A=0.0625 OMP_NUM_THREADS=1 python bench/probes_2026-12-06b/prefilter_taps.py MATERIAL --preset P --steps N \
        --threads 1 --mips 5 --variants base --out F

a = 0 reads the codes themselves at the cell's mip, as `pyramid_prefilter=0` does.
"""

from __future__ import annotations

import os
import sys

from models import bench_capacity, grid_pyramid, pyramid_atlas

A = float(os.environ["PF_A"])


def prefilter_weights(side: int) -> list[float]:
    taps = [0.0] * (side + 2)
    for i in range(side):
        for k, w in enumerate((A, 1.0 - 2 * A, A)):
            taps[i + k] += w / side
    return taps


def prefiltered(grid):
    for axis in (0, 1):
        before, after = grid_pyramid._rolled(grid, 1, axis), grid_pyramid._rolled(grid, -1, axis)
        grid = (before + after) * A + grid * (1.0 - 2 * A)
    return grid


grid_pyramid.prefilter_weights = prefilter_weights
grid_pyramid.prefiltered = pyramid_atlas.prefiltered = prefiltered

if __name__ == "__main__":
    sys.argv[0] = "bench_capacity"
    bench_capacity.main()
