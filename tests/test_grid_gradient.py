"""The grids' gradient buffer (models/grid_gradient.py) gives autograd's gradient, step after step."""

from __future__ import annotations

import pytest
import torch

from models import grid_gradient
from models.grid_gradient import MAX_TOUCHED, clear_, gather


def _autograd_gradient(values: torch.Tensor, index: torch.Tensor, upstream: torch.Tensor) -> torch.Tensor:
    leaf = values.detach().clone().requires_grad_(True)
    (leaf.reshape(-1, values.shape[-1]).index_select(0, index) * upstream).sum().backward()
    return leaf.grad


# Narrow rows add value by value (an even count of channels two values at a time, as complex64), 16 float channels
# (a cache line) row by row; a step touching more than a quarter of the rows zeroes the whole buffer, fewer only its
# rows.
@pytest.mark.parametrize("channels, count", [(3, 100), (4, 100), (8, 100), (16, 100), (16, 20)])
def test_gradient_is_autograds_step_after_step_and_the_buffer_is_kept(channels: int, count: int):
    gen = torch.Generator().manual_seed(0)
    grid = torch.rand(16, 16, channels, generator=gen).requires_grad_(True)
    buffer = None
    for _ in range(4):
        index = torch.randint(0, 256, (count,), generator=gen)  # repeats included: they must add up
        upstream = torch.rand(count, channels, generator=gen)
        grid.grad = None  # as the optimizer's zero_grad(set_to_none=True)
        (gather(grid, index) * upstream).sum().backward()
        torch.testing.assert_close(grid.grad, _autograd_gradient(grid, index, upstream), rtol=0, atol=1e-6)
        assert buffer is None or grid.grad is buffer  # one buffer, not a new grid-sized tensor a step
        buffer = grid.grad
        with torch.no_grad():
            grid -= 0.01 * grid.grad
        clear_(grid)
        assert not grid.grad.any()


@pytest.mark.parametrize("channels", [2, 4, 8])
def test_values_added_in_pairs_give_the_bits_of_adding_them_one_by_one(channels: int):
    gen = torch.Generator().manual_seed(2)
    grid = torch.zeros(8, 8, channels).requires_grad_(True)
    index = torch.randint(0, 64, (500,), generator=gen)  # many repeats: the order of the adds shows in the bits
    upstream = torch.randn(500, channels, generator=gen) * 1e3
    (gather(grid, index) * upstream).sum().backward()
    one_by_one = torch.zeros(64 * channels).index_add_(
        0, (index[:, None] * channels + torch.arange(channels)).reshape(-1), upstream.reshape(-1))
    assert torch.equal(grid.grad.reshape(-1), one_by_one)


def test_without_clear_the_next_gradient_is_still_right():
    gen = torch.Generator().manual_seed(1)
    grid = torch.rand(8, 8, 2, generator=gen).requires_grad_(True)
    for _ in range(MAX_TOUCHED + 3):  # also past the touched rows it keeps
        index = torch.randint(0, 64, (10,), generator=gen)
        upstream = torch.rand(10, 2, generator=gen)
        grid.grad = None
        (gather(grid, index) * upstream).sum().backward()
        torch.testing.assert_close(grid.grad, _autograd_gradient(grid, index, upstream), rtol=0, atol=1e-6)
    clear_(grid)
    assert not grid.grad.any()


def test_gradients_accumulate_as_autograds_do():
    """Two backwards without zeroing add up; a gradient set by someone else is added to, not replaced."""
    grid = torch.rand(4, 4, 2).requires_grad_(True)
    index = torch.tensor([0, 5, 5, 15])
    (gather(grid, index).sum() * 2).backward()
    gather(grid, index).sum().backward()
    expected = _autograd_gradient(grid, index, torch.full((4, 2), 3.0))
    torch.testing.assert_close(grid.grad, expected)
    grid.grad = torch.ones_like(grid)
    gather(grid, index).sum().backward()
    torch.testing.assert_close(grid.grad, 1 + _autograd_gradient(grid, index, torch.ones(4, 2)))


def test_an_encoders_grid_takes_autograds_path():
    weight = torch.rand(4, 4, 2).requires_grad_(True)
    grid = weight * 2  # not a leaf: its gradient flows on to the encoder
    index = torch.tensor([1, 2, 2])
    gather(grid, index).sum().backward()
    torch.testing.assert_close(weight.grad, 2 * _autograd_gradient(weight, index, torch.ones(3, 2)))
    assert getattr(weight, "_gradient", None) is None and grid_gradient.gather(weight.detach(), index).shape == (3, 2)
