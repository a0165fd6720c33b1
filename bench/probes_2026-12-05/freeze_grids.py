"""Probe (not kept): freeze the grids at their codes for the last part of a fit, then train the synthesizer alone
on the exact codes (cheaper steps: no grid gradient, no Adam or clamp over the grids).

    FREEZE_AT=0.85 OMP_NUM_THREADS=1 python bench/probes_2026-12-05/freeze_grids.py MATERIAL --preset bpp4 \\
        --seconds 90 --mips 5

FREEZE_AT: the fraction of the grids phase where the grids freeze (default: never). Arguments: models.bench_capacity's.
"""

from __future__ import annotations

import os

import torch

from models import bench_capacity
from models import fit as F
from models.pyramid_atlas import Pyramid
from models.quantization import from_codes, to_codes

FREEZE_AT = float(os.environ.get("FREEZE_AT", "2"))


def freeze(model) -> None:
    """Grids to their codes' values, no longer trained; their pyramids built once, as a decoder builds them."""
    codes = []
    with torch.no_grad():
        for g, bits in zip(model.grids, model.shape.grid_bits, strict=True):
            c = to_codes(g, bits)
            g.copy_(from_codes(c, bits))
            g.requires_grad_(False)
            g.grad = None
            codes.append(c.cpu().numpy())
    if model.shape.grid_pyramid:
        device = model.grids[0].device
        model.pyramids_from_codes = tuple(Pyramid.from_codes(c, device, model.shape.pyramid_prefilter, b)
                                          for c, b in zip(codes, model.shape.grid_bits, strict=True))


def run_phase(name, model, groups, budget, span, cfg, loss_fn, callback) -> None:
    """fit._run_phase, with the freeze."""
    opt = F.make_optimizer(groups, cfg)
    base = [g["lr"] for g in opt.param_groups]
    lo, hi = span
    frozen = False
    while budget.fraction < hi:
        local = (budget.fraction - lo) / (hi - lo)
        if not frozen and local >= FREEZE_AT:
            freeze(model)
            frozen = True
        for g, lr in zip(opt.param_groups, base, strict=True):
            g["lr"] = lr * F.cosine(local, cfg.lr_floor)
        loss = loss_fn("none" if frozen else ("noise" if local < cfg.noise_share else "ste"))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if len(model.grids) and not frozen:
            model.after_optimizer_step_()
        budget.step += 1


F._run_phase = run_phase

if __name__ == "__main__":
    bench_capacity.main()
