"""CompressionModel: the asymmetric autoencoder of Farhadzadeh et al. (ECCV 2024).

GlobalTransformer + GridConstructor (encoder side, run once per material) build the grid pair; the
GridSampler + TextureSynthesizer (decoder side, run per texel) reconstruct any texel of any mip.
`forward` is the training path; `compress` returns the quantized representation that is stored
(`CompressedTexture`), and `decompress` rebuilds a decoder from it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .global_transformer import GlobalTransformer
from .grid_constructor import GridConstructor
from .grid_sampler import FEATURES_PER_CHANNEL, GridSampler
from .quantization import from_codes, quantize, to_codes
from .spec import QUANT_BITS, QUANT_RANGE
from .texture_synthesizer import TextureSynthesizer


@dataclass
class CompressedTexture:
    """Everything the decoder needs: what a `.ngtc` file holds, in memory."""

    width: int
    height: int
    mips: int
    layout: list[dict]  # one entry per map: name, channels, offset, color space, constant, source...
    synthesizer: dict  # g0/g1 channels and cells, hidden_dim, num_residual_blocks, positional_encoding_levels
    g0: np.ndarray  # uint8 codes (H0, W0, C0), values 0..15
    g1: np.ndarray  # uint8 codes (H1, W1, C1)
    weights: dict[str, np.ndarray]  # synthesizer weights, float16
    info: dict = field(default_factory=dict)  # preset, method, steps, seed, PSNR measured on the stored file...

    @property
    def out_channels(self) -> int:
        return int(self.weights["output.bias"].shape[0])


def grid_shape(width: int, height: int, cell: int) -> tuple[int, int]:
    """Grid cells covering the texture (rows, columns); partial cells at the edge count whole."""
    return math.ceil(height / cell), math.ceil(width / cell)


class CompressionModel(nn.Module):
    def __init__(self, in_channels: int, encoder_channels: tuple[int, ...] | None = (64, 128, 256),
                 grid_channels=(16, 16),
                 grid_cells=(4, 16), quantization_bits: int = QUANT_BITS, hidden_dim: int = 32,
                 num_residual_blocks: int = 4, positional_encoding_levels: int = 10, use_attention: bool = False,
                 g0_sampling: str = "corners"):
        super().__init__()
        if quantization_bits != QUANT_BITS:
            raise ValueError(f"only {QUANT_BITS}-bit grids are supported (the file and shader assume it)")
        self.grid_channels = tuple(grid_channels)
        self.grid_cells = tuple(grid_cells)
        self.global_transformer: GlobalTransformer | None = None  # encoder side: absent in a decoder
        self.grid_constructor: GridConstructor | None = None
        if encoder_channels:
            self.global_transformer = GlobalTransformer(in_channels, encoder_channels, use_attention)
            self.grid_constructor = GridConstructor(self.global_transformer.out_channels, self.grid_channels,
                                                    self.grid_cells, self.global_transformer.stride)
        self.grid_sampler = GridSampler(g0_sampling)
        self.texture_synthesizer = TextureSynthesizer(grid_channels[0] * FEATURES_PER_CHANNEL[g0_sampling],
                                                      grid_channels[1], in_channels, hidden_dim,
                                                      num_residual_blocks, positional_encoding_levels)
        self.grids = nn.ParameterList()  # free grids: set by init_grids / set_grids

    # -- the encoder side -------------------------------------------------------------------------
    def construct_grids(self, texels: torch.Tensor, quant_mode: str = "ste") -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder path: (C, H, W) texels -> grids (H_g, W_g, C_g) covering them."""
        if self.global_transformer is None or self.grid_constructor is None:
            raise RuntimeError("this model has no encoder (it was built by decompress)")
        c, h, w = texels.shape
        mult = max(self.global_transformer.stride, *self.grid_cells)
        ph, pw = (-h) % mult, (-w) % mult  # pad to whole latent vectors and grid cells, wrapping around
        x = texels[None]
        if ph or pw:
            x = nn.functional.pad(x, (0, pw, 0, ph), mode="circular")
        g0, g1 = self.grid_constructor(self.global_transformer(x), quant_mode)
        return tuple(g[: grid_shape(w, h, s)[0], : grid_shape(w, h, s)[1]]
                     for g, s in zip((g0, g1), self.grid_cells, strict=True))

    def init_grids(self, width: int, height: int, generator: torch.Generator | None = None,
                   values: tuple[torch.Tensor, torch.Tensor] | None = None) -> None:
        """Free grids (the NTC way), random or initialised from the encoder's output (refinement)."""
        if values is None:
            values = tuple(
                (torch.rand(*grid_shape(width, height, s), c, generator=generator) * 2 - 1) * 0.1
                for c, s in zip(self.grid_channels, self.grid_cells, strict=True)
            )
        device = next(self.texture_synthesizer.parameters()).device
        # contiguous: the encoder's grids are permuted views, and a parameter keeps its source's strides
        self.grids = nn.ParameterList(nn.Parameter(v.detach().to(device).contiguous().clone()) for v in values)

    def clamp_grids_(self) -> None:
        """Keep free grids inside the quantizer's range, where their gradient lives."""
        with torch.no_grad():
            for g in self.grids:
                g.clamp_(*QUANT_RANGE)

    # -- training ---------------------------------------------------------------------------------
    def forward(self, uv: torch.Tensor, mip: torch.Tensor, texels: torch.Tensor | None = None,
                grid_uv: torch.Tensor | None = None, quant_mode: str = "ste") -> torch.Tensor:
        """Predicted channels (N, C) of texels at texture coordinates uv (N, 2) and mip levels (N,).

        With `texels` (a crop, (C, h, w)) the grids come from the encoder and are read at `grid_uv`,
        the coordinates inside the crop (clamped at its borders); otherwise the free grids are read.
        """
        if texels is not None:
            g0, g1 = self.construct_grids(texels, quant_mode)
            feats = self.grid_sampler(g0, g1, grid_uv if grid_uv is not None else uv, wrap=False)
        else:
            g0, g1 = (quantize(g, quant_mode) for g in self.grids)
            feats = self.grid_sampler(g0, g1, uv)
        return self.texture_synthesizer(feats, uv, mip)

    # -- storage ----------------------------------------------------------------------------------
    def synthesizer_config(self) -> dict:
        ts = self.texture_synthesizer
        return {
            "g0_channels": self.grid_channels[0], "g0_cell": self.grid_cells[0],
            "g1_channels": self.grid_channels[1], "g1_cell": self.grid_cells[1],
            "g0_sampling": self.grid_sampler.g0_sampling,
            "hidden_dim": ts.input.out_features, "num_residual_blocks": len(ts.blocks),
            "positional_encoding_levels": ts.encoding.levels, "activation": "relu",
        }

    @torch.no_grad()
    def compress(self, width: int, height: int, mips: int, layout: list[dict]) -> CompressedTexture:
        """The stored representation: 4-bit grid codes and fp16 synthesizer weights."""
        if len(self.grids) != 2:
            raise RuntimeError("no grids: call init_grids or construct_grids first")
        g0, g1 = (to_codes(g).cpu().numpy() for g in self.grids)
        weights = {k: v.detach().cpu().numpy().astype(np.float16)
                   for k, v in self.texture_synthesizer.state_dict().items()}
        return CompressedTexture(width, height, mips, layout, self.synthesizer_config(), g0, g1, weights)


def decompress(ct: CompressedTexture, device: torch.device | str = "cpu") -> CompressionModel:
    """A decoder-side model (free grids = dequantized codes, fp16 weights widened to fp32)."""
    s = ct.synthesizer
    model = CompressionModel(ct.out_channels, encoder_channels=None, grid_channels=(s["g0_channels"], s["g1_channels"]),
                             grid_cells=(s["g0_cell"], s["g1_cell"]), hidden_dim=s["hidden_dim"],
                             num_residual_blocks=s["num_residual_blocks"],
                             positional_encoding_levels=s["positional_encoding_levels"],
                             g0_sampling=s.get("g0_sampling", "bilinear"))
    model.texture_synthesizer.load_state_dict({k: torch.from_numpy(v.astype(np.float32))
                                               for k, v in ct.weights.items()})
    model.to(device)
    model.init_grids(ct.width, ct.height, values=tuple(from_codes(torch.from_numpy(g)) for g in (ct.g0, ct.g1)))
    return model.eval()
