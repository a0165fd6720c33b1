"""Probe (not kept): free grids initialised uniform in +-INIT_SCALE instead of the shipped +-0.1.

    INIT_SCALE=0.5 OMP_NUM_THREADS=1 python bench/probes_2026-12-05/grid_init.py MATERIAL --preset bpp12 \\
        --steps 1200 --mips 5

Arguments: models.bench_capacity's.
"""

from __future__ import annotations

import os

import torch

from models import bench_capacity
from models import compression_model as cm

SCALE = float(os.environ.get("INIT_SCALE", "0.1"))
shipped_init = cm.CompressionModel.init_grids


def init_grids(self, width, height, generator=None, values=None) -> None:
    if values is None:
        values = tuple((torch.rand(*cm.grid_shape(width, height, s), c, generator=generator) * 2 - 1) * SCALE
                       for c, s in zip(self.grid_channels, self.grid_cells, strict=True))
    shipped_init(self, width, height, generator, values)


cm.CompressionModel.init_grids = init_grids

if __name__ == "__main__":
    bench_capacity.main()
