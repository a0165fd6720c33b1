"""Training's step reads its sorted batches by runs the host knows (`MipRun`): the same values and gradients as the
general read, and no reads back from the device (on a GPU each one waits for the queue to drain)."""

from __future__ import annotations

import traceback

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from models import grid_gradient
from models.fit import FitConfig, MipSampler, build_model, grid_groups, make_optimizer
from models.presets import PRESETS, preset
from models.spec import mip_count, mip_size

SHAPES = {
    "bpp2.4": PRESETS["bpp2.4"],  # prefiltered pyramids, 2-bit G0 read as corners
    "bpp16": PRESETS["bpp16"],
    "box pyramid": preset("box", 4, 2, 8, 8, grid_pyramid=True, pyramid_prefilter=False),
    "strided, bilinear": preset("strided", 4, 4, 8, 8, g0_sampling="bilinear"),
}
# Host reads: a tensor's value read into Python (item, bool, a nonzero's length) or a tensor made from Python values
# (on a GPU, a copy to the device that waits for the queue)
HOST_READS = {"nonzero", "_local_scalar_dense", "is_nonzero", "equal", "lift_fresh"}


def chain(width: int, height: int, channels: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.random((h, w, channels), dtype=np.float32)
            for w, h in (mip_size(width, height, m) for m in range(mip_count(width, height)))]


def setup(name: str, width: int, height: int, batch: int):
    mips = chain(width, height)
    cfg = FitConfig(SHAPES[name], steps=1, seconds=None, device="cpu", batch=batch)
    gen = torch.Generator().manual_seed(0)
    sampler = MipSampler(mips, torch.device("cpu"), gen, cfg.falloff, epochs=True)
    model = build_model(3, cfg.preset, with_encoder=False)
    model.init_grids(width, height, generator=gen)
    return cfg, sampler, model


@pytest.mark.parametrize("name", SHAPES)
@pytest.mark.parametrize(("width", "height"), [(64, 32), (88, 44)])  # 88 x 44: mips off their levels' cell centres
@pytest.mark.parametrize("mode", ["noise", "ste"])
def test_reading_by_runs_gives_the_general_reads_values_and_gradients(name, width, height, mode, monkeypatch):
    monkeypatch.setenv("NGTC_NATIVE", "0")  # PyTorch's reads by runs (tests/test_native_reads.py: the C kernel's)
    cfg, sampler, model = setup(name, width, height, batch=600)
    uv, mip, target = sampler.sample(cfg.batch)
    results = []
    for runs in (None, sampler.runs(cfg.batch)):
        torch.manual_seed(1)  # training's quantization noise: the same draws in the same order
        for p in model.parameters():
            p.grad = None
        out = model(uv, mip, quant_mode=mode, mip_runs=runs)
        torch.mean((out - target) ** 2).backward()
        grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
        for g in model.grids:  # the optimizer would clear their gradient buffers
            grid_gradient.clear_(g)
        results.append((out.detach(), grads))
    (out_a, grads_a), (out_b, grads_b) = results
    assert torch.equal(out_a, out_b)
    assert len(grads_a) == len(grads_b) == len(list(model.parameters()))
    for a, b in zip(grads_a, grads_b, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-7)  # the same sums, added in the same order or nearly


class HostReads(TorchDispatchMode):
    """Records the ops that read a tensor back to the host, with the codec's line that asked for them."""

    def __init__(self):
        super().__init__()
        self.reads: list[tuple[str, str]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if name in HOST_READS:
            frames = [f for f in traceback.extract_stack() if "/models/" in f.filename]
            where = f"{frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].name}" if frames else "?"
            self.reads.append((name, where))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("name", ["bpp2.4", "bpp16"])
def test_a_training_step_reads_nothing_back_from_the_device(name):
    cfg, sampler, model = setup(name, 128, 128, batch=512)
    opt = make_optimizer(grid_groups(model, cfg), cfg)

    def step(mode: str) -> None:
        uv, mip, target = sampler.sample(cfg.batch)
        loss = torch.mean((model(uv, mip, quant_mode=mode, mip_runs=sampler.runs(cfg.batch)) - target) ** 2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for mode in ("noise", "ste"):
        step(mode)  # the first step of a mode makes its constants
        with HostReads() as seen:
            for _ in range(20):  # past a rebuild of the pyramids' deep levels (every 16 steps)
                step(mode)
        # The ones allowed: the noise table's offset, and on the CPU only the C reads' noise seed and the C grid
        # step's step count (Adam's state keeps it as a tensor)
        allowed = {("_local_scalar_dense", "quantization.py:uniform_noise"),
                   ("_local_scalar_dense", "native_reads.py:__init__"),
                   ("_local_scalar_dense", "native_grid_adam.py:step_")}
        assert set(seen.reads) <= allowed, seen.reads
    # the general read does read back (the check above can fail)
    with HostReads() as seen:
        uv, mip, _ = sampler.sample(cfg.batch)
        model(uv, mip, quant_mode="ste")
    assert ("nonzero", "pyramid_atlas.py:_split") in seen.reads
