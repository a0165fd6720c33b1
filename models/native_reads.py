"""The GridSampler's training reads in C: one call per grid and step instead of ~400 small PyTorch ops.

A training step reads each free grid at ~13k texels of a dozen mips: level 0 and the sparse pyramid levels from
the grid's cells (4 taps, each the weighted mean of up to 16 cells), the deep levels from an atlas. In PyTorch
(`pyramid_atlas.read_pyramid`) that is a few hundred operations on small tensors a grid, and their autograd
nodes in the backward: ~10 ms of a ~35-ms bpp4 step on 2 cores. models/native/grid_reads.c does the same reads
in one pass: the forward writes each texel's features and, per gathered cell, the entry the backward needs (the
cell, its weight, the output slot it went to); the backward adds every entry's gradient into the grid's kept
gradient buffer (models/grid_gradient.py), in entry order, so a seed gives the same bits every run.

It is a training kernel only: decoding, the encoder's crops and a GPU read in PyTorch, and the tests compare the
two paths (tests/test_native_reads.py). Its noise (training's "noise" quantization) is its own stream, seeded from
PyTorch's generator: the same distribution as PyTorch's, other draws. Built with the system's C compiler on first
use (models/native_build.py; scripts/setup.sh builds it ahead); where none is found, training reads in PyTorch.
`NGTC_NATIVE=0` turns it off (to time or compare the PyTorch path).
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from . import grid_gradient, native_build
from .grid_pyramid import footprint_weights
from .quantization import Quantizer, feature_step
from .spec import QUANT_RANGE

if TYPE_CHECKING:  # pyramid_atlas calls this module
    from .pyramid_atlas import Pyramid

SOURCE = "grid_reads.c"
# -ffp-contract=off: no FMA contraction, PyTorch's roundings op by op.
FLAGS = (*native_build.BASE_FLAGS, "-ffp-contract=off")
CELL_MODES = {"none": 0, "noise": 1, "ste": 2}
MAX_CHANNELS = 64  # the C side's per-tap buffers


def _declare(lib: ctypes.CDLL) -> None:
    p = ctypes.c_void_p
    i32, i64, f32 = ctypes.c_int32, ctypes.c_int64, ctypes.c_float
    lib.ngtc_read.restype = ctypes.c_int64
    lib.ngtc_read.argtypes = [p, i64, i64, i64, p, p, i64, p, p, p, i64, p, p, i32, p, f32, f32, p, i32, i32,
                              ctypes.c_uint64, i32, p, p, p, p, i32]
    lib.ngtc_scatter.restype = None
    lib.ngtc_scatter.argtypes = [p, i64, i64, p, p, p, p, i64, i32]


library = native_build.loader(SOURCE, FLAGS, _declare, "training reads grids in PyTorch, slower")


def build() -> Path:
    """The kernel's shared library, compiled when missing."""
    return native_build.build(SOURCE, FLAGS)


def enabled() -> bool:
    """Whether training may read through the C kernel: not turned off (`NGTC_NATIVE=0`) and built."""
    return native_build.enabled(SOURCE) and library() is not None


def usable(grid: torch.Tensor, uv: torch.Tensor, transform: object, wrap: bool) -> bool:
    """Whether a read can go through the kernel: a training batch's read of a free CPU float32 grid (wrapping,
    quantized by a `Quantizer`) of at most MAX_CHANNELS channels."""
    return (isinstance(transform, Quantizer) and transform.mode in CELL_MODES and wrap
            and grid.device.type == "cpu" and grid.dtype == torch.float32 and uv.dtype == torch.float32
            and grid.shape[-1] <= MAX_CHANNELS and enabled())


Run = tuple[int, int, int, bool]  # a level, the rows [start, stop) read at it, whether they sit on its cell centres


def read_pyramid(kind: str, grid: torch.Tensor, pyramid: Pyramid, uv: torch.Tensor, quantizer: Quantizer,
                 noise: bool, runs: Sequence[Run], spread: Sequence[float]) -> torch.Tensor:
    """`pyramid_atlas.read_pyramid` of a batch sorted in `runs`, through the kernel; `spread`: the pyramid noise's
    per level (`pyramid_atlas.noise_spread`)."""
    plan = _Plan(kind, grid, pyramid, uv, quantizer, noise, runs, spread)
    if grid.requires_grad and torch.is_grad_enabled():
        return _Read.apply(grid, plan)
    return plan.forward(entries=False)[0]


class _Plan:
    """One read's arguments, laid out as the kernel takes them."""

    def __init__(self, kind: str, grid: torch.Tensor, pyramid: Pyramid, uv: torch.Tensor, quantizer: Quantizer,
                 noise: bool, runs: Sequence[Run], spread: Sequence[float]):
        self.grid, self.uv = grid.detach().contiguous(), uv.contiguous()
        h0, w0, c = grid.shape
        self.slots = 4 if kind == "corners" else 1
        self.sparse = min(pyramid.sparse_levels if pyramid.grid is not None else 0, pyramid.levels)
        sizes, offsets = pyramid.geometry()
        self.sizes = sizes.numpy().copy()
        self.sizes[0] = (w0, h0)
        self.offsets = offsets.numpy()
        weights = [[]] + [footprint_weights(lv, pyramid.prefilter) for lv in range(1, self.sparse + 1)]
        self.footprint = np.array([w for ws in weights for w in ws] or [0.0], dtype=np.float32)
        self.fp_start = np.cumsum([0] + [len(ws) for ws in weights]).astype(np.int64)
        self.prefilter = int(pyramid.prefilter)
        step = feature_step(quantizer.bits, torch.device("cpu"))
        self.steps = np.broadcast_to(np.asarray(step, dtype=np.float32), (c,)).copy()
        self.spread = np.asarray(spread, dtype=np.float32)
        self.atlas = pyramid.atlas.detach().contiguous()
        self.cell_mode, self.noise = CELL_MODES[quantizer.mode], int(noise)
        self.runs = np.array([(lv, a, b, int(centred)) for lv, a, b, centred in runs] or [(0, 0, 0, 0)], np.int32)
        self.n_runs = len(runs)
        self.entries = sum((b - a) * (1 if centred else 4) * (len(weights[lv]) ** 2 if lv else 1)
                           for lv, a, b, centred in runs if lv <= self.sparse)
        self.seed = int(torch.randint(0, 1 << 62, ())) if quantizer.mode == "noise" or noise else 0

    def forward(self, entries: bool) -> tuple[torch.Tensor, ...]:
        """The features (N, slots * C), and with `entries` the backward's (cells, weights, output slots)."""
        h0, w0, c = self.grid.shape
        out = torch.empty(len(self.uv), self.slots * c)
        cells = torch.empty(self.entries if entries else 0, dtype=torch.int64)
        weights = torch.empty(len(cells))
        outs = torch.empty(len(cells), dtype=torch.int32)
        ptr = _ptr  # an address for the kernel, of a tensor or an array
        written = library().ngtc_read(
            ptr(self.grid), h0, w0, c, ptr(self.uv), ptr(self.runs), self.n_runs, ptr(self.sizes), ptr(self.offsets),
            ptr(self.atlas), self.sparse, ptr(self.footprint), ptr(self.fp_start), self.prefilter, ptr(self.steps),
            QUANT_RANGE[0], QUANT_RANGE[1], ptr(self.spread), self.cell_mode, self.noise, self.seed, self.slots,
            ptr(out), ptr(cells) if entries else None, ptr(weights) if entries else None,
            ptr(outs) if entries else None, torch.get_num_threads())
        if written < 0 or (entries and written != self.entries):
            raise RuntimeError(f"grid_reads.c wrote {written} entries, {self.entries} expected")
        return out, cells, weights, outs


def _ptr(x: torch.Tensor | np.ndarray) -> int:
    return x.data_ptr() if isinstance(x, torch.Tensor) else x.ctypes.data


class _Read(torch.autograd.Function):
    @staticmethod
    def forward(ctx, grid: torch.Tensor, plan: _Plan) -> torch.Tensor:  # noqa: ANN001 - autograd's ctx
        out, cells, weights, outs = plan.forward(entries=True)
        ctx.grid = grid  # an input: no reference cycle
        ctx.save_for_backward(cells, weights, outs)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[None, None]:  # noqa: ANN001
        cells, weights, outs = ctx.saved_tensors
        grid = ctx.grid
        buffer = grid_gradient.gradient_buffer(grid)
        c = grid.shape[-1]
        grad = grad.contiguous().to(torch.float32)
        if buffer.is_contiguous() and buffer.dtype == torch.float32:
            library().ngtc_scatter(buffer.data_ptr(), buffer.numel() // c, c, grad.data_ptr(), cells.data_ptr(),
                                   weights.data_ptr(), outs.data_ptr(), len(cells), torch.get_num_threads())
        else:  # a gradient someone else set, laid out otherwise: the same sums in PyTorch
            rows = grad.view(-1, c).index_select(0, outs.long()) * weights[:, None]
            added = torch.zeros(buffer.numel() // c, c, dtype=buffer.dtype).index_add_(0, cells, rows.to(buffer.dtype))
            buffer.add_(added.view(buffer.shape))
        grid_gradient.touched(grid, cells)
        return None, None  # the gradient is in grid.grad already


if __name__ == "__main__":
    native_build.main("native_reads", SOURCE, FLAGS)
