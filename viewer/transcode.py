"""Transcode on load: a neural texture's decoded mip chain encoded again with the real ASTC encoder, and what that
second lossy step costs.

The viewer's `neural-astc-<block>` modes decode the `.ngtc` on the GPU (the decoded-on-load RGBA8 chains, read
back) and `ngtc decode --astc BLOCK` with the PyTorch decoder; either way the chain stands in for a material
(`DecodedChain`), so `models.astc.encode_material` packs it by the `.ngtc`'s map layout and encodes every mip in
a process of its own (astcenc keeps per-process tuning state) into `.astc` files and a manifest, which the ASTC
mode's loader (`viewer.materials_gl.astc_set`) uploads as they are.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models import astc
from models.metrics import psnr

from .errors import ViewerError
from .modes import ASTC_BLOCKS

PRESET = astc.DEFAULT_PRESET  # astcenc's medium, as the viewer's own ASTC modes


@dataclass
class DecodedChain:
    """A decoded mip chain as `models.astc.MaterialLike`: (H_m, W_m, C) float32 in [0, 1] per mip, mip 0 first,
    channels in the layout's order."""

    name: str
    maps: list[Any]  # models.layout.MapInfo
    chain: list[np.ndarray]

    @property
    def texels(self) -> np.ndarray:
        return self.chain[0]

    def mip_chain(self) -> list[np.ndarray]:
        return self.chain


def check_block(block: str) -> str:
    """`block` if the viewer has an ASTC mode of that size, else a one-line error naming the choices."""
    if block not in ASTC_BLOCKS:
        raise ViewerError(f"unknown ASTC block size {block!r}; choose from {', '.join(ASTC_BLOCKS)}")
    return block


def fingerprint(decoded: DecodedChain) -> str:
    """sha256 of the layout and every level (each mip is the decoder's own, not derived from mip 0)."""
    h = hashlib.sha256(json.dumps([[m.name, m.channels, m.offset] for m in decoded.maps]).encode())
    for level in decoded.chain:
        h.update(f"{level.shape}".encode())
        h.update(np.ascontiguousarray(level, np.float32).tobytes())
    return h.hexdigest()


def transcode(decoded: DecodedChain, block: str, out_dir: Path) -> astc.AstcResult:
    """Every mip of `decoded` encoded at `block` into `out_dir` (reused when it already holds this chain)."""
    return astc.encode_material(decoded, check_block(block), PRESET, out_dir, fingerprint(decoded))


def expected_bytes(decoded_maps: list[Any], width: int, height: int, block: str) -> int:
    """Bytes of the `.astc` files (headers included) an encoding of the full chain writes: its progress."""
    textures = len(astc.plan_textures(decoded_maps))
    return textures * sum(astc.block_bytes(w, h, block) + astc.HEADER_BYTES for w, h in astc.mip_sizes(width, height))


def _db(values: list[float]) -> list[float | None]:
    return [None if math.isinf(v) else round(v, 3) for v in values]


@dataclass
class Loss:
    """PSNR per mip (dB, all channels) of the plain decode and of its ASTC transcoding against the reference (None
    without one), and of the transcoding against the plain decode."""

    plain: list[float] | None
    transcoded: list[float] | None
    vs_plain: list[float]

    @property
    def extra(self) -> list[float] | None:
        """What the second lossy step costs per mip, in dB."""
        if self.plain is None or self.transcoded is None:
            return None
        return [p - t for p, t in zip(self.plain, self.transcoded, strict=True)]

    def to_json(self) -> dict[str, list[float | None] | None]:
        extra = self.extra
        return {"psnr_plain_decode": _db(self.plain) if self.plain else None,
                "psnr_transcoded": _db(self.transcoded) if self.transcoded else None,
                "extra_loss_db": _db(extra) if extra else None,
                "psnr_transcoded_vs_plain_decode": _db(self.vs_plain)}

    def summary(self) -> str:
        """One line about mip 0."""
        if self.extra is None:
            return f"transcoded vs the plain decode {self.vs_plain[0]:.2f} dB at mip 0 (no reference material)"
        return (f"PSNR at mip 0: plain decode {self.plain[0]:.2f} dB, transcoded {self.transcoded[0]:.2f} dB "
                f"({-self.extra[0]:+.2f} dB, the second lossy step)")


def measure(plain: list[np.ndarray], transcoded: list[np.ndarray], reference: list[np.ndarray] | None) -> Loss:
    def per_mip(chain: list[np.ndarray], against: list[np.ndarray]) -> list[float]:
        return [psnr(a, b) for a, b in zip(chain, against, strict=True)]

    return Loss(per_mip(plain, reference) if reference else None,
                per_mip(transcoded, reference) if reference else None, per_mip(transcoded, plain))
