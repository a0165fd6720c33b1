"""ASTC baseline: a material's channels packed into RGBA textures and encoded with the real encoder.

The encoder is ARM's astcenc through `astc-encoder-py` (``import astc_encoder``); decoding uses the
same library. Every texture is stored per mip level as a standard ``.astc`` file, so any ASTC decoder
(e.g. Debian's ``astcenc -dl``) reads them.

Packing (`plan_textures`, a pure function of the map layout and a packing name, shared with the viewer)
---------------------------------------------------------------------------------------------------------
Two packings (`PACKINGS`): ``compact`` (the default; what the viewer encodes on demand) and ``fewest``.
The name is recorded in the output folder's ``manifest.json`` (``"plan"``; a manifest without one is
``compact``, written before there were two), so a reader rebuilds the plan from the layout and that name
(`manifest_plan`) and checks it against the textures the manifest lists.

Only non-constant maps (``offset >= 0``) are packed; constant maps cost no bits.

``compact``: textures, in order:

``color``   basecolor R, G, B in R, G, B; opacity in A when opacity is present (swizzle ``rgba``),
            else A is the constant 1 (swizzle ``rgb1``).
``normal``  normal X, Y in astcenc's normal-map mode: input swizzle ``rrrg`` (X in R, G and B, Y in A)
            with the ``MAP_NORMAL`` flag, exactly what ``astcenc -normal`` does. Decoded back as
            X = R, Y = A.
``orm``     the scalar maps, in the order ao, roughness, metallic, height (then opacity when there is
            no basecolor to carry it, then any other one-channel map), chunked by four into ``orm``,
            ``orm2``, ... Each chunk of n scalars s0..s(n-1) is stored so that ASTC spends no endpoint
            bits on empty slots:

            - n = 1: ``rrr1``  (s0 in R, G, B, A = 1; luminance endpoints)       s0 = R
            - n = 2: ``rrrg``  (s0 in R, G, B, s1 in A; luminance+alpha endpoints) s0 = R, s1 = A
            - n = 3: ``rgb1``  (s0, s1, s2 in R, G, B, A = 1)                    read R, G, B
            - n = 4: ``rgba``  (ao, roughness, metallic, height in R, G, B, A)   read R, G, B, A

            With all four scalars present this is the usual ORM + height-in-alpha texture. The
            constants 1 are produced by the astcenc swizzle and are never read back. Luminance(+alpha)
            packing was measured against filling the absent slots of a fixed R=ao, G=roughness,
            B=metallic, A=height layout with constants: at 8x8 on a 256x256 crop, roughness + height
            came out 38.5 dB vs 37.9 dB (rocks) and 42.4 dB vs 38.9 dB (tiles), so the compact form
            is used.
``emissive``  emissive R, G, B (``rgb1``).
``specular``  one channel: ``rrr1``; three channels: ``rgb1``.
Any other one-channel map joins the scalars; any other map with 2, 3 or 4 channels gets its own
texture named after it (``rrrg``, ``rgb1``, ``rgba``).

For the rocks and tiles sets (basecolor 3, normal 2, roughness 1, height 1 = 7 channels) this is three
textures:

====== ===================================================== =========== ==================
name   stored R, G, B, A                                     swizzle     read back
====== ===================================================== =========== ==================
color  basecolor.R, basecolor.G, basecolor.B, 1             ``rgb1``    R, G, B
normal normal.X, normal.X, normal.X, normal.Y  (MAP_NORMAL)  ``rrrg``    X = R, Y = A
orm    roughness, roughness, roughness, height               ``rrrg``    rough = R, height = A
====== ===================================================== =========== ==================

``fewest``: as few RGBA textures as the maps fit in, each map kept whole in one texture. The
multi-channel maps (``color``: basecolor, with opacity in A when present; ``normal``; ``emissive``; a
3-channel ``specular``; any other map of 2-4 channels, named after it) go, largest first, each into the
first texture with room for it, else into a new one; then the scalars in the order ao, roughness,
metallic, height (then opacity when there is no basecolor, a 1-channel specular, any other 1-channel map)
each into the first texture with a free slot, else a new ``orm``, ``orm2``... Channels fill R, G, B, A in
that order; the swizzle follows the count (1 ``rrr1``, 2 ``rrrg``, 3 ``rgb1``, 4 ``rgba``, as for the
``orm`` chunks). A texture holding the normal alone keeps the compact normal mode (``rrrg``, MAP_NORMAL);
a normal sharing a texture is plain X in R, Y in G (MAP_NORMAL's angular error would misweigh the other
channels). With map sizes of 1 to 4 channels, first-fit decreasing reaches the fewest textures whole maps
allow: ceil(channels / 4) where the maps can be packed whole (basecolor + emissive + normal, 8 channels,
needs three). For the rocks and tiles sets, two textures (2/3 of compact's bits at every block size):

====== ===================================================== =========== ==================
name   stored R, G, B, A                                     swizzle     read back
====== ===================================================== =========== ==================
color  basecolor.R, basecolor.G, basecolor.B, roughness      ``rgba``    R, G, B, A
normal normal.X, normal.Y, height, 1                         ``rgb1``    X = R, Y = G, h = B
====== ===================================================== =========== ==================

That assignment was measured against the others (astcenc medium, centred 256x256 crops, PSNR over all
channels at mip 0, 6x6 / 8x8; 9.79 / 5.34 bpp for every 2-texture variant, compact 14.68 / 8.02 bpp):

============================================== ================= =================
color | second texture (R, G, B, A)             rocks             tiles
============================================== ================= =================
basecolor + roughness | nX, nY, height, 1 (*)   30.67 / 28.03     47.83 / 42.70
basecolor + height | nX, nY, roughness, 1       30.59 / 27.97     46.91 / 42.08
basecolor, 1 | nX, nY, roughness, height        30.39 / 27.90     44.89 / 41.55
basecolor + roughness | height, nX, nY, 1       30.68 / 28.04     47.72 / 42.50
basecolor + roughness | nX, height, nY, 1       30.68 / 28.04     47.73 / 42.52
basecolor + roughness | h, nX, h, nY (G, A)     30.40 / 27.84     46.92 / 41.80
compact (3 textures)                            31.70 / 28.75     49.37 / 46.32
============================================== ================= =================

(*) the plan: best on tiles by 0.1-0.2 dB, within 0.01 dB of the best on rocks. Against compact over
the whole block-size sweep (4x4 to 12x12, `python -m models.astc measure rocks tiles --crop 256 --blocks
4x4 5x5 6x6 8x8 10x10 12x12 --packing fewest`), fewest is the better rate-distortion curve at mip 0:
BD-rate -20.4% on rocks, +0.0% on tiles at medium; -19.6% and -3.1% at thorough.

Encoding choices
----------------
- Profile ``LDR`` for every texture, basecolor included: the reference compares basecolor as stored
  (sRGB-encoded values), and the sRGB profile decodes no closer in stored space (measured on 256x256
  crops at 8x8: rocks 31.19 dB LDR vs 31.19 dB LDR_SRGB, tiles 49.14 vs 49.24), while it forces the
  unorm8 decode path on RGB. A renderer that wants hardware sRGB decoding can re-encode with it.
- Inputs are unorm8, as ASTC LDR textures are authored: every mip of the reference chain is rounded to
  8 bits (16-bit height included; ASTC LDR endpoints are 8-bit anyway). PSNR is still measured against
  the reference at its own precision; the 8-bit rounding alone caps a channel at about 59 dB.
- Decoding is the default ASTC decode mode (decode_float16, what a GPU sampling an ASTC texture
  returns): `decode_blocks` returns float32 in [0, 1]. ``astcenc -dl`` writes exactly these values
  rounded to 8 bits (`to_unorm8`). The encoder is therefore run without ``USE_DECODE_UNORM8``.
- Every mip level of `Material.mip_chain()` (down to 1x1) is encoded separately: mips are not
  derived from the compressed level above.
- astcenc keeps process-wide tuning state that depends on the first block size and preset a process
  compresses (upstream issue 537): encoding 8x8 after 4x4 in one process gives different bytes than
  8x8 alone. Each (block size, preset, packing) run therefore happens in a fresh Python process
  (`encode_material` -> `run_isolated`, ``python -m models.astc _worker``), which encodes all
  textures and mips of that run. Nothing is ever encoded in the calling process.
- `ASTCSwizzle.from_str` of astc-encoder-py 0.1.12 upper-cases its argument string in place (which
  corrupts interned string constants process-wide); swizzles are built with `make_swizzle` instead.

Files (one folder per material, block size, preset and packing)
----------------------------------------------------------------
``<texture>_<block>_mip<k>.astc`` (e.g. ``color_8x8_mip0.astc``): 16-byte header (magic 0x5CA1AB13
little-endian, block x/y/z bytes, 3-byte little-endian x/y/z sizes) then the 16-byte blocks, row by
row; plus ``manifest.json`` (written last; all writes are atomic) with the material name, size, block
size, preset, packing name (``plan``), encoder and version, the channels of each texture (``packing``),
each texture's spec, the files per texture per mip and the byte counts. `encode_sweep` and ``ngtc eval``
name the folders `folder_name`: ``<block>_<preset>`` (compact), ``<block>_<preset>_fewest``. A cached
folder is reused only when all of these settings and the source fingerprint match.
Rate (`astc_bits_per_texel`): stored block bytes of all textures and all mips, times 8, over the
mip-0 texel count; headers excluded.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .atomic import write_atomic
from .metrics import psnr  # the one PSNR (models.metrics); astc.psnr stays importable

ASTC_MAGIC = 0x5CA1AB13
HEADER_BYTES = 16
BLOCK_BYTES = 16  # every ASTC block is 128 bits, whatever its footprint
BLOCK_SIZES = ("4x4", "5x5", "6x6", "8x8", "10x10", "12x12")
_LEGAL_2D = "4x4 5x4 5x5 6x5 6x6 8x5 8x6 8x8 10x5 10x6 10x8 10x10 12x10 12x12"
LEGAL_BLOCKS_2D = frozenset((int(b.split("x")[0]), int(b.split("x")[1])) for b in _LEGAL_2D.split())
PRESETS = ("fastest", "fast", "medium", "thorough", "verythorough", "exhaustive")
DEFAULT_BLOCK = "8x8"
DEFAULT_PRESET = "medium"
PROFILE = "LDR"
MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "ngtc-astc"
MANIFEST_VERSION = 1
PACKING_VERSION = 1  # bump when plan_textures changes: invalidates cached encodings
ENCODER_NAME = "astc-encoder-py"

SCALAR_ORDER = ("ao", "roughness", "metallic", "height")
_KNOWN = frozenset({"basecolor", "normal", "opacity", "emissive", "specular", *SCALAR_ORDER})
PACKINGS = ("compact", "fewest")
DEFAULT_PACKING = "compact"
LEGACY_PACKING = "compact"  # what a manifest without a "plan" (written before "fewest" existed) holds
_MANIFEST_DEFAULTS = {"plan": LEGACY_PACKING}
_SCALAR_SWIZZLES = {1: "rrr1", 2: "rrrg", 3: "rgb1", 4: "rgba"}
_SLOTS = "rgba"


class AstcError(ValueError):
    """A malformed or inconsistent `.astc` file or ASTC output folder (one-line message)."""


class MapLike(Protocol):
    """The part of `models.material.MapInfo` this module needs."""

    name: str
    channels: int
    offset: int


class MaterialLike(Protocol):
    """The part of `models.material.Material` this module needs."""

    name: str
    maps: list[Any]
    texels: np.ndarray

    def mip_chain(self) -> list[np.ndarray]: ...


# --------------------------------------------------------------------------------------------- packing


@dataclasses.dataclass(frozen=True)
class TextureSpec:
    """One RGBA texture of the plan.

    sources:    (map name, channel) feeding the input image's R, G, B, A in that order (1 to 4 of them).
    swizzle:    astcenc compression swizzle over that input image: what each stored channel holds
                (``r``/``g``/``b``/``a`` = input channel, ``0``/``1`` = constant).
    read:       for each source, the stored channel of the decoded texture it is read back from.
    normal_map: encoded with astcenc's MAP_NORMAL flag.
    """

    name: str
    sources: tuple[tuple[str, int], ...]
    swizzle: str
    read: tuple[str, ...]
    normal_map: bool = False
    profile: str = PROFILE

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "sources": [[m, c] for m, c in self.sources],
            "swizzle": self.swizzle,
            "read": list(self.read),
            "normal_map": self.normal_map,
            "profile": self.profile,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> TextureSpec:
        return cls(
            name=str(d["name"]),
            sources=tuple((str(m), int(c)) for m, c in d["sources"]),
            swizzle=str(d["swizzle"]),
            read=tuple(str(s) for s in d["read"]),
            normal_map=bool(d["normal_map"]),
            profile=str(d["profile"]),
        )


@dataclasses.dataclass
class PackedTexture:
    """A texture ready for astcenc: `pixels` is the unorm8 (H, W, 4) input image (sources in R, G, B, A
    order, unused channels 0) that astcenc reads through `spec.swizzle`."""

    spec: TextureSpec
    pixels: np.ndarray


def _read_slots(sources: int, swizzle: str) -> tuple[str, ...]:
    """Stored channel each input channel is read back from: its first occurrence in the swizzle."""
    return tuple(_SLOTS[swizzle.index(_SLOTS[i])] for i in range(sources))


def _spec(name: str, sources: list[tuple[str, int]], swizzle: str, normal_map: bool = False) -> TextureSpec:
    return TextureSpec(name, tuple(sources), swizzle, _read_slots(len(sources), swizzle), normal_map)


def _channels(m: MapLike) -> list[tuple[str, int]]:
    return [(m.name, c) for c in range(m.channels)]


def packing_name(packing: str) -> str:
    """A packing name, checked: one of `PACKINGS`."""
    name = str(packing).strip().lower()
    if name not in PACKINGS:
        raise ValueError(f"unknown ASTC packing {packing!r}, expected one of {', '.join(PACKINGS)}")
    return name


def plan_textures(maps: Sequence[MapLike], packing: str = DEFAULT_PACKING) -> list[TextureSpec]:
    """The textures a material with this map layout is packed into under `packing` (``compact`` or
    ``fewest``; see the module docstring): a pure function of the layout and the packing name."""
    packing = packing_name(packing)
    present = [m for m in maps if m.offset >= 0]
    names = [m.name for m in present]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate map names in {names}")
    by_name = {m.name: m for m in present}
    for m in present:
        if not 1 <= m.channels <= 4:
            raise ValueError(f"map {m.name!r} has {m.channels} channels; ASTC textures carry 1 to 4")

    def expect(name: str, channels: tuple[int, ...]) -> None:
        if name in by_name and by_name[name].channels not in channels:
            raise ValueError(f"map {name!r} has {by_name[name].channels} channels, expected {channels}")

    expect("basecolor", (3,))
    expect("normal", (2,))
    expect("opacity", (1,))
    expect("emissive", (3,))
    expect("specular", (1, 3))
    for n in SCALAR_ORDER:
        expect(n, (1,))
    specs = _plan_compact(present, by_name) if packing == "compact" else _plan_fewest(present, by_name)
    taken = {s.name for s in specs}
    if len(taken) != len(specs):
        raise ValueError(f"texture names collide: {[s.name for s in specs]}")
    return specs


def _plan_compact(present: list[MapLike], by_name: dict[str, MapLike]) -> list[TextureSpec]:
    specs: list[TextureSpec] = []
    scalars = [by_name[n] for n in SCALAR_ORDER if n in by_name]
    if "basecolor" in by_name:
        src = _channels(by_name["basecolor"])
        if "opacity" in by_name:
            specs.append(_spec("color", src + _channels(by_name["opacity"]), "rgba"))
        else:
            specs.append(_spec("color", src, "rgb1"))
    elif "opacity" in by_name:
        scalars.append(by_name["opacity"])
    if "normal" in by_name:
        specs.append(_spec("normal", _channels(by_name["normal"]), "rrrg", normal_map=True))
    others = [m for m in present if m.name not in _KNOWN]
    scalars += [m for m in others if m.channels == 1]
    for i in range(0, len(scalars), 4):
        chunk = scalars[i : i + 4]
        name = "orm" if i == 0 else f"orm{i // 4 + 1}"
        specs.append(_spec(name, [(m.name, 0) for m in chunk], _SCALAR_SWIZZLES[len(chunk)]))
    if "emissive" in by_name:
        specs.append(_spec("emissive", _channels(by_name["emissive"]), "rgb1"))
    if "specular" in by_name:
        sp = by_name["specular"]
        specs.append(_spec("specular", _channels(sp), "rrr1" if sp.channels == 1 else "rgb1"))
    for m in others:
        if m.channels > 1:
            specs.append(_spec(m.name, _channels(m), _SCALAR_SWIZZLES[m.channels]))
    return specs


def _plan_fewest(present: list[MapLike], by_name: dict[str, MapLike]) -> list[TextureSpec]:
    """As few textures as whole maps allow: first-fit decreasing of the maps into 4-slot textures."""
    groups: list[tuple[str, list[MapLike]]] = []  # (texture name, maps) of the multi-channel maps
    scalars = [by_name[n] for n in SCALAR_ORDER if n in by_name]
    if "basecolor" in by_name:
        groups.append(("color", [by_name["basecolor"]] + ([by_name["opacity"]] if "opacity" in by_name else [])))
    elif "opacity" in by_name:
        scalars.append(by_name["opacity"])
    for name in ("normal", "emissive"):
        if name in by_name:
            groups.append((name, [by_name[name]]))
    if "specular" in by_name:
        if by_name["specular"].channels > 1:
            groups.append(("specular", [by_name["specular"]]))
        else:
            scalars.append(by_name["specular"])
    others = [m for m in present if m.name not in _KNOWN]
    groups += [(m.name, [m]) for m in others if m.channels > 1]
    scalars += [m for m in others if m.channels == 1]
    size = lambda ms: sum(m.channels for m in ms)  # noqa: E731
    bins: list[tuple[str, list[MapLike]]] = []
    for name, ms in sorted(groups, key=lambda g: -size(g[1])):  # stable: ties keep the order above
        slot = next((b for b in bins if size(b[1]) + size(ms) <= 4), None)
        if slot is None:
            bins.append((name, list(ms)))
        else:
            slot[1].extend(ms)
    orm = 0
    for m in scalars:
        slot = next((b for b in bins if size(b[1]) < 4), None)
        if slot is None:
            orm += 1
            bins.append(("orm" if orm == 1 else f"orm{orm}", [m]))
        else:
            slot[1].append(m)
    specs = []
    for name, ms in bins:
        sources = [src for m in ms for src in _channels(m)]
        normal_alone = [m.name for m in ms] == ["normal"]
        specs.append(_spec(name, sources, _SCALAR_SWIZZLES[len(sources)], normal_map=normal_alone))
    return specs


def _offsets(maps: Sequence[MapLike]) -> dict[str, int]:
    return {m.name: m.offset for m in maps if m.offset >= 0}


def texel_channels(maps: Sequence[MapLike]) -> int:
    """Channel count of the texels array (non-constant maps)."""
    return max((m.offset + m.channels for m in maps if m.offset >= 0), default=0)


def to_unorm8(x: np.ndarray) -> np.ndarray:
    """[0, 1] floats to unorm8, round half up (how astcenc converts decoded values to 8 bits)."""
    return np.floor(np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _resolve_plan(maps: Sequence[MapLike], plan: str | Sequence[TextureSpec]) -> list[TextureSpec]:
    return plan_textures(maps, plan) if isinstance(plan, str) else list(plan)


def pack(
    material_mip: np.ndarray, maps: Sequence[MapLike], plan: str | Sequence[TextureSpec] = DEFAULT_PACKING
) -> list[PackedTexture]:
    """One mip level (H, W, C) float in [0, 1], texels order, into the unorm8 input images of `plan` (a
    packing name or the plan itself)."""
    if material_mip.ndim != 3 or material_mip.shape[2] != texel_channels(maps):
        raise ValueError(
            f"mip of shape {material_mip.shape} does not match the maps ({texel_channels(maps)} ch)"
        )
    offsets = _offsets(maps)
    h, w = material_mip.shape[:2]
    out = []
    for spec in _resolve_plan(maps, plan):
        pixels = np.zeros((h, w, 4), np.uint8)
        for i, (name, ch) in enumerate(spec.sources):
            pixels[..., i] = to_unorm8(material_mip[..., offsets[name] + ch])
        out.append(PackedTexture(spec, pixels))
    return out


def apply_swizzle(pixels: np.ndarray, swizzle: str) -> np.ndarray:
    """The (H, W, 4) image astcenc actually compresses: `pixels` through `swizzle` (unorm8 constants)."""
    chans = []
    for s in swizzle:
        if s in _SLOTS:
            chans.append(pixels[..., _SLOTS.index(s)])
        else:
            chans.append(np.full(pixels.shape[:2], 255 if s == "1" else 0, pixels.dtype))
    return np.stack(chans, axis=-1)


def unpack(
    decoded_textures: Mapping[str, np.ndarray] | Sequence[np.ndarray],
    maps: Sequence[MapLike],
    plan: str | Sequence[TextureSpec] = DEFAULT_PACKING,
) -> np.ndarray:
    """Decoded (H, W, 4) textures of `plan` (a packing name or the plan; by texture name, or a list in plan
    order) back to (H, W, C) float32 in texels order. uint8 inputs are read as unorm8; float inputs as
    values in [0, 1]."""
    specs = _resolve_plan(maps, plan)
    if not isinstance(decoded_textures, Mapping):
        decoded_textures = list(decoded_textures)
        if len(decoded_textures) != len(specs):
            raise ValueError(f"got {len(decoded_textures)} textures, the plan has {len(specs)}")
        decoded_textures = {s.name: t for s, t in zip(specs, decoded_textures, strict=True)}
    offsets = _offsets(maps)
    channels = texel_channels(maps)
    first = decoded_textures[specs[0].name] if specs else np.zeros((1, 1, 4), np.float32)
    out = np.zeros(first.shape[:2] + (channels,), np.float32)
    filled = np.zeros(channels, bool)
    for spec in specs:
        tex = np.asarray(decoded_textures[spec.name])
        if tex.shape[:2] != out.shape[:2]:
            raise ValueError(f"texture {spec.name!r} is {tex.shape[:2]}, expected {out.shape[:2]}")
        divisor = np.float32(255.0 if tex.dtype == np.uint8 else 1.0)
        for (name, ch), slot in zip(spec.sources, spec.read, strict=True):
            out[..., offsets[name] + ch] = tex[..., _SLOTS.index(slot)].astype(np.float32) / divisor
            filled[offsets[name] + ch] = True
    if not filled.all():
        raise ValueError(f"channels {np.flatnonzero(~filled).tolist()} are not in any texture")
    return out


# ------------------------------------------------------------------------------------------ .astc files


def parse_block(block: str | Sequence[int]) -> tuple[int, int]:
    """ "8x8" or (8, 8) -> (8, 8); only legal 2D ASTC footprints."""
    if isinstance(block, str):
        try:
            bx, by = (int(v) for v in block.lower().split("x"))
        except ValueError:
            raise ValueError(f"bad block size {block!r}, expected e.g. '8x8'") from None
    else:
        bx, by = (int(v) for v in block)
    if (bx, by) not in LEGAL_BLOCKS_2D:
        raise ValueError(f"{bx}x{by} is not a 2D ASTC block size")
    return bx, by


def block_name(block: str | Sequence[int]) -> str:
    bx, by = parse_block(block)
    return f"{bx}x{by}"


def block_count(width: int, height: int, block: str | Sequence[int]) -> int:
    bx, by = parse_block(block)
    return math.ceil(width / bx) * math.ceil(height / by)


def block_bytes(width: int, height: int, block: str | Sequence[int]) -> int:
    """Stored bytes of one ASTC image (header excluded)."""
    return block_count(width, height, block) * BLOCK_BYTES


def mip_sizes(width: int, height: int) -> list[tuple[int, int]]:
    """Full chain down to 1x1, each level halved and floored (at least 1)."""
    sizes = [(width, height)]
    while sizes[-1] != (1, 1):
        w, h = sizes[-1]
        sizes.append((max(1, w // 2), max(1, h // 2)))
    return sizes


def _atomic_write(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data)


def astc_header(block: Sequence[int], size: Sequence[int]) -> bytes:
    bx, by = parse_block(block)
    w, h = (int(v) for v in size)
    if not (1 <= w < 1 << 24 and 1 <= h < 1 << 24):
        raise ValueError(f"image size {w}x{h} does not fit an .astc header")
    return (
        struct.pack("<I3B", ASTC_MAGIC, bx, by, 1)
        + w.to_bytes(3, "little")
        + h.to_bytes(3, "little")
        + (1).to_bytes(3, "little")
    )


def write_astc(path: str | os.PathLike, blocks: bytes, block: Sequence[int], size: Sequence[int]) -> None:
    """Write a 2D `.astc` file atomically (temp file + os.replace)."""
    header = astc_header(block, size)
    expected = block_bytes(size[0], size[1], block)
    if len(blocks) != expected:
        raise AstcError(
            f"{path}: {len(blocks)} block bytes for {size[0]}x{size[1]} at "
            f"{block_name(block)}, expected {expected}"
        )
    _atomic_write(Path(path), header + bytes(blocks))


def _parse_header(path: str | os.PathLike, data: bytes) -> tuple[tuple[int, int], tuple[int, int]]:
    if len(data) < HEADER_BYTES:
        raise AstcError(f"{path}: truncated .astc header ({len(data)} of {HEADER_BYTES} bytes)")
    (magic,) = struct.unpack_from("<I", data, 0)
    if magic != ASTC_MAGIC:
        raise AstcError(f"{path}: bad magic 0x{magic:08X} (expected 0x{ASTC_MAGIC:08X}), not an .astc file")
    bx, by, bz = data[4], data[5], data[6]
    w, h, d = (int.from_bytes(data[7 + 3 * i : 10 + 3 * i], "little") for i in range(3))
    if bz != 1 or d != 1:
        raise AstcError(f"{path}: 3D .astc image (block z {bz}, depth {d}) is not supported")
    if (bx, by) not in LEGAL_BLOCKS_2D:
        raise AstcError(f"{path}: {bx}x{by} is not a 2D ASTC block size")
    if w < 1 or h < 1:
        raise AstcError(f"{path}: empty image {w}x{h}")
    return (bx, by), (w, h)


def read_astc_header(path: str | os.PathLike) -> tuple[tuple[int, int], tuple[int, int], int]:
    """(block, size, file bytes) of an `.astc` file, reading only its header."""
    with open(path, "rb") as f:
        head = f.read(HEADER_BYTES)
        f.seek(0, os.SEEK_END)
        total = f.tell()
    block, size = _parse_header(path, head)
    return block, size, total


def read_astc(path: str | os.PathLike) -> tuple[bytes, tuple[int, int], tuple[int, int]]:
    """(blocks, (bx, by), (w, h)) of a 2D `.astc` file; `AstcError` when it is malformed."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise AstcError(f"{path}: no such .astc file") from None
    block, size = _parse_header(path, data)
    expected = block_bytes(size[0], size[1], block)
    got = len(data) - HEADER_BYTES
    if got < expected:
        raise AstcError(
            f"{path}: truncated, {got} of {expected} block bytes for {size[0]}x{size[1]} "
            f"at {block[0]}x{block[1]}"
        )
    if got > expected:
        raise AstcError(f"{path}: {got - expected} trailing bytes after {expected} block bytes")
    return data[HEADER_BYTES:], block, size


# ---------------------------------------------------------------------------------------- codec calls


def _encoder_version() -> str:
    try:
        from importlib.metadata import version

        return version(ENCODER_NAME)
    except Exception:  # noqa: BLE001 - metadata missing: fall back on the module attribute
        import astc_encoder

        return str(getattr(astc_encoder, "__version__", "unknown"))


def _profile(name: str):
    import astc_encoder as ae

    return {"LDR": ae.ASTCProfile.LDR, "LDR_SRGB": ae.ASTCProfile.LDR_SRGB}[name]


def make_swizzle(swizzle: str):
    """An `astc_encoder.ASTCSwizzle` from e.g. "rrrg" (``r g b a 0 1 z``).

    Built from component selectors: `ASTCSwizzle.from_str` of astc-encoder-py 0.1.12 upper-cases the
    Python string it is given *in place*, corrupting that (often interned) constant for the whole
    process."""
    import astc_encoder as ae

    sel = ae.ASTCSwizzleComponentSelector
    table = {"r": sel.R, "g": sel.G, "b": sel.B, "a": sel.A, "0": sel.ZERO, "1": sel.ONE, "z": sel.Z}
    if len(swizzle) != 4 or any(c not in table for c in swizzle.lower()):
        raise ValueError(f"bad swizzle {swizzle!r}, expected 4 of r g b a 0 1 z")
    return ae.ASTCSwizzle(*(table[c] for c in swizzle.lower()))


@lru_cache(maxsize=32)
def _decoder(block: tuple[int, int], profile: str):
    import astc_encoder as ae

    cfg = ae.ASTCConfig(_profile(profile), block[0], block[1], 1, flags=ae.ASTCConfigFlags.DECOMPRESS_ONLY)
    return ae.ASTCContext(cfg)


def decode_blocks(
    blocks: bytes, block: Sequence[int], size: Sequence[int], profile: str = PROFILE
) -> np.ndarray:
    """ASTC blocks to float32 (H, W, 4) in [0, 1], default (float16) decode mode, identity swizzle.

    Decoding is spec-exact, so unlike encoding it may run in any process."""
    import astc_encoder as ae

    w, h = int(size[0]), int(size[1])
    bx, by = parse_block(block)
    if len(blocks) != block_bytes(w, h, (bx, by)):
        raise AstcError(
            f"{len(blocks)} block bytes for {w}x{h} at {bx}x{by}, expected {block_bytes(w, h, (bx, by))}"
        )
    img = ae.ASTCImage(ae.ASTCType.F32, w, h, 1)
    out = _decoder((bx, by), profile).decompress(bytes(blocks), img, make_swizzle("rgba"))
    return np.frombuffer(out.data, np.float32).reshape(h, w, 4).copy()


def read_decoded(path: str | os.PathLike, profile: str = PROFILE) -> np.ndarray:
    blocks, block, size = read_astc(path)
    return decode_blocks(blocks, block, size, profile)


def _encode_worker(job: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """Runs in a fresh process: encode every texture and mip of one (block size, preset) run."""
    import astc_encoder as ae

    bx, by = job["block"]
    quality = getattr(ae.ASTCQualityPreset, job["preset"].upper())
    threads = int(job.get("threads", 1))
    out_dir = Path(job["out_dir"])
    contexts: dict[tuple[str, bool], Any] = {}
    records: list[list[dict[str, Any]]] = []
    for tex in job["textures"]:
        spec = TextureSpec.from_json(tex["spec"])
        key = (spec.profile, spec.normal_map)
        if key not in contexts:
            flags = ae.ASTCConfigFlags.MAP_NORMAL if spec.normal_map else 0
            cfg = ae.ASTCConfig(_profile(spec.profile), bx, by, 1, quality=quality, flags=flags)
            contexts[key] = ae.ASTCContext(cfg, threads=threads)
        ctx = contexts[key]
        swizzle = make_swizzle(spec.swizzle)
        recs = []
        for k, pixels in enumerate(tex["mips"]):
            h, w = pixels.shape[:2]
            image = ae.ASTCImage(
                ae.ASTCType.U8, w, h, 1, data=np.ascontiguousarray(pixels, np.uint8).tobytes()
            )
            blocks = ctx.compress(image, swizzle)
            fname = f"{spec.name}_{bx}x{by}_mip{k}.astc"
            write_astc(out_dir / fname, blocks, (bx, by), (w, h))
            recs.append({"mip": k, "file": fname, "width": w, "height": h, "bytes": len(blocks)})
        records.append(recs)
    return records


def run_isolated(job: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """Run `_encode_worker(job)` in a fresh Python process (one per block size + preset, issue 537).

    A plain subprocess (``python -m models.astc _worker``) rather than a multiprocessing spawn: it does
    not re-import the caller's ``__main__``, so it works from any script, REPL or GUI."""
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH", "")) if p)
    module = __name__ if __name__ != "__main__" else "models.astc"
    with tempfile.TemporaryDirectory(prefix="astc-job-") as tmp:
        job_path, result_path = Path(tmp) / "job.pkl", Path(tmp) / "result.pkl"
        job_path.write_bytes(pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL))
        cmd = [sys.executable, "-m", module, "_worker", str(job_path), str(result_path)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0 or not result_path.exists():
            lines = (proc.stderr or proc.stdout).strip().splitlines() or [f"exit status {proc.returncode}"]
            raise AstcError(f"astc encoder process failed: {lines[-1]}")
        return pickle.loads(result_path.read_bytes())


# ------------------------------------------------------------------------------------- material level


@dataclasses.dataclass
class AstcResult:
    """What `encode_material` produced (or found cached) in `out_dir`."""

    out_dir: Path
    manifest_path: Path
    manifest: dict[str, Any]
    bits_per_texel: float
    reused: bool
    maps: Sequence[MapLike]
    _decoded: list[np.ndarray] | None = dataclasses.field(default=None, repr=False)

    @property
    def packing(self) -> str:
        return str(self.manifest.get("plan", LEGACY_PACKING))

    def decoded(self) -> list[np.ndarray]:
        """Decoded mip chain, (H_m, W_m, C) float32 in texels order (loaded from the files once)."""
        if self._decoded is None:
            self._decoded = decode_dir(self.out_dir, self.maps)
        return self._decoded


def material_fingerprint(material: MaterialLike) -> str:
    """sha256 of the texels and the map layout (what the encoded chain depends on)."""
    h = hashlib.sha256()
    texels = np.ascontiguousarray(material.texels)
    h.update(f"{texels.dtype.str}{texels.shape}".encode())
    h.update(json.dumps([[m.name, m.channels, m.offset] for m in material.maps]).encode())
    h.update(texels.tobytes())
    return h.hexdigest()


def _settings(material: MaterialLike, block: str, preset: str, fingerprint: str, packing: str) -> dict[str, Any]:
    h, w = material.texels.shape[:2]
    return {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "packing_version": PACKING_VERSION,
        "material": material.name,
        "width": int(w),
        "height": int(h),
        "block": block,
        "preset": preset,
        "plan": packing,
        "encoder": {
            "name": ENCODER_NAME,
            "version": _encoder_version(),
            "input": "unorm8",
            "decode": "float16",
        },
        "fingerprint": fingerprint,
    }


def load_manifest(out_dir: str | os.PathLike) -> dict[str, Any]:
    path = Path(out_dir) / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise AstcError(f"{path}: no ASTC manifest") from None
    except json.JSONDecodeError as e:
        raise AstcError(f"{path}: unreadable manifest ({e})") from None
    if manifest.get("format") != MANIFEST_FORMAT:
        raise AstcError(f"{path}: not an {MANIFEST_FORMAT} manifest")
    return manifest


def manifest_plan(
    manifest: Mapping[str, Any], maps: Sequence[MapLike], where: object = "manifest"
) -> list[TextureSpec]:
    """The plan an output folder was packed with (its manifest's ``plan``: a packing name; manifests written
    before there were two have none and are ``compact``), checked against the textures it records and
    against `maps`. `AstcError` (naming `where`) when they disagree."""
    name = manifest.get("plan", LEGACY_PACKING)
    try:
        plan = plan_textures(maps, str(name))
    except ValueError as e:
        raise AstcError(f"{where}: {e}") from None
    try:
        stored = [TextureSpec.from_json(t["spec"]) for t in manifest["textures"]]
    except (KeyError, TypeError, ValueError) as e:
        raise AstcError(f"{where}: unreadable texture list ({e!r})") from None
    if stored != plan:
        raise AstcError(
            f"{where}: packing {[s.name for s in stored]} does not match the maps "
            f"({name} plan {[s.name for s in plan]})"
        )
    return plan


def _cached(out_dir: Path, settings: dict[str, Any], plan: list[TextureSpec]) -> dict[str, Any] | None:
    try:
        manifest = load_manifest(out_dir)
    except AstcError:
        return None
    if any(manifest.get(k, _MANIFEST_DEFAULTS.get(k)) != v for k, v in settings.items()):
        return None
    if [t.get("spec") for t in manifest.get("textures", [])] != [s.to_json() for s in plan]:
        return None
    for tex in manifest["textures"]:
        for rec in tex["files"]:
            p = out_dir / rec["file"]
            if not p.is_file() or p.stat().st_size != HEADER_BYTES + rec["bytes"]:
                return None
    return manifest


def encode_material(
    material: MaterialLike,
    block: str = DEFAULT_BLOCK,
    preset: str = DEFAULT_PRESET,
    out_dir: str | os.PathLike | None = None,
    fingerprint: str | None = None,
    threads: int = 1,
    packing: str = DEFAULT_PACKING,
) -> AstcResult:
    """Encode the material's full mip chain at one block size and preset, packed by `packing`, into `out_dir`.

    The encoding runs in its own Python process (`run_isolated`). When `out_dir/manifest.json` already
    holds the same settings (block, preset, packing, encoder) and source `fingerprint` (default:
    `material_fingerprint`), it is reused."""
    if out_dir is None:
        raise ValueError("encode_material needs an out_dir")
    out_dir = Path(out_dir)
    block = block_name(block)
    preset = preset.lower()
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}, expected one of {PRESETS}")
    if fingerprint is None:
        fingerprint = material_fingerprint(material)
    packing = packing_name(packing)
    plan = plan_textures(material.maps, packing)
    settings = _settings(material, block, preset, fingerprint, packing)
    manifest = _cached(out_dir, settings, plan)
    reused = manifest is not None
    if manifest is None:
        chain = material.mip_chain()
        h, w = material.texels.shape[:2]
        if [m.shape[:2] for m in chain] != [(y, x) for x, y in mip_sizes(w, h)]:
            raise ValueError(
                f"mip chain sizes {[m.shape[:2] for m in chain]} are not the full chain of {w}x{h}"
            )
        packed = [pack(mip, material.maps, plan) for mip in chain]
        job = {
            "block": parse_block(block),
            "preset": preset,
            "threads": threads,
            "out_dir": str(out_dir),
            "textures": [
                {"spec": spec.to_json(), "mips": [level[i].pixels for level in packed]}
                for i, spec in enumerate(plan)
            ],
        }
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / MANIFEST_NAME).unlink(missing_ok=True)
        t0 = time.perf_counter()
        records = run_isolated(job) if plan else []
        seconds = time.perf_counter() - t0
        textures = [
            {"name": s.name, "spec": s.to_json(), "files": r} for s, r in zip(plan, records, strict=True)
        ]
        total = sum(rec["bytes"] for t in textures for rec in t["files"])
        manifest = {
            **settings,
            "mips": len(chain),
            "channels": texel_channels(material.maps),
            "packing": {s.name: [f"{m}.{c}" for m, c in s.sources] for s in plan},
            "textures": textures,
            "block_bytes": total,
            "file_bytes": total + HEADER_BYTES * sum(len(t["files"]) for t in textures),
            "bits_per_texel": total * 8 / (w * h),
            "encode_seconds": round(seconds, 3),
        }
        _atomic_write(out_dir / MANIFEST_NAME, (json.dumps(manifest, indent=1) + "\n").encode())
    return AstcResult(
        out_dir, out_dir / MANIFEST_NAME, manifest, astc_bits_per_texel(manifest), reused, material.maps
    )


def encode_sweep(
    material: MaterialLike,
    blocks: Sequence[str] = BLOCK_SIZES,
    preset: str = DEFAULT_PRESET,
    out_root: str | os.PathLike | None = None,
    fingerprint: str | None = None,
    threads: int = 1,
    packing: str = DEFAULT_PACKING,
) -> dict[str, AstcResult]:
    """`encode_material` at several block sizes, each in its own process, into
    ``out_root/<folder_name(block, preset, packing)>``; returns block name -> result."""
    if out_root is None:
        raise ValueError("encode_sweep needs an out_root")
    if fingerprint is None:
        fingerprint = material_fingerprint(material)
    results = {}
    for block in blocks:
        name = block_name(block)
        out = Path(out_root) / folder_name(name, preset, packing)
        results[name] = encode_material(material, name, preset, out, fingerprint, threads, packing)
    return results


def folder_name(block: str | Sequence[int], preset: str, packing: str = DEFAULT_PACKING) -> str:
    """``<block>_<preset>`` for the compact packing (the folders' names before there were two),
    ``<block>_<preset>_<packing>`` for any other."""
    packing = packing_name(packing)
    base = f"{block_name(block)}_{preset.lower()}"
    return base if packing == LEGACY_PACKING else f"{base}_{packing}"


def decode_dir(out_dir: str | os.PathLike, maps: Sequence[MapLike]) -> list[np.ndarray]:
    """Decoded mip chain of an output folder (packed by whatever plan its manifest names): (H_m, W_m, C)
    float32 in texels order per mip."""
    out_dir = Path(out_dir)
    manifest = load_manifest(out_dir)
    plan = manifest_plan(manifest, maps, out_dir / MANIFEST_NAME)
    chain = []
    for k in range(manifest["mips"]):
        decoded = {}
        for spec, tex in zip(plan, manifest["textures"], strict=True):
            rec = tex["files"][k]
            decoded[spec.name] = read_decoded(out_dir / rec["file"], spec.profile)
        chain.append(unpack(decoded, maps, plan))
    return chain


def astc_bits_per_texel(
    source: Mapping[str, Any] | str | os.PathLike | Iterable[str | os.PathLike],
    width: int | None = None,
    height: int | None = None,
) -> float:
    """Stored block bits of all textures and mips over the mip-0 texel count (headers excluded).

    `source`: a manifest (dict), a manifest path or its folder, or `.astc` files. Block bytes are
    computed from each image's size and block footprint (ceil(w/bx) * ceil(h/by) blocks of 128 bits)
    and checked against the recorded/stored sizes. `width`, `height` default to the manifest's size,
    or to the largest file's."""
    if isinstance(source, str | os.PathLike):
        p = Path(source)
        if p.is_dir() or p.suffix == ".json":
            source = load_manifest(p if p.is_dir() else p.parent)
        else:
            source = [p]
    total = 0
    if isinstance(source, Mapping):
        block = parse_block(source["block"])
        for tex in source["textures"]:
            for rec in tex["files"]:
                n = block_bytes(rec["width"], rec["height"], block)
                if n != rec["bytes"]:
                    raise AstcError(f"manifest: {rec['file']} records {rec['bytes']} bytes, expected {n}")
                total += n
        width = source["width"] if width is None else width
        height = source["height"] if height is None else height
    else:
        largest = 0
        for path in source:
            block, (w, h), size = read_astc_header(path)
            n = block_bytes(w, h, block)
            if size != HEADER_BYTES + n:
                raise AstcError(f"{path}: {size - HEADER_BYTES} block bytes, expected {n}")
            total += n
            largest = max(largest, w * h)
        if width is None or height is None:
            return total * 8 / largest if largest else 0.0
    return total * 8 / (int(width) * int(height))


def chain_bits_per_texel(width: int, height: int, block: str | Sequence[int], textures: int) -> float:
    """Rate of `textures` full-chain textures at `block`, from sizes alone."""
    total = sum(block_bytes(w, h, block) for w, h in mip_sizes(width, height))
    return textures * total * 8 / (width * height)


# ----------------------------------------------------------------------------------------- measurement


def _load_for_measure(folder: Path, crop: int | None):
    from models.material import load_material

    material = load_material(folder)
    if crop:  # centred, as `ngtc eval --crop` takes it
        cw, ch = min(crop, material.width), min(crop, material.height)
        material = material.crop((material.width - cw) // 2, (material.height - ch) // 2, cw, ch)
    return material


def _measure(args: argparse.Namespace) -> int:
    for name in args.materials:
        folder = Path(args.data) / name
        material = _load_for_measure(folder, args.crop)
        ref = material.mip_chain()
        present = ", ".join(m.name for m in material.maps if m.offset >= 0)
        channels = texel_channels(material.maps)
        print(f"{name}: {material.width}x{material.height}, {channels} channels ({present})")
        for spec in plan_textures(material.maps, args.packing):
            print(
                f"  {spec.name:8s} {spec.swizzle}  "
                + ", ".join(f"{m}.{c}->{s}" for (m, c), s in zip(spec.sources, spec.read, strict=True))
            )
        for block in args.blocks:
            out = Path(args.out) / name / folder_name(block, args.preset, args.packing)
            res = encode_material(material, block, args.preset, out, threads=args.threads, packing=args.packing)
            dec = res.decoded()
            per_mip = [psnr(dec[k], ref[k]) for k in range(min(args.mips, len(ref)))]
            print(
                f"  {block_name(block):5s} {args.preset} {args.packing}: {res.bits_per_texel:.4f} bpp full chain "
                f"({res.manifest['block_bytes']} block bytes, {len(res.manifest['textures'])} textures, "
                f"encode {res.manifest['encode_seconds']} s{', cached' if res.reused else ''}); PSNR "
                + " ".join(f"mip{k} {p:.2f}" for k, p in enumerate(per_mip))
            )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.astc", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("measure", help="encode materials and print bits per texel and PSNR per mip")
    m.add_argument("materials", nargs="+")
    m.add_argument("--data", default=".cache/data")
    m.add_argument("--blocks", nargs="+", default=["12x12", "8x8"])
    m.add_argument("--preset", default=DEFAULT_PRESET, choices=PRESETS)
    m.add_argument("--packing", default=DEFAULT_PACKING, choices=PACKINGS)
    m.add_argument("--out", default="out/astc")
    m.add_argument("--mips", type=int, default=5)
    m.add_argument("--crop", type=int, default=None, help="a centred crop of this many texels a side")
    m.add_argument("--threads", type=int, default=1)
    info = sub.add_parser("info", help="print an .astc file's header")
    info.add_argument("files", nargs="+")
    worker = sub.add_parser("_worker", help="internal: encode one pickled job (see run_isolated)")
    worker.add_argument("job")
    worker.add_argument("result")
    args = parser.parse_args(argv)
    if args.cmd == "_worker":
        result = _encode_worker(pickle.loads(Path(args.job).read_bytes()))
        _atomic_write(Path(args.result), pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
        return 0
    if args.cmd == "measure":
        return _measure(args)
    for f in args.files:
        try:
            blocks, block, size = read_astc(f)
        except AstcError as e:
            print(e, file=sys.stderr)
            return 1
        print(f"{f}: {size[0]}x{size[1]} at {block[0]}x{block[1]}, {len(blocks)} block bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
