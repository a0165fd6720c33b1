"""Bitrate presets: a name and a DecoderShape (grid channels and cell sizes, the synthesizer).

Bits per texel of the grids = 4 * (c0 / s0^2 + c1 / s1^2) (`DecoderShape.grid_bits_per_texel`); the
synthesizer's fp16 weights and the metadata come on top (`nominal_bpp`). Real rates are always measured
from the stored file.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .decoder_shape import DecoderShape, decoder_shape
from .spec import QUANT_BITS

# Bytes of a file beside grids and weights: headers, the tensor table and the metadata JSON (layout,
# sources, recorded PSNR per map and mip); the bundled tiles.ngtc has 3,984 (313,566 in all, 294,912 of
# grid codes, 14,670 of fp16 weights).
METADATA_BYTES = 4_000
TYPICAL_CHANNELS = 7  # basecolor, normal XY, roughness, height: the sets the presets were measured on
DEFAULT_MIP_FALLOFF = 0.45  # training's share of texels at mip m ~ falloff^m, unless a preset says otherwise
DEFAULT_LR_SYNTHESIZER = 0.01  # the synthesizer's learning rate with free grids, unless a preset says otherwise
# The synthesizer's width from bpp4 up (32 below, the paper's): trained in bfloat16 (`FitConfig.synthesizer_bf16`), a
# 48-wide synthesizer costs a CPU step what a float32 32-wide one did, and at 100 s of one core it gained 0.2-0.95 dB
# at mip 0 (old chest bpp16 +0.95, tiles bpp12 +0.46 at 64, bpp2.4 +0.2-0.36) and up to 1.2 dB at mips 1-4
# (docs/benchmarks.md, "A wider synthesizer in bfloat16"). At 120 s on both cores, seven sets, with the float32 stream:
# mip-0 BD-rate -52.4 -> -54.1% on the old chest, -76.9 -> -77.7% tiles, -72.0 -> -72.9% snow rock, the others within
# 0.6 points; on the 2048x2048 BoomBox the wider steps leave bpp8 under bpp4 (docs/benchmarks.md, "Seven sets at
# 120 s with the wide, float32-stream synthesizer"). Its fp16 weights add ~13 KB a file (0.1 bpp at 1024x1024,
# too much below bpp4) and every decode does twice the multiply-adds. bpp2.4 stays 32 wide: its warm start's shared
# weights are trained for that shape, and it is the viewer's default.
WIDE = 48


@dataclass(frozen=True)
class Preset:
    name: str
    shape: DecoderShape
    # How training spreads its texels over the mips (share at mip m ~ mip_falloff^m): a training setting, not
    # stored in the file, carried by the preset because the best share differs with the grids' size. Mips 3-4 weigh
    # in the loss at least as falloff 0.55 has them, whatever this draws (`FitConfig.coarse_falloff`).
    mip_falloff: float = DEFAULT_MIP_FALLOFF
    # The synthesizer's learning rate with free grids: a training setting too.
    lr_synthesizer: float = DEFAULT_LR_SYNTHESIZER
    # How the extra mip-0 texels a step grow with the material (`fit.auto_mip0_boost`): with its side or its area.
    mip0_boost_growth: str = "side"  # fit.BOOST_GROWTHS
    # The share of G0's stored channels that free grids train as digit pairs, one feature of twice the bits per pair
    # (models/digit_pairs.py): a training setting, the file stores plain channels.
    g0_paired: float = 0.0
    # Mip 1's weight in the loss, times what its texels draw (`FitConfig.mip1_weight`): a training setting too.
    mip1_weight: float = 1.0

    @property
    def g0_pairs(self) -> int:
        """G0's digit pairs in training (`g0_paired` of its stored channels, two channels a pair)."""
        return int(round(self.g0_paired * self.shape.g0_channels / 2))

    def renamed(self, name: str, shape: DecoderShape) -> Preset:
        """Another shape under another name, trained with this preset's settings."""
        return replace(self, name=name, shape=shape)

    def nominal_bpp(self, width: int = 1024, height: int = 1024, channels: int = TYPICAL_CHANNELS) -> float:
        """The rate a file of this preset has, about: grids plus the fixed cost of weights and metadata
        (`models.rate.stored_bytes` gives it exactly for a material)."""
        fixed = 2 * self.shape.weight_count(channels) + METADATA_BYTES
        return self.shape.grid_bits_per_texel + fixed * 8 / (width * height)


def preset(name: str, g0_channels: int, g0_cell: int, g1_channels: int, g1_cell: int, *, hidden_dim: int = 32,
           num_residual_blocks: int = 4, positional_encoding_levels: int = 10, g0_sampling: str = "corners",
           activation: str = "relu", mip_falloff: float = DEFAULT_MIP_FALLOFF, grid_pyramid: bool = False,
           pyramid_prefilter: bool | None = None, lr_synthesizer: float = DEFAULT_LR_SYNTHESIZER,
           g0_bits: int = QUANT_BITS, g1_bits: int = QUANT_BITS, mip0_boost_growth: str = "side",
           g0_paired: float = 0.0, mip1_weight: float = 1.0) -> Preset:
    """A preset from its grid pair; the synthesizer defaults are the paper's (hidden 32, 4 blocks, 10 levels, relu).
    Grid pyramids are prefiltered unless `pyramid_prefilter` says otherwise."""
    prefilter = grid_pyramid if pyramid_prefilter is None else pyramid_prefilter
    return Preset(name, decoder_shape(g0_channels=g0_channels, g0_cell=g0_cell, g1_channels=g1_channels,
                                      g1_cell=g1_cell, hidden_dim=hidden_dim, num_residual_blocks=num_residual_blocks,
                                      positional_encoding_levels=positional_encoding_levels, g0_sampling=g0_sampling,
                                      activation=activation, grid_pyramid=grid_pyramid,
                                      pyramid_prefilter=prefilter, g0_bits=g0_bits, g1_bits=g1_bits),
                  mip_falloff, lr_synthesizer, mip0_boost_growth, g0_paired, mip1_weight)


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        preset("bpp0.5", 4, 8, 8, 16),  # 0.375 bpp of grids
        # bpp1, bpp2.4 and bpp4 are built as the top presets are (SiLU, grid pyramids, the synthesizer at 0.02, G0
        # at a finer cell than G1) with G1 at 8 channels of cell 8; G0 has 2 channels at cell 4 (bpp1) or 2 and 4
        # channels at cell 2. At 3800-4500 steps against their earlier shapes (bpp1 12 x 8 + 16 x 16 and bpp2.4
        # 8 x 4 + 16 x 16, ReLU, strided; bpp4 4 x 2 + 2 x 4): mip 0 +0.3 to +2.4 dB on rocks, tiles, the old
        # chest and aluminium, mips 1-2 -0.4 to +3.2 dB, mip 3 -2.1 to +1.7 dB, mip 4 +0.5 to +5.3 dB
        # (docs/benchmarks.md, "Fine cells from 1 to 4 bpp"). bpp2.4 now stores 2.5 bpp of grids (was 2.25):
        # 4 channels at cell 8 for G1 (2.25) lost up to 3 dB at mips 1-3 on rocks. They train with more of their
        # texels at the coarse mips (falloff 0.55), as the earlier shapes did; bpp4 since at the default 0.45: at 120 s
        # on seven sets mip 0 +0.1 to +1.2 dB and its BD-rate 0.1-1.6 points better, its mips 3-4 under bpp8 as the
        # curve needs but mip 4 now under bpp2.4 on four sets (docs/benchmarks.md, "bpp4 at the default mip falloff").
        # Every pyramid preset reads prefiltered pyramids (models/grid_pyramid.py): the mip where a cell is one texel
        # was 1.5-4 dB under its neighbours; at equal steps bpp2.4 mip 3 +2.4 / +4.1 dB (old chest / rocks), bpp16
        # mip 2 +5.3 dB, mip 0 +0.1-0.6 dB (docs/benchmarks.md, "Prefiltered grid pyramids").
        # bpp2.4 stores G0 as 2-bit features, twice the channels of 4 bits in the same bits (NTC's fine grids are
        # 2-bit too): the synthesizer reads more, coarser values per texel. At 3000 steps mip 0 +1.0 dB on rocks; at
        # 120 s, with 0.75-0.95x the steps, +0.6 to +1.3 dB on rocks, walnut, aluminium and the old chest, even on
        # tiles, -0.25 on snow rock, -1.96 on the 2048x2048 BoomBox (short of steps). bpp4 and bpp8 stay 4-bit: at
        # 120 s their 2-bit shapes gain on rocks (+1.3 / +0.5 dB) but lose up to 2.2 dB where the fit reaches
        # 40-53 dB (aluminium, snow rock, tiles); bpp1 gained only 0.1-0.3 dB at equal steps (docs/benchmarks.md,
        # "2-bit G0").
        # bpp4 stores 2-bit G0 too (8 channels) but trains half of them as 4-bit digit pairs (models/digit_pairs.py):
        # 2 fine and 4 coarse features a cell. At 3000 steps against 4 channels of 4 bits, mip 0 +1.2 dB (rocks,
        # walnut), +0.8 (old chest), +0.55 (snow rock), +0.3 (tiles), -0.7 (aluminium, whose mips 1-2 gain 1-1.9 dB),
        # for ~7% more CPU a step; at 120 s with bpp8's pairs, mip-0 BD-rate rocks -58.5 -> -61.7%, the old chest
        # +2.8 points, aluminium -1.2 (docs/benchmarks.md, "G0's digit pairs"). bpp2.4 keeps 4 plain channels (one
        # pair: aluminium -1.5 dB), bpp1 its 2 of 4 bits (a pair gained 0-0.3 dB, cost aluminium's mip 2 1.2).
        # bpp2.4 and bpp4 weigh mip 1 twice in the loss: where the curve meets ASTC's at mip 1 (2-5 bpp, 45-55 dB on
        # brushed aluminium) it decides the BD-rate. At 120 s mip 1 +0.4 to +1.4 dB on seven sets, mip 0 -0.3 to +0.2,
        # aluminium's mip-1 BD-rate -79.0 -> -80.2%; bpp1 too put snow rock's mip 2 under bpp0.5's (docs/benchmarks.md,
        # "Mip 1's weight").
        preset("bpp1", 2, 4, 8, 8, activation="silu", mip_falloff=0.55, grid_pyramid=True, lr_synthesizer=0.02),
        preset("bpp2.4", 4, 2, 8, 8, activation="silu", mip_falloff=0.55, grid_pyramid=True, lr_synthesizer=0.02,
               g0_bits=2, mip1_weight=2.0),
        preset("bpp4", 8, 2, 8, 8, hidden_dim=WIDE, activation="silu", grid_pyramid=True, lr_synthesizer=0.02,
               g0_bits=2, g0_paired=0.5, mip1_weight=2.0),
        # From 8 bpp on, finer cells (G0 2, G1 4) rather than more channels: at 120 s, 4 x 2 + 16 x 4 beat
        # 28 x 4 + 16 x 8 by 1.3 dB (rocks) and 1.4 dB (tiles) at mip 0 (docs/benchmarks.md, "Presets"). SiLU
        # rather than ReLU: +1.6 dB (rocks, bpp16) and +0.45 dB (tiles, bpp12) at mip 0 at equal steps and time.
        # The fine-cell presets read their grids' pyramids at coarse mips (models/grid_pyramid.py): at equal steps
        # (bpp8, 3000) mip 0 +0.2-0.3 dB, mips 1-4 +0.4 to +4.7 dB on rocks and the old chest, for 1.37x the step
        # at 1024x1024 (1.17x at 2048x2048) (docs/benchmarks.md, "Grid pyramid"; at 120 s, the section after it).
        # bpp8 puts 6 of its 8 bpp in G0 (6 channels at cell 2 + 8 at cell 4, was 4 + 16) as bpp12 and bpp16 do:
        # at 3000 steps mip 0 +1.0 to +2.6 dB on four sets, mips 1-4 within -0.7 / +2.2 dB, ~10% cheaper steps
        # (docs/benchmarks.md, "G0-heavy bpp8 and bpp4").
        # With prefiltered pyramids bpp8 takes bpp4's G1 (8 channels at cell 8) and 8 G0 channels (8.5 bpp): at 3000
        # steps mip 0 +0.72 / +0.58 dB (old chest / tiles), mips 1-4 -0.8 to +0.7 (its G1 cost mip 3 2-3 dB with the
        # codes' pyramid) (docs/benchmarks.md, "bpp8 with G1 at cell 8, prefiltered").
        # bpp8 stores 16 2-bit G0 channels, three quarters of them trained as digit pairs (6 fine + 4 coarse features
        # a cell, against 8 of 4 bits): at 3000 steps mip 0 +1.1 dB (old chest), +0.75 (rocks), -0.14 (aluminium),
        # mips 1-4 up on all three (docs/benchmarks.md, "G0's digit pairs"); half of them paired gained as much on
        # the old chest and rocks but cost aluminium 0.3 dB and 14% more CPU.
        preset("bpp8", 16, 2, 8, 8, hidden_dim=WIDE, activation="silu", grid_pyramid=True, lr_synthesizer=0.02,
               g0_bits=2, g0_paired=0.75),  # 8.5
        # The top presets the other way (0.4): their coarse mips are far above ASTC's (outside the PSNR range the
        # BD-rate is measured on), mip 0 is not; at equal steps mip 0 +0.33-0.35 dB, mips 3 / 4 -1.4 / -1.2-1.7.
        # 0.45 again with the synthesizer at 0.02 lifted bpp12's coarse mips at equal steps, but at 120 s it left 23
        # non-rising points against 20 (docs/benchmarks.md, "The synthesizer's learning rate").
        # For the same reason bpp12 and bpp16 put 2 more bpp into G0 and halve G1 (16 -> 8 channels at cell 4): at
        # equal steps mip 0 +1.07 dB (rocks bpp12), +1.1 (walnut bpp16), mips 2-4 -0.2 to -1.1 (docs/benchmarks.md,
        # "bpp4 with fine cells"). Since then they take bpp8's G1 (8 channels at cell 8) and 2 more G0 channels (12.5
        # and 16.5 bpp of grids): cheaper steps (20-40% more in 120 s) and at 120 s mip 0 +0.1 to +1.4 dB on all
        # seven eval sets, mips 1-4 mostly within 1 dB (docs/benchmarks.md, "bpp12 and bpp16 with G1 at cell 8").
        # Their falloff already draws more of mip 0, and twice or three times its texels a step lost at 1024x1024
        # (the old chest's bpp16, 100 s: mip 0 -0.11 / -0.22 dB, mips 1-4 -0.4 to -0.6), while at 2048x2048 four times
        # them beat twice by 1.2-1.4 dB: their boost grows with the area, 1 at 1024x1024 and 4 at 2048x2048
        # (`fit.auto_mip0_boost`; docs/benchmarks.md, "Mip 0's texels a step").
        # Their G1 has 12 channels (8 before, +0.25 bpp): where bpp8, bpp12 and bpp16 read the same G1 their coarse mips
        # parted by a few tenths of a dB, which a run's speed undid (seven non-rising points on the 2048x2048 BoomBox).
        # At 120 s on seven sets bpp12 and bpp16 gained at nearly every mip (up to 1.4 dB, most at mips 3-4); four
        # non-rising points against seven; the old chest's mip-0 BD-rate -60.7 -> -60.1%, more the BD interval's
        # widening than the rate (docs/benchmarks.md, "bpp12 and bpp16 with 12 G1 channels").
        preset("bpp12", 12, 2, 12, 8, hidden_dim=WIDE, activation="silu", mip_falloff=0.4, grid_pyramid=True,
               lr_synthesizer=0.02, mip0_boost_growth="area"),
        preset("bpp16", 16, 2, 12, 8, hidden_dim=WIDE, activation="silu", mip_falloff=0.4, grid_pyramid=True,
               lr_synthesizer=0.02, mip0_boost_growth="area"),
    )
}
DEFAULT_PRESET = "bpp2.4"


def nearest_preset(bpp: float) -> Preset:
    """The preset whose nominal rate at 1024x1024 is nearest to `bpp`."""
    return min(PRESETS.values(), key=lambda p: abs(p.nominal_bpp() - bpp))


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None
