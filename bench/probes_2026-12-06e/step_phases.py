"""Median milliseconds of a free-grid training step's phases (grid reads, synthesizer forward, loss + backward,
optimizer), 60 steps after 20 of warm-up: MAT PRESET float32|bf16. NGTC_NATIVE picks the kernels (`grid_reads`:
the synthesizer in PyTorch)."""
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "probes_2026-12-06d"))
from step_setup import training_setup  # noqa: E402

from models.fit import grid_groups, make_optimizer, texel_loss  # noqa: E402

cfg, sampler, model = training_setup(sys.argv[1], sys.argv[2])
model.texture_synthesizer.train_dtype = torch.bfloat16 if sys.argv[3] == "bf16" else None
opt = make_optimizer(grid_groups(model, cfg), cfg)
synth = model.texture_synthesizer
phases = {"grid": [], "synth": [], "bwd": [], "opt": []}
for i in range(80):
    uv, mip, target = sampler.sample(cfg.batch)
    t0 = time.perf_counter()
    feats = model.grid_features(uv, mip, "noise", sampler.runs(cfg.batch))
    t1 = time.perf_counter()
    out = synth(feats, uv, mip)
    t2 = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    texel_loss(out, target, sampler.weights(cfg.batch)).backward()
    t3 = time.perf_counter()
    opt.step()
    t4 = time.perf_counter()
    if i >= 20:
        for k, v in zip(phases, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            phases[k].append(v)
medians = {k: sorted(v)[len(v) // 2] * 1000 for k, v in phases.items()}
print(" ".join(f"{k} {v:.2f}" for k, v in medians.items()), f"sum {sum(medians.values()):.2f}")
