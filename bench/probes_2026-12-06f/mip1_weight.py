"""`models.bench_capacity` with mip 1 weighing MIP1_WEIGHT times as much in the loss (its texels drawn as the preset's
falloff says; the weights rescaled so that the loss keeps its scale), for aluminium's mip 1 (issue 10):
MIP1_WEIGHT=2 OMP_NUM_THREADS=1 PYTHONPATH=. python bench/probes_2026-12-06f/mip1_weight.py MAT --preset P ..."""
import os

import numpy as np

from models import bench_capacity, fit

K = float(os.environ.get("MIP1_WEIGHT", "1"))
plain = fit.loss_weights


def weighted(share: np.ndarray, coarse_falloff: float | None) -> np.ndarray:
    weight = plain(share, coarse_falloff).copy()
    if len(weight) > 1:
        weight[1] *= K
    return weight / (weight * share).sum()


fit.loss_weights = weighted
bench_capacity.main()
