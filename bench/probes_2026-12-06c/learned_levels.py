"""Probe: what learned, non-uniform feature levels per channel would be worth, with the fit's codes kept.

    OMP_NUM_THREADS=1 PYTHONPATH=. python bench/probes_2026-12-06c/learned_levels.py MATERIAL --preset P \\
        --steps 3000 --tune 300 [--lr 1e-3] [--level-lr 5e-3] [--out F]

Fits as `models.bench_capacity` does (one thread, a step budget), then keeps every grid value's code and tunes for
`--tune` more steps (training's batches, a cosine from --lr to 0) twice from the same fit: the synthesizer alone on
the uniform levels (the control), and the synthesizer with each channel's levels (2^bits values a channel, the
uniform ones to start). The difference is what levels placed per channel add to the same codes.
"""

from __future__ import annotations

import copy
import json
import math
import time

import torch
from probe_fit import fitted, mip_psnr, parser

from models.fit import fit_sampler, texel_loss
from models.quantization import feature_step, to_codes
from models.spec import QUANT_RANGE


def channel_levels(bits, channels: int) -> torch.Tensor:
    """(C, 16) the uniform levels of each channel's codes (unused entries past 2^bits)."""
    per = [bits] * channels if isinstance(bits, int) else list(bits)
    step = feature_step(tuple(per), torch.device("cpu"))
    return torch.arange(16, dtype=torch.float32)[None, :] * step[:, None] + QUANT_RANGE[0]


def tune(model, chain, cfg, steps: int, lr: float, learn_levels: bool, level_lr: float) -> tuple[list[float], float]:
    codes = [to_codes(g.detach(), b).long() for g, b in zip(model.grids, model.grid_bits, strict=True)]
    levels = [channel_levels(b, g.shape[-1]).requires_grad_(learn_levels)
              for g, b in zip(model.grids, model.grid_bits, strict=True)]
    channel = [torch.arange(c.shape[-1]).expand_as(c) for c in codes]

    def grids() -> tuple[torch.Tensor, ...]:
        return tuple(lv[ch, cd] for lv, ch, cd in zip(levels, channel, codes, strict=True))

    def grid_features(uv, mip, quant_mode="ste", mip_runs=None):
        gs = grids()
        pyramids = model._pyramids(gs, quantized=False)
        return model.grid_sampler(*gs, uv, transforms=(None, None), mip=mip, pyramids=pyramids, noise=False,
                                  mip_runs=mip_runs)

    model.grid_features = grid_features
    synthesizer = model.texture_synthesizer
    synthesizer.train_dtype = None
    params = [{"params": synthesizer.parameters(), "lr": lr}]
    if learn_levels:
        params.append({"params": levels, "lr": level_lr})
    opt = torch.optim.Adam(params, betas=(0.9, 0.99), eps=1e-15)
    sampler = fit_sampler(chain, cfg, torch.device("cpu"), torch.Generator().manual_seed(1))
    model.train()
    cpu = time.thread_time()
    base = [g["lr"] for g in opt.param_groups]
    for step in range(steps):
        for g, start in zip(opt.param_groups, base, strict=True):
            g["lr"] = start * 0.5 * (1 + math.cos(math.pi * step / steps))
        uv, mip, target = sampler.sample(cfg.batch)
        out = synthesizer(grid_features(uv, mip, mip_runs=sampler.runs(cfg.batch)), uv, mip)
        loss = texel_loss(out, target, sampler.weights(cfg.batch))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    spent = time.thread_time() - cpu
    model.eval()
    return mip_psnr(model, chain), spent


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--tune", type=int, default=300)
    p.add_argument("--lr", type=float, default=1e-3, help="the synthesizer's learning rate")
    p.add_argument("--level-lr", type=float, default=5e-3, help="the levels' learning rate")
    args = p.parse_args()
    chain, cfg, model, _ = fitted(args.material, args.preset, args.steps)
    before = mip_psnr(model, chain)
    result = {"material": args.material, "preset": args.preset, "steps": args.steps, "tune": args.tune,
              "lr": args.lr, "level_lr": args.level_lr, "psnr_fit": before}
    for name, learn in (("synthesizer only", False), ("synthesizer and levels", True)):
        psnr, spent = tune(copy.deepcopy(model), chain, cfg, args.tune, args.lr, learn, args.level_lr)
        result[name] = {"psnr": psnr, "cpu_seconds": round(spent, 1)}
        print(json.dumps({name: result[name]}), flush=True)
    print(json.dumps(result), flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
