"""The C grid reads (models/native_reads.py) against PyTorch's (`pyramid_atlas.read_pyramid` by runs): the same
features and grid gradients, noise of the same size, the same bits on any thread count, and a clear fallback."""

from __future__ import annotations

import subprocess

import pytest
import torch
from test_training_step import SHAPES, setup

from models import grid_gradient, native_build, native_reads
from models.quantization import Quantizer, feature_step

PYRAMID_SHAPES = [name for name in SHAPES if SHAPES[name].shape.grid_pyramid]


def read(model, uv, mip, runs, mode: str, native: bool, monkeypatch, seed: int = 1):
    """The grids' features for a batch and each grid's gradient under a fixed upstream gradient."""
    monkeypatch.setenv("NGTC_NATIVE", "1" if native else "0")
    torch.manual_seed(seed)
    model._deep = None  # the deep levels of the same grids, rebuilt alike
    features = model.grid_features(uv, mip, mode, runs)
    features.backward(torch.rand(features.shape, generator=torch.Generator().manual_seed(5)))
    grads = [g.grad.clone() for g in model.grids]
    for g in model.grids:  # the optimizer would clear their gradient buffers
        grid_gradient.clear_(g)
    for g in model.grids:
        g.grad = None
    return features.detach(), grads


@pytest.fixture
def calls(monkeypatch):
    """How many reads went through the kernel."""
    seen = []
    kernel = native_reads.read_pyramid
    monkeypatch.setattr(native_reads, "read_pyramid", lambda *a: seen.append(a[0]) or kernel(*a))
    return seen


@pytest.mark.parametrize("name", PYRAMID_SHAPES)
@pytest.mark.parametrize(("width", "height"), [(64, 32), (88, 44)])  # 88 x 44: mips off their levels' cell centres
@pytest.mark.parametrize("mode", ["ste", "none"])
def test_kernel_reads_pytorchs_features_and_gradients(name, width, height, mode, monkeypatch, calls):
    cfg, sampler, model = setup(name, width, height, batch=600)
    uv, mip, _ = sampler.sample(cfg.batch)
    runs = sampler.runs(cfg.batch)
    f_torch, g_torch = read(model, uv, mip, runs, mode, False, monkeypatch)
    assert not calls
    f_c, g_c = read(model, uv, mip, runs, mode, True, monkeypatch)
    # every grid whose pyramid has levels went through the kernel (the box pyramid's G1 of 11 x 6 cells has none)
    kinds = (model.shape.g0_sampling, "bilinear")
    assert calls == [kind for kind, p in zip(kinds, model._free_grid_pyramids(mode), strict=True) if p.levels]
    assert calls[0] == "corners"
    torch.testing.assert_close(f_c, f_torch, rtol=0, atol=1e-6)
    for a, b in zip(g_c, g_torch, strict=True):
        assert a.abs().sum() > 0
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)  # sums of many, in another order


@pytest.mark.parametrize("name", ["bpp2.4", "box pyramid"])
def test_noise_is_within_half_a_step_and_leaves_the_gradient_alone(name, monkeypatch):
    cfg, sampler, model = setup(name, 88, 44, batch=2000)
    uv, mip, _ = sampler.sample(cfg.batch)
    runs = sampler.runs(cfg.batch)
    plain, _ = read(model, uv, mip, runs, "none", True, monkeypatch)  # the grids are inside the range: no clamp
    noisy, grads = read(model, uv, mip, runs, "noise", True, monkeypatch)
    again, _ = read(model, uv, mip, runs, "noise", True, monkeypatch)
    _, torch_grads = read(model, uv, mip, runs, "noise", False, monkeypatch)
    assert torch.equal(noisy, again)  # a seed, the same draws
    half = max(float(torch.as_tensor(feature_step(b, torch.device("cpu"))).max()) for b in model.grid_bits) / 2
    noise = noisy - plain
    assert noise.abs().max() <= half + 1e-6
    assert noise.std() > half / 20 and abs(float(noise.mean())) < half / 20
    for a, b in zip(grads, torch_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)  # sums of many, in another order


@pytest.mark.parametrize("mode", ["noise", "ste"])
def test_any_thread_count_gives_the_same_bits(mode, monkeypatch):
    cfg, sampler, model = setup("bpp2.4", 88, 44, batch=2000)
    uv, mip, _ = sampler.sample(cfg.batch)
    runs = sampler.runs(cfg.batch)
    threads = torch.get_num_threads()
    results = []
    try:
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            results.append(read(model, uv, mip, runs, mode, True, monkeypatch))
    finally:
        torch.set_num_threads(threads)
    for features, grads in results[1:]:
        assert torch.equal(features, results[0][0])
        assert all(torch.equal(a, b) for a, b in zip(grads, results[0][1], strict=True))


def test_a_gradient_set_by_someone_else_is_added_to(monkeypatch):
    """As autograd does: a grid's `.grad` set beforehand, here laid out column-major, gets the step's added."""
    cfg, sampler, model = setup("bpp2.4", 64, 32, batch=600)
    uv, mip, _ = sampler.sample(cfg.batch)
    runs = sampler.runs(cfg.batch)
    _, (step_g0, _) = read(model, uv, mip, runs, "ste", True, monkeypatch)
    g0 = model.grids[0]
    before = torch.rand(g0.shape[::-1]).permute(2, 1, 0)  # not contiguous
    g0.grad = before.clone()
    torch.manual_seed(1)
    model._deep = None
    features = model.grid_features(uv, mip, "ste", runs)
    features.backward(torch.rand(features.shape, generator=torch.Generator().manual_seed(5)))
    torch.testing.assert_close(g0.grad, before + step_g0, rtol=1e-6, atol=1e-6)


def test_only_training_reads_of_cpu_float32_grids_take_the_kernel(monkeypatch):
    grid, uv = torch.zeros(4, 4, 3), torch.zeros(2, 2)
    assert native_reads.usable(grid, uv, Quantizer("ste", 4), wrap=True)
    assert not native_reads.usable(grid, uv, Quantizer("ste", 4), wrap=False)  # an encoder's crop
    assert not native_reads.usable(grid, uv, lambda x: x, wrap=True)  # not a quantizer it knows
    assert not native_reads.usable(grid.double(), uv, Quantizer("ste", 4), wrap=True)
    assert not native_reads.usable(torch.zeros(4, 4, native_reads.MAX_CHANNELS + 1), uv, Quantizer("ste", 4), True)
    monkeypatch.setenv("NGTC_NATIVE", "0")
    assert not native_reads.usable(grid, uv, Quantizer("ste", 4), wrap=True)


def test_a_failed_build_raises_and_leaves_no_file(monkeypatch, tmp_path):
    monkeypatch.setattr(native_build, "CACHE", tmp_path)
    monkeypatch.setenv("CC", "false")  # a compiler that fails
    with pytest.raises(subprocess.CalledProcessError):
        native_reads.build()
    assert not list(tmp_path.iterdir())
