"""TextureSynthesizer: positional encoding and a small residual MLP that outputs every channel of a texel."""

from __future__ import annotations

import math

import torch
from torch import nn

from . import native_synthesizer
from .spec import ACTIVATIONS, pe_dim


class PositionalEncoding(nn.Module):
    """sin/cos(2*pi * 2^i * u) and the same for v, i = 0 .. levels-1.

    Unlike NeRF's encoding, the frequencies are whole periods per texture, so the encoding tiles
    seamlessly like the material; the phase is reduced with frac() first, so float32 stays exact
    (the GLSL decoder does the same). The raw coordinates are not included: they would break tiling.
    """

    def __init__(self, levels: int):
        super().__init__()
        self.levels = levels
        self.register_buffer("freq", 2.0 ** torch.arange(levels, dtype=torch.float32), persistent=False)

    @property
    def out_dim(self) -> int:
        return pe_dim(self.levels)

    def forward(self, uv: torch.Tensor) -> torch.Tensor:
        phase = torch.frac(uv[:, :, None] * self.freq) * (2.0 * math.pi)  # (N, 2, L)
        # sin and cos of the whole contiguous phase, then interleaved as sin u, cos u, sin v, cos v: the same
        # values, 2.3x faster than on the strided u and v views (rows of L values do not vectorize; 8192 texels,
        # 10 levels, one thread: 1.88 -> 0.80 ms)
        return torch.stack([torch.sin(phase), torch.cos(phase)], dim=2).flatten(1)


def input_layer(linear: nn.Linear, features: torch.Tensor, rest: torch.Tensor) -> torch.Tensor:
    """linear(cat([features, rest])). In training only the features (the grids') get an input gradient: the
    positional encoding and the mip need none, and a gradient over all the layer's inputs cost more than the
    rest of the layer's backward (bpp2.4: 65 inputs, 24 of them features)."""
    if not (features.requires_grad and torch.is_grad_enabled()):
        return linear(torch.cat([features, rest], dim=-1))
    weight, bias = linear.weight, linear.bias
    device = features.device.type
    if torch.is_autocast_enabled(device):  # the casts autocast would make; their backward gives float32 gradients
        dtype = torch.get_autocast_dtype(device)
        features, rest, weight, bias = (t.to(dtype) for t in (features, rest, weight, bias))
    return _FeatureLinear.apply(features, rest, weight, bias)


class _FeatureLinear(torch.autograd.Function):
    """The input layer with the gradient of its first inputs only; the forward is nn.Linear's, to the bit."""

    @staticmethod
    def forward(ctx, features: torch.Tensor, rest: torch.Tensor, weight: torch.Tensor,  # noqa: ANN001 - ctx
                bias: torch.Tensor) -> torch.Tensor:
        x = torch.cat([features, rest], dim=-1)
        ctx.save_for_backward(x, weight)
        ctx.width = features.shape[-1]
        return torch.addmm(bias, x, weight.t())

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, None, torch.Tensor | None,  # noqa: ANN001
                                                   torch.Tensor | None]:
        x, weight = ctx.saved_tensors
        need_features, _, need_weight, need_bias = ctx.needs_input_grad
        return (grad @ weight[:, :ctx.width] if need_features else None, None,
                grad.t() @ x if need_weight else None, grad.sum(0) if need_bias else None)


ACTIVATION = {"relu": torch.relu, "silu": nn.functional.silu}
assert set(ACTIVATION) == set(ACTIVATIONS)


class ResidualBlock(nn.Module):
    """h + act(W h + b): one hidden-width layer with a skip connection (cheap to evaluate per texel)."""

    def __init__(self, width: int, activation: str = "relu"):
        super().__init__()
        self.linear = nn.Linear(width, width)
        self.act = ACTIVATION[activation]

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.act(self.linear(h))


class TextureSynthesizer(nn.Module):
    """MLP from [G0 features, G1 features, PE(uv), mip] to every channel of the texel.

    g0_features / g1_features are the widths the GridSampler delivers (4 per channel for G0 corners).
    The activation is ReLU (the paper's) or SiLU, which fits more detail in the same steps (docs/benchmarks.md).
    Outputs are the channels as stored (in [0, 1]); the decoder clamps them.

    `train_dtype` (bfloat16, set by the fit where such matmuls are fast) is the precision of the MLP's arithmetic
    in training only: the weights stay float32, the output float32, and decoding (eval mode) is float32 throughout.
    Training on a CPU runs through the C kernel where it is built (models/native_synthesizer.py), in float32 or with
    bfloat16 products as autocast's.
    """

    def __init__(self, g0_features: int, g1_features: int, out_channels: int, hidden_dim: int = 32,
                 num_residual_blocks: int = 4, positional_encoding_levels: int = 10, activation: str = "relu"):
        super().__init__()
        self.encoding = PositionalEncoding(positional_encoding_levels)
        in_dim = g0_features + g1_features + self.encoding.out_dim + 1
        self.input = nn.Linear(in_dim, hidden_dim)
        self.act = ACTIVATION[activation]
        self.blocks = nn.ModuleList(ResidualBlock(hidden_dim, activation) for _ in range(num_residual_blocks))
        self.output = nn.Linear(hidden_dim, out_channels)
        self.train_dtype: torch.dtype | None = None
        self.activation = activation

    @property
    def in_dim(self) -> int:
        return self.input.in_features

    def forward(self, features: torch.Tensor, uv: torch.Tensor, mip: torch.Tensor) -> torch.Tensor:
        if self.training and self.train_dtype in (None, torch.bfloat16):
            layers = native_synthesizer.Layers(self.input, [b.linear for b in self.blocks], self.output,
                                               self.activation, bf16=self.train_dtype is not None)
            if native_synthesizer.usable(layers, features):
                return native_synthesizer.synthesize(layers, features, self._rest(uv, mip, features.dtype))
        if self.training and self.train_dtype is not None:
            # the matmuls in bf16; the residual stream and the output layer in float32: a bf16 output rounds
            # texels to ~0.002, the error a fit reaches at ~55 dB
            with torch.autocast(features.device.type, dtype=self.train_dtype):
                h = self._hidden(features, uv, mip)
            return self.output(h)
        return self.output(self._hidden(features, uv, mip))

    def _rest(self, uv: torch.Tensor, mip: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """The input layer's inputs after the grids' features: PE(uv) and the mip."""
        return torch.cat([self.encoding(uv), mip.reshape(-1, 1).to(dtype)], dim=-1)

    def _hidden(self, features: torch.Tensor, uv: torch.Tensor, mip: torch.Tensor) -> torch.Tensor:
        """The last hidden layer, float32 (the residual blocks add their bf16 updates to a float32 stream)."""
        rest = self._rest(uv, mip, features.dtype)
        h = self.act(input_layer(self.input, features, rest)).float()
        for block in self.blocks:
            h = block(h)
        return h
