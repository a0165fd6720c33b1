"""Probe: after a fit, search the grids' codes directly (a discrete step of one code, first-order ranked).

    OMP_NUM_THREADS=1 PYTHONPATH=. python bench/probes_2026-12-06c/code_search.py MATERIAL --preset P --steps N \\
        [--rounds R] [--out F]

Fits as `models.bench_capacity` does (one thread, a step budget), then, with the grids set to their stored values:
each round takes the gradient of the loss over every texel of mips 0-4 (each mip weighing its share of training's
loss) with respect to the stored feature values, proposes one code step against it for the `k` values with the
largest predicted gain (|gradient| x step), keeps the step if the loss fell and tries twice as many next, else undoes
it and tries a quarter as many. PSNR at mips 0-4 before and after, and the CPU seconds of each part.
"""

from __future__ import annotations

import json
import time

import torch
from probe_fit import MIPS, fitted, mip_psnr, parser

from models.fit import fit_sampler
from models.grid_sampler import texel_uv
from models.quantization import feature_step, rounded
from models.spec import QUANT_RANGE


def objective(model, chain, weights, backward: bool) -> float:
    """Sum over mips 0-4 of weight x mean squared error, every texel; with `backward`, the grids' gradients too."""
    total = 0.0
    model._deep = None  # the grids changed: rebuild the deep pyramid levels
    h0, w0 = chain[0].shape[:2]
    for m in range(MIPS):
        c = chain[m].shape[2]
        target = torch.from_numpy(chain[m]).reshape(-1, c)
        uv = texel_uv(w0, h0, m)  # texel centres of mip m of a w0 x h0 material
        for rows in torch.arange(len(uv)).split(65536):
            with torch.set_grad_enabled(backward):
                out = model(uv[rows], torch.full((len(rows),), float(m)), quant_mode="ste")
                loss = ((out - target[rows]) ** 2).sum() * (weights[m] / (len(uv) * c))
                if backward:
                    loss.backward()
            total += float(loss.detach())
    return total


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--first", type=float, default=1e-3, help="share of grid values stepped in the first round")
    args = p.parse_args()
    chain, cfg, model, fit_cpu = fitted(args.material, args.preset, args.steps)
    before = mip_psnr(model, chain)
    sampler = fit_sampler(chain, cfg, torch.device("cpu"), torch.Generator())
    weights = (sampler.weight * sampler.share)[:MIPS].tolist()

    cpu = time.thread_time()
    model.train()
    synthesizer = model.texture_synthesizer
    synthesizer.train_dtype = None
    for prm in synthesizer.parameters():
        prm.requires_grad_(False)
    grids = list(model.grids)
    steps = [feature_step(b, g.device) for g, b in zip(grids, model.grid_bits, strict=True)]
    with torch.no_grad():
        for g, b in zip(grids, model.grid_bits, strict=True):
            g.copy_(rounded(g.detach().clone(), b))
    total = sum(g.numel() for g in grids)
    k = max(1, int(args.first * total))
    loss = None
    log = []
    for r in range(args.rounds):
        for g in grids:
            g.grad = None
            g._touched = []
            if getattr(g, "_gradient", None) is not None:
                g._gradient.zero_()
        loss = objective(model, chain, weights, backward=True)
        gains, moves = [], []
        for g, s in zip(grids, steps, strict=True):
            grad = g.grad
            step = torch.as_tensor(s).expand_as(g)
            move = -torch.sign(grad) * step
            lo, hi = QUANT_RANGE
            legal = ((g + move) >= lo - 1e-6) & ((g + move) <= hi + 1e-6) & (grad != 0)
            gains.append(torch.where(legal, grad.abs() * step, torch.zeros_like(grad)).reshape(-1))
            moves.append(move)
        gain = torch.cat(gains)
        while True:
            kk = min(k, int((gain > 0).sum()))
            if kk == 0:
                break
            chosen = torch.zeros_like(gain, dtype=torch.bool)
            chosen[gain.topk(kk).indices] = True
            masks = chosen.split([g.numel() for g in grids])
            with torch.no_grad():
                for g, mv, mk in zip(grids, moves, masks, strict=True):
                    g.add_(mv * mk.view_as(g))
            new = objective(model, chain, weights, backward=False)
            log.append({"round": r, "k": kk, "loss": loss, "new": new})
            print(json.dumps(log[-1]), flush=True)
            if new < loss:
                k = kk * 2
                break
            with torch.no_grad():
                for g, mv, mk in zip(grids, moves, masks, strict=True):
                    g.sub_(mv * mk.view_as(g))
            k = max(1, kk // 4)
            if kk == 1:
                break
    search_cpu = time.thread_time() - cpu
    model.eval()
    after = mip_psnr(model, chain)
    result = {"material": args.material, "preset": args.preset, "steps": model.fit_steps, "psnr_before": before,
              "psnr_after": after, "fit_cpu": round(fit_cpu, 1), "search_cpu": round(search_cpu, 1), "log": log}
    print(json.dumps({k: v for k, v in result.items() if k != "log"}), flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
