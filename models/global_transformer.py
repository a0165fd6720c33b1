"""GlobalTransformer: the convolutional encoder (the paper's "global transformer").

Maps the stacked channels of a material (C, H, W) to a bottleneck latent at 1/2^len(channels) of its
resolution, so that one latent vector sees every channel of a neighbourhood at once.
"""

from __future__ import annotations

import torch
from torch import nn


def conv(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    # Circular padding: materials tile, and the grids built from them must tile too.
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, padding_mode="circular")


class BottleneckAttention(nn.Module):
    """Optional self-attention over the latent tokens (quadratic in their count: small inputs only)."""

    def __init__(self, channels: int, heads: int = 4):
        super().__init__()
        self.norm = nn.LayerNorm(channels)
        self.attn = nn.MultiheadAttention(channels, heads, batch_first=True)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        n, c, h, w = z.shape
        t = self.norm(z.flatten(2).transpose(1, 2))
        out, _ = self.attn(t, t, t, need_weights=False)
        return z + out.transpose(1, 2).reshape(n, c, h, w)


class GlobalTransformer(nn.Module):
    def __init__(self, in_channels: int, channels: list[int] | tuple[int, ...] = (64, 128, 256),
                 use_attention: bool = False):
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_channels
        for cout in channels:
            layers += [conv(cin, cout, stride=2), nn.GELU()]
            cin = cout
        layers.append(conv(cin, cin))  # mixes neighbouring latent vectors once more at the bottleneck
        self.stages = nn.Sequential(*layers)
        self.attention = BottleneckAttention(cin) if use_attention else None
        self.stride = 2 ** len(channels)
        self.out_channels = cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.stages(x)
        return self.attention(z) if self.attention is not None else z
