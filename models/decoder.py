"""The decoder API: texels of any mip, or at any coordinates, from a stored `.ngtc`.

Every number the project reports (PSNR, bitrate) comes through here, from the stored bytes, never
from the float model that produced them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from . import ngtc_file
from .compression_model import decompress
from .grid_sampler import texel_uv
from .ngtc_file import CompressedTexture
from .spec import mip_size


class NeuralTexture:
    def __init__(self, ct: CompressedTexture, device: torch.device | str | None = None):
        self.compressed = ct
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = decompress(ct, self.device)

    @classmethod
    def load(cls, path: str | Path, device: torch.device | str | None = None) -> NeuralTexture:
        return cls(ngtc_file.load(path), device)

    @property
    def width(self) -> int:
        return self.compressed.width

    @property
    def height(self) -> int:
        return self.compressed.height

    @property
    def mips(self) -> int:
        return self.compressed.mips

    @property
    def channels(self) -> int:
        return self.compressed.out_channels

    @torch.no_grad()
    def decode(self, uv: torch.Tensor, mip: torch.Tensor | float, batch: int = 1 << 18) -> torch.Tensor:
        """Channels (N, C) in [0, 1] at texture coordinates uv (N, 2) and mip level(s)."""
        uv = uv.to(self.device, torch.float32)
        mip = torch.as_tensor(mip, dtype=torch.float32, device=self.device).expand(uv.shape[0])
        out = [self.model(uv[i:i + batch], mip[i:i + batch], quant_mode="none") for i in range(0, len(uv), batch)]
        # nan_to_num: a valid but extreme file (huge fp16 weights) must still decode to defined values
        return torch.nan_to_num_(torch.cat(out), nan=0.0).clamp_(0.0, 1.0)

    def decode_mip(self, mip: int) -> np.ndarray:
        """Every texel of a mip, (H_m, W_m, C) float32, in the material's channel order."""
        if not 0 <= mip < self.mips:
            raise ValueError(f"mip {mip} out of range 0..{self.mips - 1}")
        w, h = mip_size(self.width, self.height, mip)
        out = self.decode(texel_uv(self.width, self.height, mip, self.device), float(mip))
        return out.reshape(h, w, -1).cpu().numpy()
