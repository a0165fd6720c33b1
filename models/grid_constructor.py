"""GridConstructor: two heads that turn the bottleneck latent into the grid pair G0 (fine) and G1 (coarse)."""

from __future__ import annotations

import torch
from torch import nn

from .quantization import quantize
from .spec import QUANT_BITS


def grid_head(in_channels: int, out_channels: int, latent_stride: int, cell: int) -> nn.Module:
    """Resample the latent (one vector per latent_stride texels) to one feature per `cell` texels."""
    if cell < latent_stride:  # finer than the latent: learned upsampling by pixel shuffle
        r = latent_stride // cell
        return nn.Sequential(nn.Conv2d(in_channels, out_channels * r * r, 3, padding=1, padding_mode="circular"),
                             nn.PixelShuffle(r))
    if cell == latent_stride:
        return nn.Conv2d(in_channels, out_channels, 3, padding=1, padding_mode="circular")
    r = cell // latent_stride  # coarser: strided convolution over r x r latent vectors
    return nn.Conv2d(in_channels, out_channels, r, stride=r)


class GridConstructor(nn.Module):
    def __init__(self, in_channels: int, grid_channels: tuple[int, int], cells: tuple[int, int],
                 latent_stride: int, bits: tuple[int, int] = (QUANT_BITS, QUANT_BITS)):
        super().__init__()
        self.bits = bits
        self.heads = nn.ModuleList(
            grid_head(in_channels, c, latent_stride, s) for c, s in zip(grid_channels, cells, strict=True)
        )

    def forward(self, latent: torch.Tensor, quant_mode: str = "ste") -> tuple[torch.Tensor, torch.Tensor]:
        """latent (1, C, h, w) -> (G0, G1), each (H_g, W_g, C_g), bounded by tanh then quantized to its bits."""
        g0, g1 = (quantize(torch.tanh(head(latent))[0].permute(1, 2, 0), quant_mode, b)
                  for head, b in zip(self.heads, self.bits, strict=True))
        return g0, g1
