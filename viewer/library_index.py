"""What a library folder holds, for `ngtc view LIBRARY_DIR`: one entry per material, no GL.

A library folder is either the output of a multi-material `ngtc compress` (its `library.json` lists each
material's source, `.ngtc`, bits per texel and PSNR per mip and map), or a library root: every material folder
and glTF below it (`models.library.discover`, as `ngtc compress` finds them), each with the `.ngtc` beside it
(same stem, as `ngtc view MATERIAL` finds it) whose recorded PSNR sorts the gallery, and any `.ngtc` left over.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.material import has_maps

from .errors import ViewerError, one_line

# As models.library's and models.library_store's, which are imported only to read a library: they import torch,
# which `ngtc view` of one material does not need (tests/test_gallery.py checks they agree).
GLTF = (".glb", ".gltf")
LIBRARY_JSON = "library.json"


@dataclass
class Entry:
    """One material: `source` is what `models.material.load_material` reads (None: not at hand, neural only),
    `ngtc` its compressed file (None: reference and ASTC only), `error` why it cannot be shown at all."""

    name: str
    source: str | None = None
    ngtc: Path | None = None
    psnr: list[float] | None = None  # per mip, all channels, as recorded (library.json or the .ngtc)
    psnr_maps: dict[str, list[float]] = field(default_factory=dict)
    bits_per_texel: float | None = None
    error: str | None = None

    @property
    def psnr0(self) -> float | None:
        return self.psnr[0] if self.psnr else None


def is_library(path: Path | str | None) -> bool:
    """A folder that is not itself a material: a `ngtc compress` output, or a root of material folders."""
    if path is None:
        return False
    path = Path(path)
    if not path.is_dir():
        return False
    if (path / LIBRARY_JSON).is_file():
        return True
    try:
        return not has_maps(path)
    except OSError:
        return False


def read_library(path: Path | str) -> list[Entry]:
    """The materials of a library folder, in its order; a folder without any is one ViewerError line."""
    path = Path(path)
    entries = _from_library_json(path) if (path / LIBRARY_JSON).is_file() else _from_root(path)
    if not entries:
        raise ViewerError(f"{path}: no materials in this library (no material folder, .glb/.gltf or .ngtc below "
                          f"it, nor a {LIBRARY_JSON})")
    return entries


def _from_library_json(out: Path) -> list[Entry]:
    from models.library_store import LIBRARY_FORMAT

    try:
        doc = json.loads((out / LIBRARY_JSON).read_text())
    except (OSError, ValueError) as e:
        raise ViewerError(f"{out / LIBRARY_JSON}: unreadable ({one_line(e)})") from None
    if not isinstance(doc, dict) or doc.get("format") != LIBRARY_FORMAT:
        raise ViewerError(f"{out / LIBRARY_JSON}: not an {LIBRARY_FORMAT} file")
    entries = []
    for e in doc.get("materials", []):
        if not isinstance(e, dict) or not isinstance(e.get("name"), str):
            continue
        entry = Entry(e["name"], _source(e.get("source"), out))
        if e.get("status") != "ok":
            entry.error = f"{e.get('status', 'failed')}: {e.get('reason') or 'no reason recorded'}"
        elif not (out / str(e.get("file"))).is_file():
            entry.error = f"{e.get('file')}: listed in {LIBRARY_JSON} but missing"
        else:
            entry.ngtc = out / e["file"]
            entry.psnr = _floats(e.get("psnr"))
            entry.psnr_maps = {k: _floats(v) or [] for k, v in (e.get("psnr_maps") or {}).items()}
            entry.bits_per_texel = e.get("bits_per_texel")
        entries.append(entry)
    return entries


def _source(source: object, out: Path) -> str | None:
    """A recorded source that is still there: as written (relative to the current folder), or relative to the
    library folder's parent (where `ngtc compress` is usually run)."""
    if not isinstance(source, str):
        return None
    for base in (Path.cwd(), out.parent):
        candidate = base / source
        if Path(str(candidate).split("#materials[")[0]).exists():  # a glTF material: "file.glb#materials[N]"
            return str(candidate)
    return None


def _from_root(root: Path) -> list[Entry]:
    from models.library import discover

    entries, used = [], set()
    for item in discover([root]):
        if item.error and Path(item.source) == root:
            continue  # discover's "no material below it": said once, by read_library
        ngtc = _beside(item.source, item.file)
        entry = Entry(item.name, item.source, ngtc, error=item.error)
        if ngtc is not None:
            used.add(ngtc.resolve())
            _recorded(entry)
        entries.append(entry)
    for ngtc in sorted(root.glob("*.ngtc")):  # compressed files without their material
        if ngtc.resolve() not in used:
            entries.append(_recorded(Entry(ngtc.stem, None, ngtc)))
    return entries


def _beside(source: str, file: str) -> Path | None:
    """The `.ngtc` of a material: beside it with its stem (`ngtc view`'s rule), or named after the entry."""
    plain = Path(source.split("#materials[")[0])
    if "#materials[" in source:  # one material of a glTF with several
        candidates = [plain.parent / file]
    elif plain.suffix.lower() in GLTF:
        candidates = [plain.with_suffix(".ngtc"), plain.parent / file]
    else:
        candidates = [plain.parent / f"{plain.name}.ngtc", plain.parent / file]
    return next((c for c in candidates if c.is_file()), None)


def _recorded(entry: Entry) -> Entry:
    """The PSNR and rate the entry's `.ngtc` records (an unreadable file: the entry's error)."""
    from models import ngtc_file

    try:
        ct = ngtc_file.load(entry.ngtc)
    except (ngtc_file.NgtcError, OSError) as e:
        entry.error = f"{entry.ngtc.name}: {one_line(e)}"
        entry.ngtc = None
        return entry
    info = ct.info
    entry.psnr = _floats(info.quality.psnr)
    entry.psnr_maps = {k: _floats(v) or [] for k, v in dict(info.quality.psnr_maps).items()}
    stored = info.stored_bytes or entry.ngtc.stat().st_size
    entry.bits_per_texel = stored * 8 / (ct.width * ct.height)
    return entry


def _floats(values: Any) -> list[float] | None:
    if not isinstance(values, list | tuple) or not values:
        return None
    return [float(v) if v is not None else float("inf") for v in values]  # null: lossless (JSON has no inf)


def summary(entry: Entry) -> str:
    """One line about an entry, for the picker's tooltip and the log."""
    if entry.error:
        return f"{entry.name}: {entry.error}"
    parts = [entry.name]
    if entry.bits_per_texel is not None:
        parts.append(f"{entry.bits_per_texel:.2f} bpp")
    if entry.psnr:
        parts.append("PSNR " + " ".join(f"{p:.1f}" for p in entry.psnr[:4]) + " dB (mips 0..)")
    parts.append("reference" if entry.source else "no source (neural only)")
    return ", ".join(parts)
