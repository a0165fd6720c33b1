"""The grid pyramids as the PyTorch codec reads them: levels 1.. of a grid in one atlas tensor, so that one
gather reads every texel whatever its level (models/grid_pyramid.py defines the pyramid).

`Pyramid.from_codes` is the decoder's, built once from a file's codes with `levels_from_codes` (the floats the
GLSL decoder's upload gets too); `Pyramid.of` is training's, rebuilt from the float grids every step with a
custom backward (`_Levels`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .grid_pyramid import depth, halve, levels_from_codes
from .spec import QUANT_RANGE, QUANT_STEP


def spread(grad: torch.Tensor) -> torch.Tensor:
    """The gradient of `halve`: each coarse cell's gradient, a quarter to each of its four cells. (Two
    concatenations, ~5x faster than copying a broadcast (h, 2, w, 2, C) view on 4-channel grids.)"""
    h, w, c = grad.shape
    quarter = (grad * 0.25).reshape(h, w, 1, c)
    rows = torch.cat([quarter, quarter], 2).reshape(h, 1, 2 * w * c)
    return torch.cat([rows, rows], 1).reshape(2 * h, 2 * w, c)


@dataclass(frozen=True)
class Pyramid:
    """Levels 1.. of a grid in one (cells, C) tensor, level after level, each row-major: one gather reads every
    texel whatever its level. `shapes`: (rows, cols) of each level."""

    atlas: torch.Tensor
    shapes: tuple[tuple[int, int], ...]

    @property
    def levels(self) -> int:
        return len(self.shapes)

    def level(self, k: int) -> torch.Tensor:
        """Level k >= 1 as an (H_k, W_k, C) view."""
        h, w = self.shapes[k - 1]
        start = sum(r * c for r, c in self.shapes[:k - 1])
        return self.atlas[start:start + h * w].reshape(h, w, -1)

    def geometry(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per level 0 .. levels: (cols, rows) and the first atlas row; level 0 (the grid itself) has none."""
        sizes = [(0, 0)] + [(w, h) for h, w in self.shapes]
        offsets = np.concatenate([[0, 0], np.cumsum([h * w for h, w in self.shapes])[:-1]]) if self.shapes else [0]
        device = self.atlas.device
        return torch.tensor(sizes, device=device), torch.as_tensor(offsets, dtype=torch.long, device=device)

    @classmethod
    def from_codes(cls, codes: np.ndarray, device: torch.device | str = "cpu") -> Pyramid:
        """The decoder's pyramid: `levels_from_codes`, the floats the GLSL decoder's upload gets too."""
        levels = levels_from_codes(codes)
        atlas = np.concatenate([v.reshape(-1, codes.shape[2]) for v in levels]) if levels else \
            np.zeros((0, codes.shape[2]), np.float32)
        return cls(torch.from_numpy(atlas).to(device), tuple(v.shape[:2] for v in levels))

    @classmethod
    def of(cls, grid: torch.Tensor, quantized: bool = False) -> Pyramid:
        """Training's pyramid of a float grid (H, W, C): differentiable; `quantized`: of the grid rounded to its
        codes (the stored codes' pyramid), with a straight-through gradient."""
        levels = depth(*grid.shape[:2])
        shapes = tuple((grid.shape[0] >> k, grid.shape[1] >> k) for k in range(1, levels + 1))
        return cls(_Levels.apply(grid, shapes, quantized), shapes)


class _Levels(torch.autograd.Function):
    """`Pyramid.of`: the levels in one pass, and a backward that adds each level's gradient into the level below
    from the deepest up (autograd through the strided slices of `halve` was ~3x slower: it zero-fills a
    grid-sized tensor per slice)."""

    @staticmethod
    def forward(ctx, grid: torch.Tensor, shapes: tuple[tuple[int, int], ...], quantized: bool) -> torch.Tensor:
        ctx.shapes, channels = shapes, grid.shape[2]
        x = grid.detach()
        if quantized:  # from_codes(to_codes(x)) in three passes
            lo, hi = QUANT_RANGE
            x = torch.round(x.clamp(lo, hi).sub_(lo).div_(QUANT_STEP)).mul_(QUANT_STEP).add_(lo)
        parts = []
        for _ in shapes:
            x = halve(x)
            parts.append(x.reshape(-1, channels))
        return torch.cat(parts) if parts else grid.new_zeros(0, channels)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        channels = grad.shape[1]
        chunks = grad.split([h * w for h, w in ctx.shapes])
        acc = None
        for (h, w), chunk in reversed(list(zip(ctx.shapes, chunks, strict=True))):
            level = chunk.reshape(h, w, channels)
            acc = level if acc is None else spread(acc).add_(level)
        if acc is None:
            return None, None, None
        return spread(acc), None, None
