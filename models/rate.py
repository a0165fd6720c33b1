"""Rate control: the decoder shape whose stored file has a given number of bits per texel.

The rate is what the file stores (grids, fp16 weights, metadata), so it is computed here by writing the
file itself, with zero weights and representative metadata: exact to within the few bytes of digits in
the recorded quality. The grids are a cost per texel; the weights and metadata a fixed cost, which on a
small texture can exceed the whole budget of the preset's network. `shape_for_rate` therefore keeps the
preset family nearest the target (its cell sizes and synthesizer) and fits the grid channels to the
target, shrinking the synthesizer only when its fixed cost leaves the grids too little.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import msgspec
import numpy as np

from . import ngtc_file
from .decoder_shape import DecoderShape, channel_step
from .layout import MapInfo
from .ngtc_file import CompressedTexture, Info, Quality
from .presets import PRESETS, Preset
from .spec import MAX_GRID_CHANNELS, mip_count

TOLERANCE = 0.10  # --bpp is met within this relative error
CLOSE = 0.03  # what the search aims for, leaving the rest of TOLERANCE as margin
MIN_GRID_SHARE = 0.5  # the grids get at least this share of the bits; else the synthesizer shrinks


class RateError(ValueError):
    """A rate that no decoder shape reaches at this size; the message says what is reachable."""


@dataclass(frozen=True)
class RatePlan:
    preset: Preset  # the family the shape comes from
    shape: DecoderShape
    stored_bytes: int  # of a file with this shape (exact up to the recorded quality's digits)
    width: int
    height: int

    @property
    def bits_per_texel(self) -> float:
        return self.stored_bytes * 8 / (self.width * self.height)


def stored_bytes(shape: DecoderShape, width: int, height: int, layout: Sequence[MapInfo]) -> int:
    """Size of the `.ngtc` a fit with this shape writes for this material."""
    channels = sum(m.channels for m in layout if m.constant is None)
    mips = mip_count(width, height)
    g0, g1 = shape.grid_shapes(width, height)
    weights = {k: np.zeros(s, np.float16) for k, s in shape.weight_shapes(channels).items()}
    quality = Quality([99.999] * mips, {m.name: [99.999] * mips for m in layout if m.constant is None})
    info = Info(material="m" * 16, preset="bpp00.0", method="grids", seed=0, steps=99999, seconds=999.9,
                batch=16384, device="cpu (x86_64, 2 threads)", torch="2.13.0+cpu", quality=quality)
    ct = CompressedTexture(width, height, mips, list(layout), shape, np.zeros(g0, np.uint8), np.zeros(g1, np.uint8),
                           weights, info)
    return len(ngtc_file.to_bytes(ct))


def _with(shape: DecoderShape, **changes) -> DecoderShape:
    return msgspec.structs.replace(shape, **changes)


def _variable_bytes(shape: DecoderShape, width: int, height: int, channels: int) -> int:
    """Bytes that change with the grid channels: the packed grids and the fp16 weights."""
    (r0, c0, k0), (r1, c1, k1) = shape.grid_shapes(width, height)
    return (r0 * c0 * k0 * shape.g0_bits + r1 * c1 * k1 * shape.g1_bits) // 8 + 2 * shape.weight_count(channels)


def shape_for_rate(bpp: float, width: int, height: int, layout: Sequence[MapInfo]) -> RatePlan:
    """The shape whose file comes within TOLERANCE of `bpp` bits per texel, as near the measured presets as
    can be: the family nearest `bpp` at 1024x1024 first, its synthesizer as wide as leaves the grids
    MIN_GRID_SHARE of the bits, and of the grid channel counts that hit the rate within CLOSE, those
    nearest the preset's."""
    if not bpp > 0:
        raise RateError(f"bits per texel must be positive, not {bpp}")
    channels = sum(m.channels for m in layout if m.constant is None)
    target = bpp * width * height / 8
    nearest: tuple[float, Preset, DecoderShape] | None = None
    for preset in sorted(PRESETS.values(), key=lambda p: abs(p.nominal_bpp() - bpp)):
        for hidden in sorted({h for h in (preset.shape.hidden_dim, 16, 8) if h <= preset.shape.hidden_dim},
                             reverse=True):
            base = _with(preset.shape, hidden_dim=hidden)
            fixed = stored_bytes(base, width, height, layout) - _variable_bytes(base, width, height, channels)
            found = []
            step0, step1 = channel_step(base.g0_bits), channel_step(base.g1_bits)
            for c0 in range(step0, MAX_GRID_CHANNELS + 1, step0):
                for c1 in range(step1, MAX_GRID_CHANNELS + 1, step1):
                    shape = _with(base, g0_channels=c0, g1_channels=c1)
                    size = fixed + _variable_bytes(shape, width, height, channels)
                    error = abs(size - target) / target
                    if nearest is None or error < nearest[0]:
                        nearest = (error, preset, shape)
                    if error <= CLOSE and size - fixed - 2 * shape.weight_count(channels) >= MIN_GRID_SHARE * size:
                        distance = abs(c0 - preset.shape.g0_channels) + abs(c1 - preset.shape.g1_channels)
                        found.append((distance, error, shape))
            if found:
                return _plan(preset, min(found, key=lambda f: f[:2])[2], width, height, layout)
    assert nearest is not None
    plan = _plan(nearest[1], nearest[2], width, height, layout)
    if abs(plan.stored_bytes - target) <= TOLERANCE * target:
        return plan
    raise RateError(f"{bpp} bits per texel is out of reach at {width}x{height}: the nearest file has "
                    f"{plan.bits_per_texel:.3f} (preset family {plan.preset.name})")


def _plan(preset: Preset, shape: DecoderShape, width: int, height: int, layout: Sequence[MapInfo]) -> RatePlan:
    return RatePlan(preset, shape, stored_bytes(shape, width, height, layout), width, height)
