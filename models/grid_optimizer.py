"""The training optimizer: Adam, with the free grids kept inside the quantizer's range after every step.

A free grid trains as values in QUANT_RANGE, where its quantizer's gradient lives: after each Adam step the grids
are clamped back into it, and their kept gradient buffers (models/grid_gradient.py) cleared for the next backward.
`GridAdam` does that for every parameter group with `bounds`; on the CPU one C pass a grid does all three
(models/native_grid_adam.py), elsewhere PyTorch's fused Adam, `clamp_` and `grid_gradient.clear_`.
"""

from __future__ import annotations

import torch

from . import grid_gradient, native_grid_adam


class GridAdam(torch.optim.Adam):
    """torch.optim.Adam whose groups with a `bounds` entry (lo, hi) are clamped into it after each step, their
    gradient buffers cleared."""

    @torch.no_grad()
    def step(self, closure: None = None) -> None:  # type: ignore[override]
        if closure is not None:
            raise ValueError("GridAdam takes no closure")
        native = [(p, group) for group in self.param_groups if group.get("bounds") is not None
                  for p in group["params"] if p.grad is not None and native_grid_adam.usable(p, group)]
        stepped = {id(p) for p, _ in native}
        grads = [p.grad for p, _ in native]
        for p, group in native:
            native_grid_adam.step_(p, self.state[p], group)
            p.grad = None  # Adam's own step skips it
        try:
            super().step()
        finally:
            for (p, _), grad in zip(native, grads, strict=True):
                p.grad = grad
        for group in self.param_groups:
            if group.get("bounds") is None:
                continue
            for p in group["params"]:
                if id(p) not in stepped:
                    p.clamp_(*group["bounds"])
                    grid_gradient.clear_(p)
