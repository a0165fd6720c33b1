"""Milliseconds of the grid sampler's forward and backward alone (a fixed random upstream gradient)."""
import sys
import time

import torch
from step_setup import training_setup

mat, preset, quant = sys.argv[1], sys.argv[2], sys.argv[3]
cfg, sampler, model = training_setup(mat, preset)
fwd = bwd = 0.0
n = 60
for i in range(n + 10):
    uv, mip, target = sampler.sample(cfg.batch)
    t0 = time.perf_counter()
    feats = model.grid_features(uv, mip, quant, sampler.runs(cfg.batch))
    t1 = time.perf_counter()
    feats.backward(torch.ones_like(feats))
    t2 = time.perf_counter()
    for g in model.grids:
        g.grad = None
    if i >= 10:
        fwd += t1 - t0
        bwd += t2 - t1
print(f"{preset} {quant}: forward {1000 * fwd / n:.2f} ms, backward {1000 * bwd / n:.2f} ms, "
      f"features {tuple(feats.shape)}")
