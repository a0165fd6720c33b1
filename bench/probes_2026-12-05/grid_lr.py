"""Probe (not kept): a learning rate per grid, G0 and G1 scaled apart from the shared `FitConfig.lr_grids`.

    G1_LR_SCALE=2 OMP_NUM_THREADS=1 python bench/probes_2026-12-05/grid_lr.py MATERIAL --preset bpp2.4 \\
        --steps 2000 --mips 5

G0_LR_SCALE, G1_LR_SCALE: factors (default 1). Arguments: models.bench_capacity's.
"""

from __future__ import annotations

import os

from models import bench_capacity
from models import fit as F

SCALES = (float(os.environ.get("G0_LR_SCALE", "1")), float(os.environ.get("G1_LR_SCALE", "1")))
shared_groups = F.grid_groups


def grid_groups(model, cfg) -> list[dict]:
    grids, *rest = shared_groups(model, cfg)
    return [{"params": [g], "lr": grids["lr"] * s} for g, s in zip(model.grids, SCALES, strict=True)] + rest


F.grid_groups = grid_groups

if __name__ == "__main__":
    bench_capacity.main()
