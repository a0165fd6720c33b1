"""Constants shared by the PyTorch codec, the `.ngtc` file and the GLSL decoder.

Defined once here. The GLSL decoder gets them as generated `#define`s (see `glsl_defines`), so the two
sides cannot drift apart silently; tests compare both decoders texel for texel.
"""

from __future__ import annotations

import math

FORMAT_MAGIC = b"NGTC"
FORMAT_VERSION = 1

QUANT_RANGE = (-1.0, 1.0)  # features are clamped to this range, then uniformly quantized
# Bits per grid feature, per grid (DecoderShape.g0_bits, .g1_bits): codes pack little-endian into bytes, so a
# width divides 8. The paper's features are 4-bit (the default, and every file written before the choice).
GRID_BITS = (1, 2, 4, 8)
QUANT_BITS = 4
QUANT_LEVELS = 1 << QUANT_BITS  # 16 codes per 4-bit feature


def quant_levels(bits: int) -> int:
    """Codes of a `bits`-bit feature."""
    return 1 << bits


def quant_step(bits: int) -> float:
    """Distance between two neighbouring feature values of a `bits`-bit grid (the levels span QUANT_RANGE)."""
    return (QUANT_RANGE[1] - QUANT_RANGE[0]) / (quant_levels(bits) - 1)


QUANT_STEP = quant_step(QUANT_BITS)

PE_LEVELS = 10  # positional-encoding octaves: sin/cos(2*pi * 2^i * uv), i = 0 .. PE_LEVELS-1

# How G0 is read (grid_sampler.py): features per grid channel the synthesizer sees.
FEATURES_PER_CHANNEL = {"bilinear": 1, "corners": 4}

# Bounds of a `.ngtc`: what the format accepts is exactly what both decoders handle. Checked once, on load
# (models/ngtc_file.py), before any allocation or loop; the GLSL decoder sizes its arrays from them.
MAX_SIZE = 16384  # texels of mip 0 per side
MAX_CHANNELS = 32  # synthesizer outputs (decode-on-load writes one image per 4: 8 image units)
MAX_MAPS = 16  # layout entries
MAX_GRID_CHANNELS = 64  # per grid; channels x bits fill whole bytes
MAX_CELL = 64  # mip-0 texels per grid cell side; a power of two
ACTIVATIONS = ("relu", "silu")  # the synthesizer's nonlinearity; GLSL: NGTC_SILU 0 or 1
MAX_HIDDEN = 128  # synthesizer width: per-texel arrays live in GPU registers
MAX_BLOCKS = 16  # residual blocks
MAX_PE_LEVELS = 16  # uv * 2^L must keep fractional bits in float32
MAX_TEXT = 1024  # characters of a free-text field (material name, source path, device)


def pe_dim(levels: int) -> int:
    """Width of the positional encoding: sin and cos of u and v at each level."""
    return 4 * levels


def mip_count(width: int, height: int) -> int:
    """Full mip chain down to 1x1."""
    return int(math.floor(math.log2(max(width, height)))) + 1


def mip_size(width: int, height: int, mip: int) -> tuple[int, int]:
    return max(1, width >> mip), max(1, height >> mip)


def grid_stride(mip: int, cell: int) -> float:
    """Distance, in grid cells, between the samples of two neighbouring texels of `mip`.

    A grid with `cell` x `cell` texels of mip 0 per cell (cell = 2^k) is read at texel centres, so
    mip m steps 2^m / 2^k cells per texel: below mip k the sampler interpolates inside a cell, from
    mip k on it reads the same grid with the integer stride 2^(m-k) (the paper's stride sampling).
    """
    return (1 << mip) / cell


def glsl_defines() -> dict[str, str]:
    """The constants above, as the GLSL decoder's `#define`s."""
    return {
        "NGTC_QUANT_MIN": f"{QUANT_RANGE[0]:.9g}",
    }
