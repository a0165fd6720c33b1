"""CompressionModel: the asymmetric autoencoder of Farhadzadeh et al. (ECCV 2024).

GlobalTransformer + GridConstructor (encoder side, run once per material) build the grid pair; the
GridSampler + TextureSynthesizer (decoder side, run per texel) reconstruct any texel of any mip.
`forward` is the training path; `compress` returns the quantized representation that is stored
(`CompressedTexture`), and `decompress` rebuilds a decoder from it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from . import digit_pairs
from .decoder_shape import DecoderShape, grid_shape
from .global_transformer import GlobalTransformer
from .grid_constructor import GridConstructor
from .grid_sampler import GridSampler, MipRun
from .layout import MapInfo
from .ngtc_file import CompressedTexture
from .pyramid_atlas import Pyramid, deep_levels
from .quantization import Quantizer, from_codes, to_codes
from .spec import FEATURES_PER_CHANNEL
from .texture_synthesizer import TextureSynthesizer

DEEP_LEVELS_EVERY = 16  # training steps between rebuilds of the pyramids' deep levels (a whole-grid pass each)


class CompressionModel(nn.Module):
    """Built from a DecoderShape; `encoder_channels` adds the encoder side (None: a decoder only). `g0_pairs`: G0
    trains that many of its stored channels' pairs as one feature of twice the bits (models/digit_pairs.py);
    `compress` stores them as the shape says."""

    def __init__(self, in_channels: int, shape: DecoderShape,
                 encoder_channels: tuple[int, ...] | None = (64, 128, 256), use_attention: bool = False,
                 g0_pairs: int = 0):
        super().__init__()
        self.shape = shape
        self.g0_pairs = g0_pairs
        # the grids as trained: G0's pairs one channel each, of per-channel bits
        self.grid_bits = (digit_pairs.trained_bits(shape.g0_bits, shape.g0_channels, g0_pairs), shape.g1_bits)
        self.grid_channels = (shape.g0_channels - g0_pairs, shape.g1_channels)
        self.grid_cells = (shape.g0_cell, shape.g1_cell)
        self.global_transformer: GlobalTransformer | None = None  # encoder side: absent in a decoder
        self.grid_constructor: GridConstructor | None = None
        if encoder_channels:
            self.global_transformer = GlobalTransformer(in_channels, encoder_channels, use_attention)
            self.grid_constructor = GridConstructor(self.global_transformer.out_channels, self.grid_channels,
                                                    self.grid_cells, self.global_transformer.stride, self.grid_bits)
        self.grid_sampler = GridSampler(shape.g0_sampling, self.grid_cells)
        g0_features = self.grid_channels[0] * FEATURES_PER_CHANNEL[shape.g0_sampling]
        self.texture_synthesizer = TextureSynthesizer(g0_features, shape.g1_channels, in_channels,
                                                      shape.hidden_dim, shape.num_residual_blocks,
                                                      shape.positional_encoding_levels, shape.activation)
        self.grids = nn.ParameterList()  # free grids: set by init_grids / set_grids
        # a decoder's grid pyramids, built once from the stored codes (decompress); training builds them per step
        self.pyramids_from_codes: tuple[Pyramid, Pyramid] | None = None
        self._deep: tuple[bool, tuple[Pyramid, ...]] | None = None  # training's deep pyramid levels, reused
        self._deep_age = 0

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

    # -- training ---------------------------------------------------------------------------------
    def forward(self, uv: torch.Tensor, mip: torch.Tensor, texels: torch.Tensor | None = None,
                grid_uv: torch.Tensor | None = None, quant_mode: str = "ste",
                mip_runs: Sequence[MipRun] | None = None) -> torch.Tensor:
        """Predicted channels (N, C) of texels at texture coordinates uv (N, 2) and mip levels (N,).

        With `texels` (a crop, (C, h, w)) the grids come from the encoder and are read at `grid_uv`,
        the coordinates inside the crop (clamped at its borders); otherwise the free grids are read.
        `mip_runs`: the free grids' texels are these runs of texel centres, sorted by mip (training's batches):
        read without a device read (`GridSampler.forward`).
        """
        if texels is not None:  # the encoder's grids are quantized whole, so their pyramids are exact
            g0, g1 = self.construct_grids(texels, quant_mode)
            feats = self.grid_sampler(g0, g1, grid_uv if grid_uv is not None else uv, wrap=False, mip=mip,
                                      pyramids=self._pyramids((g0, g1), quantized=False))
        else:
            feats = self.grid_features(uv, mip, quant_mode, mip_runs)
        return self.texture_synthesizer(feats, uv, mip)

    def grid_features(self, uv: torch.Tensor, mip: torch.Tensor, quant_mode: str = "ste",
                      mip_runs: Sequence[MipRun] | None = None) -> torch.Tensor:
        """The free grids' features at uv and mip, the synthesizer's grid input (N, g0_features + g1_channels).
        Quantized as gathered: a fine grid has many more cells than a batch reads."""
        pyramids = self.pyramids_from_codes or self._free_grid_pyramids(quant_mode)
        transforms = tuple(Quantizer(quant_mode, b) for b in self.grid_bits)
        return self.grid_sampler(*self.grids, uv, transforms=transforms, mip=mip, pyramids=pyramids,
                                 noise=quant_mode == "noise", mip_runs=mip_runs)

    def _pyramids(self, grids: tuple[torch.Tensor, ...], quantized: bool,
                  deep: tuple[Pyramid, ...] | None = None) -> tuple[Pyramid, ...] | None:
        """Each grid's training pyramid when the shape reads them, else None."""
        if not self.shape.grid_pyramid:
            return None
        prefilter = self.shape.pyramid_prefilter
        return tuple(Pyramid.of(g, quantized, d, prefilter, b)
                     for g, d, b in zip(grids, deep or (None,) * len(grids), self.grid_bits, strict=True))

    def _free_grid_pyramids(self, quant_mode: str) -> tuple[Pyramid, ...] | None:
        """The free grids' pyramids as this quantization mode sees them. Their deep levels (without gradient,
        read by few texels) are rebuilt every DEEP_LEVELS_EVERY training steps, or when the mode changes:
        "ste" pools the grids rounded to their codes, the other modes the float grids."""
        if not self.shape.grid_pyramid:
            return None
        quantized = quant_mode == "ste"
        if not self.training or self._deep is None or self._deep[0] != quantized or \
                self._deep_age >= DEEP_LEVELS_EVERY:
            self._deep = (quantized, tuple(deep_levels(g, quantized, self.shape.pyramid_prefilter, b)
                                           for g, b in zip(self.grids, self.grid_bits, strict=True)))
            self._deep_age = 0
        self._deep_age += 1
        return self._pyramids(tuple(self.grids), quantized, self._deep[1])

    # -- storage ----------------------------------------------------------------------------------
    @torch.no_grad()
    def compress(self, width: int, height: int, mips: int, layout: list[MapInfo]) -> CompressedTexture:
        """The stored representation: grid codes (`DecoderShape.grid_bits`; G0's pairs as their digits) and fp16
        synthesizer weights."""
        if len(self.grids) != 2:
            raise RuntimeError("no grids: call init_grids or construct_grids first")
        g0, g1 = (to_codes(g, b).cpu().numpy() for g, b in zip(self.grids, self.grid_bits, strict=True))
        state = dict(self.texture_synthesizer.state_dict())
        if self.g0_pairs:
            g0 = digit_pairs.split_codes(g0, self.g0_pairs, self.shape.g0_bits)
            state["input.weight"] = digit_pairs.split_input_weight(state["input.weight"], self.shape, self.g0_pairs)
        weights = {k: v.detach().cpu().numpy().astype(np.float16) for k, v in state.items()}
        return CompressedTexture(width, height, mips, list(layout), self.shape, g0, g1, weights)


def decompress(ct: CompressedTexture, device: torch.device | str = "cpu") -> CompressionModel:
    """A decoder-side model (free grids = dequantized codes, fp16 weights widened to fp32)."""
    model = CompressionModel(ct.out_channels, ct.shape, encoder_channels=None)
    model.texture_synthesizer.load_state_dict({k: torch.from_numpy(v.astype(np.float32))
                                               for k, v in ct.weights.items()})
    model.to(device)
    model.init_grids(ct.width, ct.height, values=tuple(from_codes(torch.from_numpy(g), b) for g, b in ct.coded_grids))
    if ct.shape.grid_pyramid:  # the same floats the GLSL decoder's upload makes (viewer/neural_gl.py)
        model.pyramids_from_codes = tuple(Pyramid.from_codes(g, device, ct.shape.pyramid_prefilter, b)
                                          for g, b in ct.coded_grids)
    return model.eval()
