"""The TextureSynthesizer's training forward and backward in C: two calls a step instead of ~40 PyTorch ops.

A training step runs the synthesizer on ~13k texels. In PyTorch every layer is a matrix product over the whole
batch and then a pass per elementwise op (bias, activation, residual add, casts, and their backward), each over
a few MB that do not stay in cache: ~11-14 ms of a ~20-25-ms bpp4 step on 2 cores. models/native/synthesizer.c runs
the batch in tiles of 32 texels through every layer while they are in cache, with products on 16-float vectors; the
forward keeps each layer's pre-activations and sigmoids for the backward, which recomputes the rest from them. The
weights' gradient is summed in a fixed split of the batch, so a seed gives the same bits on any thread count.

It computes in float32, or, in a fit that trains the synthesizer in bfloat16 (`FitConfig.synthesizer_bf16`), with the
hidden layers' products in bfloat16 as PyTorch's autocast has them (AVX512-BF16's dot products; without them such a
fit runs in PyTorch). For training only: decoding is PyTorch's (and the shaders'), and the tests compare the two
(tests/test_native_synthesizer.py). Built on first use with -march=native (models/native_build.py); where no
compiler is found, or `NGTC_NATIVE=0`, training runs the synthesizer in PyTorch.
"""

from __future__ import annotations

import ctypes
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from . import native_build
from .spec import pe_dim

if TYPE_CHECKING:
    from .decoder_shape import DecoderShape

SOURCE = "synthesizer.c"
# -march=native: the products' vectors in the widest registers this CPU has (the library is keyed by the CPU).
FLAGS = (*native_build.BASE_FLAGS, "-march=native")
ACTIVATIONS = {"relu": 0, "silu": 1}  # the C side's ACT_*
VECTOR = 16  # floats a vector: the hidden width is a multiple of it
MAX_WIDTH, MAX_INPUTS, MAX_BLOCKS = 64, 160, 8  # the C side's buffers


def _declare(lib: ctypes.CDLL) -> None:
    p, i32, i64 = ctypes.c_void_p, ctypes.c_int32, ctypes.c_int64
    # n, features, rest, width, blocks, outputs, activation, bf16
    shape = [i64, p, i64, p, i64, i64, i64, i64, i32, i32]
    lib.ngtc_synthesize.restype = ctypes.c_int
    lib.ngtc_synthesize.argtypes = [*shape, *[p] * 6, p, p, i32]
    lib.ngtc_synthesize_backward.restype = ctypes.c_int
    lib.ngtc_synthesize_backward.argtypes = [*shape, *[p] * 6, p, p, p, *[p] * 6, i32]
    lib.ngtc_synthesize_bf16.restype = ctypes.c_int
    lib.ngtc_synthesize_bf16.argtypes = []


library = native_build.loader(SOURCE, FLAGS, _declare, "training runs the synthesizer in PyTorch, slower")


def build() -> Path:
    """The kernel's shared library, compiled when missing."""
    return native_build.build(SOURCE, FLAGS)


def takes(width: int, inputs: int, features: int, blocks: int, outputs: int) -> bool:
    """Whether the kernel takes a synthesizer of this shape (its buffers and vectors)."""
    return (0 < width <= MAX_WIDTH and width % VECTOR == 0 and inputs <= MAX_INPUTS and 0 <= blocks <= MAX_BLOCKS
            and -(-features // VECTOR) * VECTOR <= MAX_INPUTS and outputs <= MAX_WIDTH)


def takes_shape(shape: DecoderShape) -> bool:
    """Whether training runs this decoder shape's synthesizer through the kernel (any material's channels)."""
    features = shape.in_dim - pe_dim(shape.positional_encoding_levels) - 1
    return takes(shape.hidden_dim, shape.in_dim, features, shape.num_residual_blocks, 1) and enabled()


def enabled() -> bool:
    """Whether training may run synthesizers through the kernel: not turned off (`NGTC_NATIVE=0`) and built."""
    return native_build.enabled(SOURCE) and library() is not None


def takes_bf16() -> bool:
    """Whether the kernel runs bfloat16 products on this CPU (AVX512-BF16), as PyTorch's autocast would."""
    return enabled() and bool(library().ngtc_synthesize_bf16())


class Layers:
    """A synthesizer's parameters in the order the kernel takes them, its shape and its products' precision."""

    def __init__(self, input_layer: nn.Linear, blocks: list[nn.Linear], output: nn.Linear, activation: str,
                 bf16: bool = False):
        self.input, self.blocks, self.output = input_layer, blocks, output
        self.width, self.outputs = input_layer.out_features, output.out_features
        self.activation = ACTIVATIONS[activation]
        self.bf16 = bf16

    def params(self) -> list[nn.Parameter]:
        return [self.input.weight, self.input.bias, *(p for b in self.blocks for p in (b.weight, b.bias)),
                self.output.weight, self.output.bias]


def usable(layers: Layers, features: torch.Tensor) -> bool:
    """Whether a forward can go through the kernel: CPU float32 inputs and parameters of a shape it takes, its
    products in float32 or in bfloat16 where the CPU has them."""
    params = layers.params()
    return (features.device.type == "cpu" and features.dtype == torch.float32 and (not layers.bf16 or takes_bf16())
            and all(p.device.type == "cpu" and p.dtype == torch.float32 for p in params)
            and takes(layers.width, layers.input.in_features, features.shape[-1], len(layers.blocks), layers.outputs)
            and enabled())


def synthesize(layers: Layers, features: torch.Tensor, rest: torch.Tensor) -> torch.Tensor:
    """The synthesizer's output (N, outputs) for the input layer's inputs cat([features, rest]), through the kernel;
    differentiable in the features and every parameter."""
    return _Synthesize.apply(layers, features, rest, *layers.params())


def _stacked(layers: Layers) -> tuple[torch.Tensor, ...]:
    """The parameters as the kernel reads them: input weight and bias, blocks' weights and biases stacked, output."""
    width = layers.width
    w_blocks = (torch.stack([b.weight.detach() for b in layers.blocks]) if layers.blocks
                else torch.zeros(0, width, width))
    b_blocks = (torch.stack([b.bias.detach() for b in layers.blocks]) if layers.blocks else torch.zeros(0, width))
    return (layers.input.weight.detach().contiguous(), layers.input.bias.detach().contiguous(), w_blocks.contiguous(),
            b_blocks.contiguous(), layers.output.weight.detach().contiguous(), layers.output.bias.detach().contiguous())


def _call(name: str, *args: object) -> None:
    code = getattr(library(), name)(*args)
    if code:
        raise RuntimeError(f"synthesizer.c: {name} failed ({'out of memory' if code == -2 else 'shape not taken'})")


def _shape(layers: Layers, features: torch.Tensor, rest: torch.Tensor) -> tuple:
    return (len(features), features.data_ptr(), features.shape[-1], rest.data_ptr(), rest.shape[-1], layers.width,
            len(layers.blocks), layers.outputs, layers.activation, int(layers.bf16))


class _Synthesize(torch.autograd.Function):
    @staticmethod
    def forward(ctx, layers: Layers, features: torch.Tensor, rest: torch.Tensor,  # noqa: ANN001 - autograd's ctx
                *params: torch.Tensor) -> torch.Tensor:
        features, rest = features.detach().contiguous(), rest.detach().contiguous()
        weights = _stacked(layers)
        out = torch.empty(len(features), layers.outputs)
        saved = torch.empty(2, len(layers.blocks) + 1, len(features), layers.width)  # pre-activations, sigmoids
        _call("ngtc_synthesize", *_shape(layers, features, rest), *(w.data_ptr() for w in weights), out.data_ptr(),
              saved.data_ptr(), torch.get_num_threads())
        ctx.layers = layers
        ctx.save_for_backward(features, rest, saved, *weights)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # noqa: ANN001
        features, rest, saved, *weights = ctx.saved_tensors
        layers = ctx.layers
        grad = grad.contiguous().to(torch.float32)
        grad_features = torch.empty_like(features) if ctx.needs_input_grad[1] else None
        grads = [torch.empty_like(w) for w in weights]
        _call("ngtc_synthesize_backward", *_shape(layers, features, rest), *(w.data_ptr() for w in weights),
              saved.data_ptr(), grad.data_ptr(), grad_features.data_ptr() if grad_features is not None else None,
              *(g.data_ptr() for g in grads), torch.get_num_threads())
        w_in, b_in, w_blocks, b_blocks, w_out, b_out = grads
        per_block = [g for b in range(len(layers.blocks)) for g in (w_blocks[b], b_blocks[b])]
        return None, grad_features, None, w_in, b_in, *per_block, w_out, b_out


if __name__ == "__main__":
    native_build.main("native_synthesizer", SOURCE, FLAGS)
