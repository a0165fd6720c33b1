"""Probe: is a step faster as two half-batches on two Python threads (one torch thread each) than as one batch
on two torch threads? Timing only: grid gradients race unless --lock."""
import argparse
import threading
import time

import torch

from models import grid_gradient
from models.fit import FitConfig, fit_sampler, grid_groups, make_optimizer, texel_loss, training_model
from models.material import load_material
from models.presets import get_preset

p = argparse.ArgumentParser()
p.add_argument("material")
p.add_argument("--preset", default="bpp16")
p.add_argument("--steps", type=int, default=100)
p.add_argument("--mode", choices=["one", "two", "seq", "one1"], default="one")
p.add_argument("--lock", action="store_true")
p.add_argument("--batch", type=int, default=8192)
a = p.parse_args()

mat = load_material(a.material)
mips = mat.mip_chain()
cfg = FitConfig(get_preset(a.preset), steps=a.steps, seconds=None, device="cpu", batch=a.batch)
gen = torch.Generator().manual_seed(0)
sampler = fit_sampler(mips, cfg, torch.device("cpu"), gen)
h, w, c = mips[0].shape
model = training_model(c, cfg, torch.device("cpu"))
model.init_grids(w, h, generator=gen)
opt = make_optimizer(grid_groups(model, cfg), cfg)
lock = threading.Lock()
if a.lock:
    orig = grid_gradient._accumulate

    def locked(*args):
        with lock:
            orig(*args)
    grid_gradient._accumulate = locked


def half(batch, out):
    torch.set_num_threads(1)
    uv, mip, target = sampler.sample(batch)
    o = model(uv, mip, quant_mode="noise", mip_runs=sampler.runs(batch))
    loss = texel_loss(o, target, sampler.weights(batch)) * (batch / cfg.batch)
    loss.backward()
    out.append(loss.detach())


def whole():
    uv, mip, target = sampler.sample(cfg.batch)
    o = model(uv, mip, quant_mode="noise", mip_runs=sampler.runs(cfg.batch))
    texel_loss(o, target, sampler.weights(cfg.batch)).backward()


def step():
    opt.zero_grad(set_to_none=True)
    if a.mode in ("one", "one1"):
        half(cfg.batch, []) if a.mode == "one1" else whole()
    elif a.mode == "seq":
        half(cfg.batch // 2, [])
        half(cfg.batch // 2, [])
    else:
        res = []
        ts = [threading.Thread(target=half, args=(cfg.batch // 2, res)) for _ in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    opt.step()
    model.after_optimizer_step_()


torch.set_num_threads(int(__import__("os").environ.get("MAIN_THREADS", "2")))
for _ in range(10):
    step()
t0 = time.perf_counter()
for _ in range(a.steps):
    step()
dt = time.perf_counter() - t0
print(f"{a.preset} {a.mode} lock={a.lock}: {a.steps / dt:.1f} steps/s")
print("main threads after:", torch.get_num_threads())
