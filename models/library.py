"""Material libraries: what is in one, the settings a library is compressed with, and one material's task.

A library is the materials below some inputs: material folders, glTF files (each textured material of a glTF
with several) and library roots (every material folder and glTF below them). Each material gets a unique
name, the stem of its `.ngtc`. `compress_task` runs in a Ray worker and returns what to write (the driver in
`models.library_run` writes it), so a worker that dies leaves no file behind.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from .astc import material_fingerprint
from .cluster import worker_name
from .codec import compress_material, compress_to_psnr, rate_preset
from .decoder import NeuralTexture
from .eval_common import slug
from .eval_figures import display_map
from .fit import METHODS, FitConfig
from .layout import map_slice
from .material import Material, MaterialError, gltf_material_ref, gltf_materials, has_maps, load_material
from .ngtc_file import CompressedTexture, NgtcError
from .presets import DEFAULT_PRESET, get_preset
from .spec import FORMAT_VERSION
from .warm_start import WarmStartError
from .warm_start import fingerprint as warm_start_fingerprint
from .warm_start import require as require_warm_start

GLTF = (".glb", ".gltf")
THUMBS = "thumbs"  # folder of the reference | neural thumbnails, beside the .ngtc files
THUMB_TEXELS = 128  # a thumbnail is the first mip at most this many texels a side
INPUT_ERRORS = (MaterialError, NgtcError, WarmStartError, ValueError, OSError)  # a bad material, not a bug


@dataclass(frozen=True)
class Item:
    """One material of a library: `source` is what `load_material` reads; `error` says why it cannot be."""

    name: str
    source: str
    error: str | None = None

    @property
    def file(self) -> str:
        return f"{self.name}.ngtc"


def discover(paths: Sequence[str | Path], exclude: str | Path | None = None) -> list[Item]:
    """Every material below `paths` (in their order; sorted below a root), named uniquely. `exclude`: a folder
    not to look into (the output folder)."""
    skip = Path(exclude).resolve() if exclude else None
    found = [item for path in paths for item in _expand(Path(path), skip, explicit=True)]
    return _unique(found)


def _expand(path: Path, skip: Path | None, explicit: bool = False) -> list[Item]:
    if path.is_dir() and not _has_maps(path):
        found = [item for sub in _below(path, skip) for item in _expand(sub, skip)]
        if found or not explicit:
            return found
        return [Item(path.name, str(path), f"{path}: no material folder or .glb/.gltf below it")]
    if path.is_file() and path.suffix.lower() in GLTF:
        return _gltf_items(path)
    # A material folder, or something load_material will refuse in one line when its task runs.
    return [Item(path.resolve().name if path.is_dir() else path.name, str(path))]


def _has_maps(folder: Path) -> bool:
    try:
        return has_maps(folder)
    except OSError:
        return False


def _below(root: Path, skip: Path | None) -> list[Path]:
    """Material folders and glTF files below a library root, not looking inside material folders."""
    found = []
    for here, dirs, files in os.walk(root):
        folder = Path(here)
        dirs[:] = [d for d in dirs if not d.startswith(".") and (folder / d).resolve() != skip]
        if folder != root and _has_maps(folder):
            found.append(folder)
            dirs.clear()
        else:
            found += [folder / f for f in files if f.lower().endswith(GLTF) and not f.startswith(".")]
    return sorted(found)


def _gltf_items(path: Path) -> list[Item]:
    try:
        materials = gltf_materials(path)
    except (MaterialError, OSError) as exc:
        return [Item(path.stem, str(path), one_line(exc))]
    if len(materials) == 1:
        return [Item(path.stem, str(path))]
    return [Item(f"{path.stem}_{name}", gltf_material_ref(path, index)) for index, name in materials]


def _unique(items: list[Item]) -> list[Item]:
    seen: dict[str, int] = {}
    out = []
    for item in items:
        base = slug(item.name)
        seen[base] = seen.get(base, 0) + 1
        out.append(dataclasses.replace(item, name=base if seen[base] == 1 else f"{base}_{seen[base]}"))
    return out


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def failure_reason(exc: BaseException) -> str:
    """One line: the message of a bad input, or the exception of a bug, said as such."""
    return one_line(exc) if isinstance(exc, INPUT_ERRORS) else f"internal error: {type(exc).__name__}: {one_line(exc)}"


def failure_details(exc: BaseException) -> dict[str, str]:
    """A bug's traceback (called while handling it), for library.json; nothing for a bad input."""
    return {} if isinstance(exc, INPUT_ERRORS) else {"traceback": traceback.format_exc()}


# ------------------------------------------------------------------------------------------ settings


@dataclass(frozen=True)
class Settings:
    """What every material of a library is compressed with: one rate (preset, bpp or psnr), the fit."""

    preset: str | None = None
    bpp: float | None = None
    psnr: float | None = None
    method: str = "grids"
    steps: int | None = None
    seconds: float | None = 300.0
    seed: int = 0
    maps: tuple[str, ...] | None = None
    channels: tuple[tuple[str, str], ...] = ()  # scalar map -> image channel, for folders of maps

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose one of {', '.join(METHODS)}")
        if sum(x is not None for x in (self.bpp, self.preset, self.psnr)) > 1:
            raise ValueError("give one of --bpp, --preset and --psnr")
        if self.preset is not None:
            get_preset(self.preset)
        if self.method == "warm" and self.bpp is None and self.psnr is None:  # before any progress bar
            require_warm_start([get_preset(self.preset or DEFAULT_PRESET)])
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"--steps must be at least 1, got {self.steps}")
        if self.steps is None and not (self.seconds or 0) > 0:
            raise ValueError(f"--seconds must be positive, got {self.seconds}")

    def key(self) -> dict[str, Any]:
        """What a library's `.ngtc` depends on besides the material: compared on a resumed run. The device is
        left out: a library resumed on other hardware keeps what is done."""
        key = dataclasses.asdict(self)
        key["seconds"] = None if self.steps else self.seconds
        key["maps"] = list(self.maps) if self.maps else None
        key["channels"] = dict(self.channels)
        if self.method == "warm":  # the shared weights too: retraining them changes every fit
            key["warm_start"] = warm_start_fingerprint(self.preset or DEFAULT_PRESET)
        return {**key, "ngtc_format": FORMAT_VERSION}


def fit_config(material: Material, settings: Settings, device: str | None = None):
    """The FitConfig of one material: the preset named, or the one whose file has --bpp for this material."""
    chosen = rate_preset(settings.bpp, material) if settings.bpp is not None else get_preset(
        settings.preset or DEFAULT_PRESET)
    return FitConfig(chosen, method=settings.method, steps=settings.steps,
                     seconds=None if settings.steps else settings.seconds, seed=settings.seed, device=device)


def compress(material: Material, settings: Settings, device: str | None = None, callback=None):
    """(stored bytes, CompressedTexture, probes) of one material: at the rate asked for, or the lowest reaching
    --psnr (its probe fits are the probes)."""
    cfg = fit_config(material, settings, device)
    if settings.psnr is not None:
        return compress_to_psnr(material, settings.psnr, cfg, callback)
    return (*compress_material(material, cfg, callback), [])


def load(source: str, settings: Settings) -> Material:
    # Channel choices are for folders of maps: a glTF fixes its channels (and load_material refuses them).
    channels = dict(settings.channels) if Path(source).is_dir() else None
    return load_material(source, list(settings.maps) if settings.maps else None, channels=channels)


# ------------------------------------------------------------------------------------------ one material's task


def compress_task(item: Item, settings: Settings, previous: dict[str, Any] | None, threads: int,
                  device: str) -> dict[str, Any]:
    """One material, in a Ray worker: {"entry": its library.json entry, "files": {relative path: bytes}}.

    `previous`: the entry of an intact earlier output with the same settings; when the material's fingerprint
    is unchanged too, it is kept (skipped). A bad material (or a bug) gives a failed entry with its one-line
    reason, never an exception: it would be the same on a retry."""
    torch.set_num_threads(threads)
    start = time.perf_counter()
    try:
        material = load(item.source, settings)
        fingerprint = material_fingerprint(material)
        if previous is not None and previous.get("fingerprint") == fingerprint:
            return {"entry": {**previous, "skipped": True}, "files": {}}
        data, ct, _ = compress(material, settings, device)
        files = {item.file: data, **thumbnails(item.name, material, ct, device)}
        entry = ok_entry(item, settings, fingerprint, data, ct)
    except Exception as exc:  # noqa: BLE001 - isolated: reported with its reason, the library goes on
        entry, files = {**failed_entry(item, settings, failure_reason(exc)), **failure_details(exc)}, {}
    entry.update(compress_seconds=round(time.perf_counter() - start, 2), node=worker_name())
    return {"entry": entry, "files": files}


def ok_entry(item: Item, settings: Settings, fingerprint: str, data: bytes, ct: CompressedTexture) -> dict[str, Any]:
    info = ct.info
    return {
        "name": item.name, "file": item.file, "source": item.source, "status": "ok", "reason": None,
        "skipped": False, "fingerprint": fingerprint, "settings": settings.key(), "material": info.material,
        "size": [ct.width, ct.height], "mips": ct.mips, "maps": [m.name for m in ct.layout if m.constant is None],
        "preset": info.preset, "stored_bytes": len(data),
        "bits_per_texel": round(len(data) * 8 / (ct.width * ct.height), 4),
        "psnr": list(info.quality.psnr), "psnr_maps": dict(info.quality.psnr_maps), "steps": info.steps,
        "fit_seconds": info.seconds, "device": info.device, "sha256": hashlib.sha256(data).hexdigest(),
        "thumbnails": {kind: thumb_path(item.name, kind) for kind in ("reference", "neural")},
    }


def failed_entry(item: Item, settings: Settings, reason: str, status: str = "failed") -> dict[str, Any]:
    return {"name": item.name, "file": None, "source": item.source, "status": status, "reason": reason,
            "settings": settings.key()}


# ------------------------------------------------------------------------------------------ thumbnails


def thumb_path(name: str, kind: str) -> str:
    return f"{THUMBS}/{name}.{kind}.png"


def thumb_mip(width: int, height: int) -> int:
    """The first mip at most THUMB_TEXELS a side."""
    return max(0, (max(width, height) - 1).bit_length() - (THUMB_TEXELS - 1).bit_length())


def thumbnails(name: str, material: Material, ct: CompressedTexture, device: str | None) -> dict[str, bytes]:
    """Reference and decoded base color (or the first map that is not constant) at a thumbnail mip, as PNGs."""
    shown = [m for m in material.maps if m.constant is None]
    info = next((m for m in shown if m.name == "basecolor"), shown[0])
    k = min(thumb_mip(material.width, material.height), material.mip_count() - 1)
    ref = material.mip_chain()[k][..., map_slice(info)]
    neural = NeuralTexture(ct, device).decode_mip(k)[..., map_slice(info)]
    return {thumb_path(name, kind): png_bytes(display_map(texels, info.name))
            for kind, texels in (("reference", ref), ("neural", neural))}


def png_bytes(texels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.round(np.clip(texels, 0, 1) * 255).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()
