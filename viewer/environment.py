"""HDR environments: equirectangular OpenEXR (`OpenEXR`) or Radiance `.hdr` (a small reader: no maintained PyPI
package reads RGBE without a native plugin download) to linear RGB float32, rows from the top (+y) down.

    pixels = load_environment(path)   # (H, W, 3) float32; ViewerError (one line) when it cannot be read
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import OpenEXR

from .errors import ViewerError, one_line

ENV_DIR = Path(__file__).resolve().parents[1] / "assets" / "environments"
DEFAULT_ENVIRONMENT = "studio"  # neutral: the default view's lighting
SUFFIXES = (".exr", ".hdr")
MAX_SIDE = 16384
_HDR_SIZE = re.compile(rb"^-Y (\d+) \+X (\d+)$")


def bundled() -> dict[str, Path]:
    """The environments shipped in assets/environments/, by name (the panel's picker)."""
    return {p.stem: p for p in sorted(ENV_DIR.glob("*.exr"))}


def resolve(name_or_path: str) -> Path:
    """A bundled environment's name, or a file."""
    return bundled().get(name_or_path) or Path(name_or_path)


def check_environment(path: Path | None) -> str | None:
    """A command's --env: read once up front, so a broken file fails the command (one line) before any work."""
    if path is None:
        return None
    load_environment(path)
    return str(path)


def load_environment(path: Path | str) -> np.ndarray:
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise ViewerError(f"{path}: an environment must be an OpenEXR (.exr) or Radiance (.hdr) file")
    if not path.is_file():
        raise ViewerError(f"{path}: no such environment file")
    try:
        rgb = _read_exr(path) if path.suffix.lower() == ".exr" else _read_hdr(path.read_bytes())
    except ViewerError:
        raise
    except Exception as e:  # noqa: BLE001 - any decoder failure is one line
        raise ViewerError(f"{path}: cannot read the environment ({one_line(e)})") from None
    if rgb.ndim != 3 or rgb.shape[2] != 3 or min(rgb.shape[:2]) < 2 or max(rgb.shape[:2]) > MAX_SIDE:
        raise ViewerError(f"{path}: unexpected environment size {rgb.shape}")
    rgb = np.nan_to_num(rgb.astype(np.float32), nan=0.0, posinf=65504.0, neginf=0.0)
    return np.clip(rgb, 0.0, 65504.0)  # half-float range: negative or infinite texels would poison the filtering


def _read_exr(path: Path) -> np.ndarray:
    with OpenEXR.File(str(path)) as f:
        channels = f.channels()
        if "RGB" in channels:
            return np.asarray(channels["RGB"].pixels, np.float32)
        if all(c in channels for c in "RGB"):
            return np.stack([np.asarray(channels[c].pixels, np.float32) for c in "RGB"], axis=-1)
        if "Y" in channels:  # luminance only
            return np.repeat(np.asarray(channels["Y"].pixels, np.float32)[..., None], 3, axis=-1)
    raise ViewerError(f"{path}: no RGB channels (has {', '.join(channels)})")


def _read_hdr(data: bytes) -> np.ndarray:
    """Radiance RGBE: header, "-Y H +X W", then flat or new-style run-length scanlines."""
    if not data.startswith((b"#?RADIANCE", b"#?RGBE")):
        raise ValueError("not a Radiance file (no #?RADIANCE header)")
    header_end = data.find(b"\n\n")
    if header_end < 0:
        raise ValueError("truncated header")
    line_end = data.find(b"\n", header_end + 2)
    m = _HDR_SIZE.match(data[header_end + 2:line_end].strip())
    if m is None:
        raise ValueError("unsupported orientation (only -Y H +X W)")
    h, w = int(m.group(1)), int(m.group(2))
    rgbe = _hdr_scanlines(np.frombuffer(data, np.uint8, offset=line_end + 1), w, h)
    scale = np.ldexp(1.0, rgbe[..., 3].astype(np.int32) - 136).astype(np.float32)
    return rgbe[..., :3].astype(np.float32) * scale[..., None] * (rgbe[..., 3:] > 0)


def _hdr_scanlines(buf: np.ndarray, w: int, h: int) -> np.ndarray:
    if not (8 <= w < 0x8000) or buf[:2].tolist() != [2, 2]:  # flat
        return buf[:w * h * 4].reshape(h, w, 4)
    out = np.empty((h, w, 4), np.uint8)
    pos = 0
    for y in range(h):
        pos += 4  # the scanline's header: 2 2 hi lo
        for c in range(4):
            x = 0
            while x < w:
                count = int(buf[pos])
                if count > 128:  # a run
                    out[y, x:x + count - 128, c] = buf[pos + 1]
                    x, pos = x + count - 128, pos + 2
                else:
                    out[y, x:x + count, c] = buf[pos + 1:pos + 1 + count]
                    x, pos = x + count, pos + 1 + count
    return out
