"""G0's digit pairs: channels that train as one feature of twice the bits and are stored as two, its high and low digit.

A 2b-bit code c = hi * 2^b + lo is two b-bit codes, and as feature values (`quantization.from_codes`, QUANT_RANGE)

    value(c, 2b) = value(hi, b) * 2^b / (2^b + 1) + value(lo, b) / (2^b + 1)

exactly, with no constant term. Every read of G0 is linear in its features (bilinear and corner weights, the pyramids'
box filters) and so is the synthesizer's first layer: a decoder that reads the 2b-bit feature decodes what one reads
from its two digits when that feature's first-layer column is split in these two parts. So a preset stores G0 as
plain b-bit channels (the file format and the GLSL decoder do not know about pairs) and trains some of them as pairs:
fine values where a material is smooth, more (coarse) channels where it is noisy. Free b-bit channels can represent
the same decoders but do not find them: their training cannot carry from one digit to the other.
"""

from __future__ import annotations

import numpy as np
import torch

from .decoder_shape import DecoderShape
from .quantization import GridBits
from .spec import FEATURES_PER_CHANNEL, GRID_BITS


def trained_bits(bits: int, channels: int, pairs: int) -> GridBits:
    """G0's bits as training sees them: `bits`, or per channel with the pairs first (twice the bits each)."""
    if not pairs:
        return bits
    if 2 * bits not in GRID_BITS or not 0 < 2 * pairs <= channels:
        raise ValueError(f"{pairs} digit pairs do not fit G0 of {channels} channels at {bits} bits")
    return (2 * bits,) * pairs + (bits,) * (channels - 2 * pairs)


def digit_weights(bits: int) -> tuple[float, float]:
    """What the high and the low `bits`-bit digit's values weigh in their pair's value."""
    base = 1 << bits
    return base / (base + 1), 1 / (base + 1)


def split_codes(codes: np.ndarray, pairs: int, bits: int) -> np.ndarray:
    """Trained G0 codes (H, W, C - pairs), the pairs' first, -> the stored b-bit codes (H, W, C): each pair's high
    digit, then its low one, then the other channels."""
    paired = codes[..., :pairs]
    digits = np.stack([paired >> bits, paired & ((1 << bits) - 1)], axis=-1).reshape(*codes.shape[:-1], 2 * pairs)
    return np.concatenate([digits, codes[..., pairs:]], axis=-1).astype(np.uint8)


def split_input_weight(weight: torch.Tensor, shape: DecoderShape, pairs: int) -> torch.Tensor:
    """The trained synthesizer's first layer (hidden, in) -> the stored one's: every G0 feature of a pair (one per
    corner when G0 is read as corners) becomes its two digits' columns, weighted by `digit_weights`."""
    hi, lo = digit_weights(shape.g0_bits)
    trained = shape.g0_channels - pairs
    groups = FEATURES_PER_CHANNEL[shape.g0_sampling]
    columns = []
    for q in range(groups):
        block = weight[:, q * trained:(q + 1) * trained]
        paired = block[:, :pairs]
        columns += [torch.stack([paired * hi, paired * lo], dim=-1).reshape(len(weight), 2 * pairs), block[:, pairs:]]
    columns.append(weight[:, groups * trained:])
    return torch.cat(columns, dim=1)
