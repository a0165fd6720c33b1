"""Adam over the free grids, their clamp and their gradient buffers' clearing in C: one pass over a grid a step.

Fused Adam reads and writes every value of a grid each step (value, gradient, two moments), the clamp to the
quantizer's range reads and writes the values again, and clearing the gradient rows the step touched is a third
pass over them: at 2048x2048 (bpp16's G0, 16.8 M values) 9 + 2.5 + 2.5 ms of a ~50-ms step on 2 cores, memory-bound.
models/native/grid_adam.c does the three in one pass and does not read the gradient of a row no backward touched
(models/grid_gradient.py keeps their indices): there Adam's moments decay and the value moves on them, as torch's do.

Each value's update is its own, so the result is torch.optim.Adam's (fused, float32) followed by the clamp, to its
roundings, on any thread count (tests/test_grid_optimizer.py). Built on first use (models/native_build.py); where no
compiler is found, or `NGTC_NATIVE=0`, `GridAdam` steps the grids with PyTorch's ops.
"""

from __future__ import annotations

import ctypes
import math
from pathlib import Path

import torch

from . import grid_gradient, native_build

SOURCE = "grid_adam.c"
# -march=native: the widest vectors this CPU has; -fno-math-errno: sqrtf as one vector instruction.
FLAGS = (*native_build.BASE_FLAGS, "-march=native", "-fno-math-errno")


def _declare(lib: ctypes.CDLL) -> None:
    p, i64, f32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_float
    lib.ngtc_grid_adam.restype = ctypes.c_int
    lib.ngtc_grid_adam.argtypes = [p, p, p, p, p, i64, i64, f32, f32, f32, f32, f32, f32, f32, ctypes.c_int]
    lib.ngtc_mark_rows.restype = None
    lib.ngtc_mark_rows.argtypes = [p, i64, p, i64]


library = native_build.loader(SOURCE, FLAGS, _declare, "the grids' optimizer steps in PyTorch, slower")


def build() -> Path:
    """The kernel's shared library, compiled when missing."""
    return native_build.build(SOURCE, FLAGS)


def enabled() -> bool:
    """Whether the grids' optimizer may step through the kernel: not turned off (`NGTC_NATIVE`) and built."""
    return native_build.enabled(SOURCE) and library() is not None


def usable(grid: torch.Tensor, group: dict) -> bool:
    """Whether the kernel steps this grid of an Adam parameter group: a CPU float32 grid whose gradient is its kept
    buffer (models/grid_gradient.py), plain Adam (no weight decay, amsgrad, maximize)."""
    return (grid.device.type == "cpu" and grid.dtype == torch.float32 and grid.is_contiguous() and grid.dim() >= 2
            and grid_gradient.keeps_gradient(grid)
            and not (group.get("weight_decay") or group.get("amsgrad") or group.get("maximize"))
            and enabled())


def step_(grid: torch.Tensor, state: dict, group: dict) -> None:
    """One Adam step of `grid` with the group's rate and betas, `state` as torch.optim.Adam keeps it, then the clamp
    to the group's `bounds`; the gradient buffer is left zeroed."""
    if not state:  # torch.optim.Adam's state, so that either path can take the next step
        state["step"] = torch.tensor(0.0)
        state["exp_avg"] = torch.zeros_like(grid, memory_format=torch.preserve_format)
        state["exp_avg_sq"] = torch.zeros_like(grid, memory_format=torch.preserve_format)
    state["step"] += 1
    t = float(state["step"])
    beta1, beta2 = group["betas"]
    lr = float(group["lr"])
    c = grid.shape[-1]
    rows = grid.numel() // c
    mask = _touched_mask(grid, rows)
    lo, hi = group["bounds"]
    failed = library().ngtc_grid_adam(
        grid.data_ptr(), grid.grad.data_ptr(), state["exp_avg"].data_ptr(), state["exp_avg_sq"].data_ptr(),
        mask.data_ptr() if mask is not None else None, rows, c, beta1, beta2, lr / (1 - beta1 ** t),
        math.sqrt(1 - beta2 ** t), group["eps"], lo, hi, torch.get_num_threads())
    if failed:
        raise RuntimeError(f"grid_adam.c refused a grid of {c} channels")


def _touched_mask(grid: torch.Tensor, rows: int) -> torch.Tensor | None:
    """A byte a row, set where a backward added into the grid's gradient since the last step (the kernel clears it
    again), or None where every row is to be read."""
    touched = grid_gradient.take_touched(grid)
    if touched is None:
        return None
    mask = getattr(grid, "_touched_mask", None)
    if mask is None or mask.numel() != rows:
        mask = grid._touched_mask = torch.zeros(rows, dtype=torch.uint8)
    for index in touched:
        index = index.to(torch.int64).contiguous()
        library().ngtc_mark_rows(mask.data_ptr(), rows, index.data_ptr(), len(index))
    return mask


if __name__ == "__main__":
    native_build.main("native_grid_adam", SOURCE, FLAGS)
