"""Why on-sample trilinear decodes texel centres (8 decodes a pixel) instead of the sample point (2).

The network was fitted at texel centres only. This decodes every point midway between four texel centres
directly and compares it with the bilinear average of those four texels' decodes (what trilinear filtering
of decoded texels gives there), per mip:  python scripts/between_texels.py assets/tiles.ngtc [more.ngtc]
"""

from __future__ import annotations

import sys

import numpy as np
import torch

from models.decoder import NeuralTexture
from models.metrics import psnr
from models.spec import mip_size


def between_texels(nt: NeuralTexture, mip: int) -> tuple[float, float]:
    """(PSNR, max abs difference) of direct decodes at texel corners against the bilinear of texel decodes."""
    w, h = mip_size(nt.width, nt.height, mip)
    texels = nt.decode_mip(mip)
    u, v = np.meshgrid(np.arange(1, w) / w, np.arange(1, h) / h)  # corners shared by four texel centres
    uv = torch.tensor(np.stack([u.ravel(), v.ravel()], 1), dtype=torch.float32)
    direct = nt.decode(uv, float(mip)).cpu().numpy().reshape(h - 1, w - 1, -1)
    bilinear = 0.25 * (texels[:-1, :-1] + texels[1:, :-1] + texels[:-1, 1:] + texels[1:, 1:])
    return psnr(direct, bilinear), float(np.abs(direct - bilinear).max())


def main(paths: list[str]) -> None:
    for path in paths:
        nt = NeuralTexture.load(path, "cpu")
        for mip in range(min(nt.mips, 5)):
            value, worst = between_texels(nt, mip)
            print(f"{path} mip {mip}: direct decode between texel centres vs bilinear of texel decodes: "
                  f"{value:.2f} dB PSNR, max |difference| {worst:.3f}")


if __name__ == "__main__":
    main(sys.argv[1:] or ["assets/tiles.ngtc"])
