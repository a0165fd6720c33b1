"""GridAdam (models/grid_optimizer.py): Adam, then the grids clamped into their bounds and their gradient buffers
cleared. The C pass (models/native_grid_adam.py) against PyTorch's fused Adam, clamp and clear: the same values and
moments over steps of sparse reads, every row touched, a gradient set by hand; the same bits on any thread count."""

from __future__ import annotations

import pytest
import torch

from models import grid_gradient, native_grid_adam
from models.grid_optimizer import GridAdam

pytestmark = pytest.mark.skipif(not native_grid_adam.enabled(), reason="no C compiler: the grids step in PyTorch")

BOUNDS = (-0.5, 0.5)


def fit(native: bool, monkeypatch, reads: list[int], channels: int = 12, threads: int = 2, seed: int = 0):
    """A grid and a weight trained by GridAdam on a linear loss of gathered rows: reads[k] backwards of 30 rows
    before step k (a larger rate each step, so values cross the bounds). Returns the grid, the weight, the
    optimizer and how many grid steps took the kernel."""
    monkeypatch.setenv("NGTC_NATIVE", "1" if native else "0")
    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(seed)
    grid = torch.nn.Parameter(torch.rand(40, 24, channels, generator=gen) - 0.5)
    weight = torch.nn.Parameter(torch.rand(channels, generator=gen))
    opt = GridAdam([{"params": [grid], "lr": 0.05, "bounds": BOUNDS}, {"params": [weight], "lr": 0.01}],
                   betas=(0.9, 0.99), eps=1e-15, fused=True)
    calls = []
    kernel = native_grid_adam.step_
    monkeypatch.setattr(native_grid_adam, "step_", lambda *a: calls.append(1) or kernel(*a))
    for k, passes in enumerate(reads):
        opt.param_groups[0]["lr"] = 0.05 * (k + 1)
        opt.zero_grad(set_to_none=True)
        for _ in range(passes):
            rows = torch.randint(0, 40 * 24, (30,), generator=gen)
            direction = torch.randn(30, channels, generator=gen)
            (grid_gradient.gather(grid, rows) * direction * weight).sum().backward()
        opt.step()
        assert float(grid.detach().abs().max()) <= BOUNDS[1]
        assert not getattr(grid, "_touched", []), "the step left touched rows to clear"
        if grid.grad is not None:
            assert not grid.grad.any(), "the step left a gradient in the kept buffer"
    return grid.detach(), weight.detach(), opt, len(calls)


def assert_same_fit(a, b, atol: float = 1e-6) -> None:
    grid_a, weight_a, opt_a, _ = a
    grid_b, weight_b, opt_b, _ = b
    torch.testing.assert_close(grid_a, grid_b, rtol=1e-5, atol=atol)
    torch.testing.assert_close(weight_a, weight_b, rtol=1e-5, atol=atol)  # PyTorch's Adam, on the grids' values
    for sa, sb in zip(opt_a.state.values(), opt_b.state.values(), strict=True):
        assert float(sa["step"]) == float(sb["step"])
        torch.testing.assert_close(sa["exp_avg"], sb["exp_avg"], rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(sa["exp_avg_sq"], sb["exp_avg_sq"], rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("channels", [12, 4, 64])
def test_sparse_steps_match_pytorchs_adam_clamp_and_clear(channels, monkeypatch):
    reads = [1, 2, 0, 1, 1, 3, 1, 0, 1, 1]  # a step without reads has no gradient: Adam skips the grid then
    native = fit(True, monkeypatch, reads, channels)
    assert native[3] == sum(1 for r in reads if r), "the grid's steps did not take the kernel"
    reference = fit(False, monkeypatch, reads, channels)
    assert reference[3] == 0
    assert_same_fit(native, reference)
    assert (native[0].abs() == BOUNDS[1]).any(), "no value reached the bounds: the clamp was not tested"


def test_every_row_taken_when_too_many_passes_were_kept(monkeypatch):
    reads = [grid_gradient.MAX_TOUCHED + 2, 1, 40, 1]  # past the kept passes; most rows of the grid
    assert_same_fit(fit(True, monkeypatch, reads), fit(False, monkeypatch, reads))


def test_same_bits_on_any_thread_count(monkeypatch):
    reads = [1, 2, 1, 1, 3]
    one, three = fit(True, monkeypatch, reads, threads=1), fit(True, monkeypatch, reads, threads=3)
    assert torch.equal(one[0], three[0])


def test_a_gradient_set_by_hand_steps_in_pytorch_and_is_clamped(monkeypatch):
    monkeypatch.setenv("NGTC_NATIVE", "1")
    grid = torch.nn.Parameter(torch.zeros(8, 8, 4))
    opt = GridAdam([{"params": [grid], "lr": 1.0, "bounds": BOUNDS}], fused=True)
    assert not native_grid_adam.usable(grid, opt.param_groups[0]) or grid.grad is None
    grid.grad = torch.full_like(grid, -1.0)  # not the kept buffer: PyTorch's path
    assert not native_grid_adam.usable(grid, opt.param_groups[0])
    opt.step()
    assert torch.equal(grid.detach(), torch.full_like(grid, BOUNDS[1]))  # moved by lr 1 and clamped
