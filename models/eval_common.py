"""The shared vocabulary of `ngtc eval` (models.evaluate): the two codecs, one measured setting, the report's
mip ranges, and writing files with one-line errors."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import write_atomic

REPORT_MIPS = 5  # SSIM, BD-rate and the RD plot cover mips 0-4
FLIP_MIPS = 3  # FLIP of the base color at mips 0-2
BARELY_DB = 1.0  # a shared PSNR interval narrower than this makes a BD-rate unreliable
NEURAL, ASTC = "neural", "astc"


class EvalError(ValueError):
    """A bad option, an unusable report folder, a failing encoder: one line for the user."""


@dataclasses.dataclass
class Setting:
    """One point of a curve: a neural preset or an ASTC setting, its stored rate, how to decode its mips, and
    (once measured) its quality."""

    codec: str
    name: str  # preset name or block size
    label: str
    bits_per_texel: float
    stored_bytes: int
    files: list[str]
    reused: bool
    details: dict[str, Any]
    decode: Callable[[int], np.ndarray] = dataclasses.field(repr=False)
    quality: dict[str, Any] = dataclasses.field(default_factory=dict)


def curve_label(quality: str, packing: str) -> str:
    """The name of one ASTC curve (all block sizes at one astcenc preset and packing): "ASTC medium compact"."""
    return f"ASTC {quality} {packing}"


def curve_of(s: Setting) -> str:
    return s.details["curve"] if s.codec == ASTC else NEURAL


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def write_file(path: Path, data: bytes) -> None:
    """Atomically, as every report file is written; a failure is an EvalError naming the path."""
    try:
        write_atomic(path, data)
    except OSError as exc:
        raise EvalError(f"{path}: cannot write ({one_line(exc)})") from None


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "material"


def jsonable(x: Any) -> Any:
    """Non-finite floats to null (JSON has none), numpy scalars to Python, tuples and paths to lists / str."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [jsonable(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, Path):
        return str(x)
    return x
