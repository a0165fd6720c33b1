"""Grid gathers whose gradient lands in one buffer per free grid, kept from one training step to the next.

A fine grid has millions of cells and a step reads a few percent of them. Autograd's gradient of a gather is a
new grid-sized tensor every step, zero-filled and then scattered into: at 2048x2048 (bpp16, 16.8 M grid values)
the fill alone took 4 ms a step, and up to 30 ms when the allocator handed back fresh pages. Here the gather's
backward adds into the grid's own buffer (`grid.grad` then is that buffer), and once the optimizer has used it,
`clear_` zeroes only the rows the step touched.

The result is autograd's: a grid whose gradient is None gets the buffer (zeroed whole first if a caller skipped
`clear_`), and a gradient someone else set is added to, not replaced. Grids that are not leaves (an encoder's
output) take autograd's own path.
"""

from __future__ import annotations

import torch

CACHE_LINE = 64  # bytes
MAX_TOUCHED = 64  # index tensors kept for clear_; past this many backwards it zeroes the whole buffer
ZERO_WHOLE_AT = 4  # touched indices past a quarter of the rows: zero the whole buffer


def gather(grid: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Rows `index` of grid (H, W, C) flattened to (H * W, C): `index_select`, with the gradient kept in the
    grid's buffer when the grid is a leaf that trains."""
    if grid.requires_grad and grid.is_leaf and torch.is_grad_enabled():
        return _Gather.apply(grid, index)
    return grid.reshape(-1, grid.shape[-1]).index_select(0, index)


def clear_(grid: torch.Tensor) -> None:
    """Zero the rows of the grid's gradient buffer that backward passes touched since the last clear."""
    touched = getattr(grid, "_touched", None)
    if not touched:
        return
    rows = grid._gradient.numel() // grid.shape[-1]
    if len(touched) > MAX_TOUCHED or sum(len(t) for t in touched) * ZERO_WHOLE_AT > rows:
        # many backwards without a clear, or a small grid most of whose rows a step touched: a whole zero_ is
        # cheaper (G1 at 1024x1024, 16k rows, 37k touched: 0.006 ms against index_fill_'s 0.18)
        grid._gradient.zero_()
    else:
        grid._gradient.view(-1, grid.shape[-1]).index_fill_(0, torch.cat(touched), 0.0)
    touched.clear()


class _Gather(torch.autograd.Function):
    @staticmethod
    def forward(ctx, grid: torch.Tensor, index: torch.Tensor) -> torch.Tensor:  # noqa: ANN001 - autograd's ctx
        ctx.grid = grid  # an input, not an output: no reference cycle
        ctx.save_for_backward(index)
        return grid.detach().reshape(-1, grid.shape[-1]).index_select(0, index)

    @staticmethod
    def backward(ctx, out: torch.Tensor) -> tuple[None, None]:  # noqa: ANN001
        (index,) = ctx.saved_tensors
        _accumulate(ctx.grid, index, out)
        return None, None  # the gradient is in grid.grad already


def gradient_buffer(grid: torch.Tensor) -> torch.Tensor:
    """The buffer a backward adds the grid's gradient into: `grid.grad`, which it becomes when it was None."""
    buffer = getattr(grid, "_gradient", None)
    if grid.grad is None:
        if buffer is None or buffer.shape != grid.shape:
            buffer = grid._gradient = torch.zeros_like(grid)
            grid._touched = []
        elif grid._touched:  # a caller skipped clear_: zero it whole, the slow and safe way
            buffer.zero_()
            grid._touched.clear()
        grid.grad = buffer
    return grid.grad


def keeps_gradient(grid: torch.Tensor) -> bool:
    """Whether the grid's gradient is its kept buffer (a backward of this module's gathers made it so)."""
    return grid.grad is not None and grid.grad is getattr(grid, "_gradient", None)


def take_touched(grid: torch.Tensor) -> list[torch.Tensor] | None:
    """For an optimizer that zeroes the touched rows itself (models/native_grid_adam.py): the row indices backward
    passes added into since the last clear, forgotten here, or None where it is to take every row (more passes than
    were kept, or most of the rows)."""
    touched = getattr(grid, "_touched", None)
    if touched is None:
        return None
    rows = grid._gradient.numel() // grid.shape[-1]
    taken = None if len(touched) > MAX_TOUCHED or sum(len(t) for t in touched) * ZERO_WHOLE_AT > rows else list(touched)
    touched.clear()
    return taken


def touched(grid: torch.Tensor, index: torch.Tensor) -> None:
    """Record the rows `index` a backward added into, for `clear_`, when they went into the kept buffer."""
    if grid.grad is getattr(grid, "_gradient", None) and len(grid._touched) <= MAX_TOUCHED:
        grid._touched.append(index)  # past MAX_TOUCHED, clear_ zeroes the whole buffer


def _accumulate(grid: torch.Tensor, index: torch.Tensor, rows: torch.Tensor) -> None:
    grad = gradient_buffer(grid)
    channels = grid.shape[-1]
    rows = rows.to(grad.dtype)
    if channels * rows.element_size() < CACHE_LINE:
        # Rows narrower than a cache line: threads adding into neighbouring rows share lines, and a row-wise
        # index_add_ on 2 threads took 2.2 ms where one add per value takes 0.5 (G1, 8 channels at 1024x1024).
        pairs, rows, width = _pairs(grad, rows, channels)
        flat = (index[:, None] * width + torch.arange(width, device=index.device)).reshape(-1)
        pairs.view(-1).index_add_(0, flat, rows.reshape(-1))
    else:
        grad.view(-1, channels).index_add_(0, index, rows)
    touched(grid, index)


def _pairs(grad: torch.Tensor, rows: torch.Tensor, channels: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """float32 values two at a time, as complex64 (a complex add is the two float adds, in the same order): half
    the scattered adds, the same bits. G0 of 4 channels at 1024x1024, 2 CPU threads: 0.67 -> 0.46 ms a backward.
    On the CPU only: a GPU's adds are atomic per float either way."""
    if (grad.device.type != "cpu" or grad.dtype != torch.float32 or channels % 2 or not grad.is_contiguous()
            or not rows.is_contiguous()):
        return grad, rows, channels
    return grad.view(torch.complex64), rows.view(torch.complex64), channels // 2
