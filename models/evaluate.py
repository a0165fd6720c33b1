"""Rate-distortion of the neural codec against ASTC: `ngtc eval` (or `python -m models.evaluate`).

For each material (a folder of maps or a glTF file), every neural preset and every ASTC setting are
encoded (full mip chain), decoded from what was stored, and measured against the material's
`mip_chain()` reference. An ASTC setting is a block size x an astcenc preset (`--quality`, default
medium and thorough) x a packing (`--astc-packing`: compact, fewest or both, default both; see
`models.astc`); the block sizes of one preset and packing make one ASTC curve ("ASTC medium compact").

- rate: bits per texel of the whole set, all maps and the full mip chain, over the mip-0 texel count:
  the `.ngtc` file size for the neural codec; the ASTC block bytes (128 bits per block, headers
  excluded) of every texture and mip for ASTC;
- PSNR (peak 1.0, channels as stored) over all channels and per map at every mip; SSIM per map at
  mips 0-4; FLIP of the base color (sRGB-encoded, as stored) at mips 0-2;
- per ASTC curve and mip 0-4: BD-rate and BD-PSNR of neural against that curve (piecewise cubic,
  `models.metrics`), the PSNR interval both curves share, and the rate each codec needs at a few fixed
  PSNR values. report.json has them per curve in ``astc_curves``; ``bd`` (as before there were several
  curves) is the one against the first curve, the anchor (medium compact by default), named in
  ``bd_anchor``. Each ASTC entry of ``settings`` keeps ``setting`` = its block size and adds
  ``quality``, ``packing`` and ``curve``.

The report folder gets `report.md` and `report.json` (written last, atomically; a stale report is
removed first), `rd_<material>.png`, `compare_<material>_<map>_mip<k>.png`, the ASTC textures
(`astc/<material>/<block>_<quality>[_fewest]/`, with their manifest naming the packing, ready for the
viewer) and the `.ngtc` files
(`ngtc/<material>_<preset>.ngtc`, each with a `.json` sidecar holding the settings it was made with).
Both are reused on a later run with the same settings instead of being recomputed: for an .ngtc the
material fingerprint and layout and every fitting setting (preset, method, budget, seed, batch, ...,
device kind); for ASTC the fingerprint, block size, astcenc preset, packing and encoder version (its
manifest). Give --steps for bit-exact reruns: a --seconds budget (default 300 s a preset) trains for as
many steps as the machine manages; report.md states the budget and each preset's steps and seconds.
`--quick` (tests): a 64 px crop, 2 presets at 60 steps, 2 block sizes, ASTC medium compact only; options
given explicitly still win (`--quick --seconds 5` trains 5 s a preset).

The figures are drawn by `models.eval_figures`, report.md by `models.eval_report`; `models.eval_common` holds
what they share (a `Setting`, the codecs' names, the mip ranges).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import hashlib
import json
import math
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from . import astc, warm_start
from . import metrics as M
from .atomic import writable_folder
from .eval_common import (
    ASTC,
    BARELY_DB,
    FLIP_MIPS,
    NEURAL,
    REPORT_MIPS,
    EvalError,
    Setting,
    curve_label,
    curve_of,
    jsonable,
    one_line,
    slug,
    write_file,
)
from .eval_figures import compare_figure, rd_figure
from .eval_report import render_markdown, summary_table
from .layout import MapInfo, layout_to_builtins
from .material import Material, MaterialError, load_material
from .presets import PRESETS, get_preset

REPORT_FORMAT = "ngtc-eval"
REPORT_VERSION = 1
CACHE_FORMAT = "ngtc-eval-cache"
CACHE_VERSION = 1
DEFAULT_PRESETS = tuple(PRESETS)
DEFAULT_BLOCKS = astc.BLOCK_SIZES
DEFAULT_QUALITIES = ("medium", "thorough")  # astcenc presets: one ASTC curve each
DEFAULT_PACKINGS = astc.PACKINGS  # compact and fewest: one ASTC curve each
DEFAULT_SECONDS = 300.0
QUICK = {"crop": 64, "presets": ("bpp2.4", "bpp12"), "blocks": ("6x6", "12x12"), "steps": 60, "batch": 2048,
         "qualities": ("medium",), "packings": ("compact",)}


@dataclasses.dataclass
class EvalOptions:
    out: Path
    presets: tuple[str, ...] = DEFAULT_PRESETS
    blocks: tuple[str, ...] = DEFAULT_BLOCKS
    qualities: tuple[str, ...] = DEFAULT_QUALITIES  # astcenc presets, one ASTC curve per quality x packing
    packings: tuple[str, ...] = DEFAULT_PACKINGS  # the first quality x first packing is the BD anchor ("bd")
    method: str = "grids"
    seconds: float | None = DEFAULT_SECONDS
    steps: int | None = None
    seed: int = 0
    batch: int | None = None  # None: FitConfig's default
    crop: int | None = None
    compare_bpp: float = 2.4
    compare_mips: tuple[int, ...] = (0,)
    device: str | None = None
    quick: bool = False


def _split(value: str | Sequence[str] | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else [v for part in value for v in str(part).split(",")]
    return tuple(v.strip() for v in items if v.strip())


def make_options(out: str | Path, *, presets: str | Sequence[str] | None = None,
                 blocks: str | Sequence[str] | None = None, quality: str | Sequence[str] | None = None,
                 astc_packing: str | Sequence[str] | None = None,
                 method: str = "grids", seconds: float | None = None, steps: int | None = None, seed: int = 0,
                 batch: int | None = None, crop: int | None = None, compare_bpp: float = 2.4,
                 compare_mips: str | Sequence[int] | None = None, device: str | None = None,
                 quick: bool = False) -> EvalOptions:
    """Options from command-line style values (comma-separated lists), `--quick` defaults filled in where a
    value was not given, everything checked: EvalError names the bad option and lists the valid values.

    quality: astcenc presets ("medium,thorough"); astc_packing: "compact", "fewest" or "both" (or a list).
    The budget: --steps, else --seconds (default 300 s; --quick: 60 steps unless --seconds is given)."""
    from .fit import METHODS

    preset_names = _split(presets) or (QUICK["presets"] if quick else DEFAULT_PRESETS)
    for name in preset_names:
        if name not in PRESETS:
            raise EvalError(f"--presets: unknown preset {name!r}; valid: {', '.join(PRESETS)}")
    block_names = []
    for b in _split(blocks) or (QUICK["blocks"] if quick else DEFAULT_BLOCKS):
        try:
            block_names.append(astc.block_name(b))
        except ValueError:
            valid = ", ".join(f"{x}x{y}" for x, y in sorted(astc.LEGAL_BLOCKS_2D))
            raise EvalError(f"--blocks: {b!r} is not a 2D ASTC block size astcenc accepts; valid: {valid}") from None
    qualities = tuple(q.lower() for q in (_split(quality) or (QUICK["qualities"] if quick else DEFAULT_QUALITIES)))
    for q in qualities:
        if q not in astc.PRESETS:
            raise EvalError(f"--quality: unknown astcenc preset {q!r}; valid: {', '.join(astc.PRESETS)}")
    packings: list[str] = []
    for pk in _split(astc_packing) or (QUICK["packings"] if quick else DEFAULT_PACKINGS):
        pk = pk.lower()
        if pk not in (*astc.PACKINGS, "both"):
            raise EvalError(f"--astc-packing: unknown packing {pk!r}; valid: {', '.join(astc.PACKINGS)}, both")
        packings += astc.PACKINGS if pk == "both" else [pk]
    if method not in METHODS:
        raise EvalError(f"--method: unknown method {method!r}; valid: {', '.join(METHODS)}")
    if method == "warm":
        try:
            warm_start.require([PRESETS[name] for name in preset_names])
        except warm_start.WarmStartError as e:
            raise EvalError(str(e)) from None
    if steps is None and seconds is None:
        if quick:
            steps = QUICK["steps"]
        else:
            seconds = DEFAULT_SECONDS
    if steps is not None and steps < 1:
        raise EvalError(f"--steps must be at least 1, got {steps}")
    if steps is None and (seconds is None or not seconds > 0):
        raise EvalError(f"--seconds must be positive, got {seconds}")
    if crop is None and quick:
        crop = QUICK["crop"]
    if crop is not None and crop < 8:
        raise EvalError(f"--crop must be at least 8 texels, got {crop}")
    if batch is None and quick:
        batch = QUICK["batch"]
    if not compare_bpp > 0:
        raise EvalError(f"--compare-bpp must be positive, got {compare_bpp}")
    if compare_mips is None:
        compare_mips = "0"
    try:
        items = _split(compare_mips if isinstance(compare_mips, str) else [str(v) for v in compare_mips])
        mips = tuple(sorted({int(v) for v in items})) or (0,)
    except ValueError:
        raise EvalError(f"--compare-mips: expected comma-separated mip levels, got {compare_mips!r}") from None
    if any(m < 0 for m in mips):
        raise EvalError(f"--compare-mips: mip levels are >= 0, got {compare_mips!r}")
    return EvalOptions(Path(out), tuple(dict.fromkeys(preset_names)), tuple(dict.fromkeys(block_names)),
                       tuple(dict.fromkeys(qualities)), tuple(dict.fromkeys(packings)), method,
                       None if steps else seconds, steps, seed, batch, crop, compare_bpp, mips, device, quick)


# ------------------------------------------------------------------------------------------ files


def prepare_out(out: Path) -> None:
    """Create the report folder, check it can be written, and remove a stale report.md / report.json so
    that an interrupted or failed run never leaves an old report looking like this run's."""
    writable_folder(out, "report", EvalError)
    for name in ("report.md", "report.json"):
        try:
            (out / name).unlink(missing_ok=True)
        except OSError as exc:
            raise EvalError(f"{out / name}: cannot remove the stale report ({one_line(exc)})") from None


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("torch", "astc-encoder-py", "numpy", "scikit-image", "flip-evaluator", "bjontegaard", "matplotlib",
                "ngtc-viewer"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


# ------------------------------------------------------------------------------------------ measuring


def measure(decode: Callable[[int], np.ndarray], ref: list[np.ndarray], layout: list[MapInfo]) -> dict[str, Any]:
    """PSNR (all channels, per map) at every mip; SSIM per map at mips 0-4; base color FLIP at mips 0-2."""
    base = next((m for m in layout if m.name == "basecolor" and m.constant is None and m.channels == 3), None)
    out: dict[str, Any] = {"psnr": [], "psnr_maps": {}, "ssim_maps": {}, "flip_basecolor": [] if base else None}
    for k, r in enumerate(ref):
        d = decode(k)
        if d.shape != r.shape:
            raise EvalError(f"decoded mip {k} has shape {d.shape}, the reference {r.shape}")
        out["psnr"].append(M.psnr(d, r))
        for name, v in M.psnr_per_map(d, r, layout).items():
            out["psnr_maps"].setdefault(name, []).append(v)
        if k < REPORT_MIPS:
            for name, v in M.ssim_per_map(d, r, layout).items():
                out["ssim_maps"].setdefault(name, []).append(v)
        if base and k < FLIP_MIPS:
            s = slice(base.offset, base.offset + 3)
            out["flip_basecolor"].append(M.flip(r[..., s], d[..., s]))
    return out


def _fixed_targets(a: Sequence[float], b: Sequence[float], shared: tuple[float, float] | None) -> list[float]:
    """A few round PSNR values across the union of two curves' PSNR ranges, with at least one inside each
    curve's own range (so that each codec gets a rate even when the curves do not overlap) and, when they
    share an interval with no round value in it, its middle."""
    ranges = [(min(v), max(v)) for v in (a, b) if len(v)]
    if not ranges:
        return []
    lo, hi = min(r[0] for r in ranges), max(r[1] for r in ranges)
    for step in (5.0, 2.0, 1.0, 0.5):
        targets = [step * i for i in range(math.ceil(lo / step), math.floor(hi / step) + 1)]
        if len(targets) >= 3:
            break
    if len(targets) > 6:
        targets = targets[:: math.ceil(len(targets) / 6)]
    for r_lo, r_hi in ranges:
        if not any(r_lo <= t <= r_hi for t in targets):
            inside = [0.5 * i for i in range(math.ceil(r_lo * 2), math.floor(r_hi * 2) + 1)]
            targets.append(inside[len(inside) // 2] if inside else round((r_lo + r_hi) / 2, 2))
    if shared and not any(shared[0] <= t <= shared[1] for t in targets):
        mid = round((shared[0] + shared[1]) / 2, 2)
        targets.append(mid if shared[0] <= mid <= shared[1] else (shared[0] + shared[1]) / 2)
    return sorted(set(targets))


def bd_summary(neural: list[tuple[float, float]], astc_pts: list[tuple[float, float]]) -> dict[str, Any]:
    """BD-rate / BD-PSNR of neural (test) against ASTC (anchor) from (bpp, PSNR) points of one mip, with
    the shared PSNR and rate intervals, a verdict, and each curve's rate at a few fixed PSNR values."""
    nr, npsnr = M.rd_curve([r for r, _ in neural], [p for _, p in neural])
    ar, apsnr = M.rd_curve([r for r, _ in astc_pts], [p for _, p in astc_pts])
    psnr_span, rate_span = M.shared_interval(npsnr, apsnr), M.shared_interval(nr, ar)
    psnr_span = psnr_span if psnr_span and psnr_span[1] > psnr_span[0] else None  # a single point is no interval
    rate_span = rate_span if rate_span and rate_span[1] > rate_span[0] else None
    width = psnr_span[1] - psnr_span[0] if psnr_span else 0.0
    if len(nr) < 2 or len(ar) < 2:
        status = "too few points"
        note = (f"BD-rate needs two or more settings on each curve that improve on each other "
                f"(neural {len(nr)}, ASTC {len(ar)})")
    elif psnr_span is None:
        status = "no overlap"
        note = (f"the curves share no PSNR interval (neural {npsnr.min():.2f}-{npsnr.max():.2f} dB, ASTC "
                f"{apsnr.min():.2f}-{apsnr.max():.2f} dB): BD-rate is undefined; compare the rates at fixed "
                f"PSNR instead")
    elif width < BARELY_DB:
        status = "barely overlap"
        note = (f"the curves share only {width:.2f} dB ({psnr_span[0]:.2f}-{psnr_span[1]:.2f} dB): the BD-rate "
                f"averages over that sliver only and is unreliable; compare the rates at fixed PSNR instead")
    else:
        status = "ok"
        note = f"BD-rate over the shared {psnr_span[0]:.2f}-{psnr_span[1]:.2f} dB ({width:.2f} dB)"
    bd_rate = M.bd_rate(ar, apsnr, nr, npsnr) if status in ("ok", "barely overlap") else math.nan
    bd_psnr = M.bd_psnr(ar, apsnr, nr, npsnr) if len(nr) >= 2 and len(ar) >= 2 else math.nan
    fixed = []
    for t in _fixed_targets(npsnr, apsnr, psnr_span):
        rn, ra = M.rate_at_psnr(nr, npsnr, t), M.rate_at_psnr(ar, apsnr, t)
        if rn is not None or ra is not None:
            fixed.append({"psnr": t, NEURAL: rn, ASTC: ra, "ratio": rn / ra if rn and ra else None})
    return {
        "status": status, "note": note, "bd_rate_percent": bd_rate, "bd_psnr_db": bd_psnr,
        "psnr_interval": list(psnr_span) if psnr_span else None, "psnr_overlap_db": max(width, 0.0),
        "rate_interval": list(rate_span) if rate_span else None,
        "neural_psnr_range": [float(npsnr.min()), float(npsnr.max())] if len(npsnr) else None,
        "astc_psnr_range": [float(apsnr.min()), float(apsnr.max())] if len(apsnr) else None,
        "rate_at_psnr": fixed,
    }


# ------------------------------------------------------------------------------------------ codecs


def _layout_key(material: Material) -> list:
    return [[m.name, m.channels, m.offset, m.bit_depth, m.constant] for m in material.maps]


def fit_config(preset: str, opts: EvalOptions):
    """The FitConfig of one preset under these options."""
    from .fit import FitConfig

    cfg = FitConfig(get_preset(preset), method=opts.method, steps=opts.steps,
                    seconds=None if opts.steps else opts.seconds, seed=opts.seed, device=opts.device)
    if opts.batch:
        cfg.batch = opts.batch
    return cfg


def neural_cache_key(material: Material, fingerprint: str, preset: str, opts: EvalOptions) -> dict[str, Any]:
    """What an .ngtc depends on: the material (fingerprint, layout), every FitConfig field (preset, method,
    budget, seed, batch, learning rates...; the device as its kind), the warm start's weights and the file
    format."""
    from .fit import SHORT_FIT_STEPS, pick_device
    from .spec import FORMAT_VERSION, QUANT_BITS

    fit = fit_config(preset, opts)
    cfg = msgspec.to_builtins(fit)  # the preset's DecoderShape included
    shape = cfg["preset"]["shape"]
    for flag in ("grid_pyramid", "pyramid_prefilter"):  # off, keyed as before the flag existed: same fits
        if not shape[flag]:
            del shape[flag]
    for bits in ("g0_bits", "g1_bits"):  # 4-bit grids, keyed as before per-grid bits: same fits
        if shape[bits] == QUANT_BITS:
            del shape[bits]
    # the synthesizer's learning rate, keyed where it was before presets carried it (same fits, same keys)
    del cfg["preset"]["lr_synthesizer"]
    cfg["lr_synthesizer"] = fit.synthesizer_lr
    # the mip-0 boost as the fit resolves it for this size (by the preset's growth), keyed only where it is not 1:
    # those are the fits from before the boost existed
    del cfg["preset"]["mip0_boost_growth"]
    if not cfg["preset"]["g0_paired"]:  # no digit pairs: keyed as before they existed (same fits)
        del cfg["preset"]["g0_paired"]
    # mip 1's weight as the fit resolves it, keyed only where it is not 1 (the fits from before it existed)
    del cfg["preset"]["mip1_weight"]
    if fit.mip1_loss_weight == 1.0:
        del cfg["mip1_weight"]
    else:
        cfg["mip1_weight"] = fit.mip1_loss_weight
    boost = fit.boost_for(material.width, material.height)
    if boost == 1.0:
        del cfg["mip0_boost"]
    else:
        cfg["mip0_boost"] = boost
    # larger steps in short fits: keyed where they can change the fit (a time budget, or too few steps)
    if not cfg["short_fit_lr"] or (fit.steps and fit.steps >= SHORT_FIT_STEPS):
        del cfg["short_fit_lr"]
    device = pick_device(opts.device)
    cfg["device"] = device.type
    cfg["synthesizer_bf16"] = fit.trains_bf16(device)  # as the fit resolves it on this device
    if not cfg["synthesizer_bf16"]:  # float32 throughout: its bf16 share changes nothing, keyed as before it
        del cfg["bf16_share"]
    if opts.method == "warm":  # the shared weights too: retraining them changes every fit
        cfg["warm_start"] = warm_start.fingerprint(preset)
    return jsonable({"format": CACHE_FORMAT, "version": CACHE_VERSION, "ngtc_format": FORMAT_VERSION,
                      "material": material.name, "size": [material.width, material.height],
                      "fingerprint": fingerprint, "layout": _layout_key(material), "fit": cfg})


def _cached_ngtc(path: Path, key: dict[str, Any]) -> bytes | None:
    side = path.with_name(path.name + ".json")
    try:
        sidecar = json.loads(side.read_text())
        data = path.read_bytes()
    except (OSError, ValueError):
        return None
    if sidecar.get("key") != key or sidecar.get("sha256") != hashlib.sha256(data).hexdigest():
        return None
    return data


def run_neural(material: Material, fingerprint: str, preset: str, opts: EvalOptions, path: Path,
               on_progress: Callable | None = None) -> Setting:
    """Fit (or reuse) the .ngtc of one preset; the setting decodes from the stored file."""
    from . import ngtc_file
    from .codec import compress_material
    from .decoder import NeuralTexture

    key = neural_cache_key(material, fingerprint, preset, opts)
    data = _cached_ngtc(path, key)
    reused = data is not None
    if data is None:
        data, _ = compress_material(material, fit_config(preset, opts), on_progress)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.with_name(path.name + ".json").unlink(missing_ok=True)
        ngtc_file.write_atomic(path, data)
        sidecar = {"key": key, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        write_file(path.with_name(path.name + ".json"), (json.dumps(sidecar, indent=1) + "\n").encode())
    ct = ngtc_file.from_bytes(data, str(path))
    nt = NeuralTexture(ct, opts.device)
    info = ct.info
    details = {"preset": preset, "method": info.method, "seed": info.seed, "steps": info.steps,
               "train_seconds": info.seconds, "batch": info.batch, "device": info.device, "torch": info.torch,
               "nominal_bpp": round(get_preset(preset).nominal_bpp(material.width, material.height), 3)}
    return Setting(NEURAL, preset, f"neural {preset}", len(data) * 8 / (material.width * material.height), len(data),
                   [str(path)], reused, details, nt.decode_mip)


def astc_curves(opts: EvalOptions) -> list[tuple[str, str]]:
    """(quality, packing) of every ASTC curve, in report order; the first is the anchor of the report's "bd"."""
    return [(q, p) for q in opts.qualities for p in opts.packings]


def run_astc(material: Material, fingerprint: str, block: str, quality: str, packing: str, folder: Path) -> Setting:
    """Encode (or reuse) one ASTC setting: block size x astcenc preset x packing, in its own process."""
    what = f"{material.name}: ASTC {block} {quality} {packing}"
    try:
        res = astc.encode_material(material, block, quality, folder, fingerprint, packing=packing)
    except ValueError as exc:  # AstcError included
        raise EvalError(f"{what} failed: {one_line(exc)}") from None
    man = res.manifest
    specs = astc.manifest_plan(man, material.maps, folder / astc.MANIFEST_NAME)

    def decode(k: int) -> np.ndarray:
        """Mip k from its .astc files (one mip at a time: nothing of the chain is kept in memory)."""
        textures = {spec.name: astc.read_decoded(folder / tex["files"][k]["file"], spec.profile)
                    for spec, tex in zip(specs, man["textures"], strict=True)}
        return astc.unpack(textures, material.maps, specs)

    files = [str(folder / rec["file"]) for tex in man["textures"] for rec in tex["files"]]
    curve = curve_label(quality, packing)
    details = {"block": block, "quality": quality, "packing": packing, "curve": curve, "profile": astc.PROFILE,
               "textures": list(man["packing"]), "packing_plan": man["packing"],
               "encode_seconds": man.get("encode_seconds"), "encoder": man["encoder"], "folder": str(folder)}
    return Setting(ASTC, block, f"ASTC {block} {quality} {packing}", res.bits_per_texel, int(man["block_bytes"]),
                   files, res.reused, details, decode)


def nearest_setting(settings: list[Setting], codec: str, bpp: float) -> Setting | None:
    """The setting of a codec whose measured rate is nearest `bpp` (in log rate)."""
    cands = [s for s in settings if s.codec == codec]
    return min(cands, key=lambda s: abs(math.log(s.bits_per_texel / bpp)), default=None)


# ------------------------------------------------------------------------------------------ the run


class _Progress:
    """Rich progress on stderr: one bar over all encodes, one for the fit in progress."""

    def __init__(self, total: int, enabled: bool = True):
        self.progress = None
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

        self.progress = Progress(TextColumn("{task.description:<34}"), BarColumn(), TaskProgressColumn(),
                                 TextColumn("{task.fields[detail]}"), TimeElapsedColumn(),
                                 console=Console(stderr=True), transient=False)
        self.overall = self.progress.add_task("evaluating", total=total, detail="")
        self.fit = self.progress.add_task("fit", total=100, detail="", visible=False)

    def __enter__(self):
        if self.progress:
            self.progress.start()
        return self

    def __exit__(self, *exc):
        if self.progress:
            self.progress.stop()

    def step(self, description: str, advance: int = 0) -> None:
        if self.progress:
            self.progress.update(self.overall, description=description, advance=advance)

    def done(self, description: str, line: str) -> None:
        """One unit done: advance the bar and print a line (above the bars on a terminal, as a log otherwise)."""
        if self.progress:
            self.progress.update(self.overall, description=description, advance=1)
            self.progress.console.print(line, highlight=False, soft_wrap=True)

    def fit_callback(self, label: str):
        if not self.progress:
            return None
        self.progress.reset(self.fit, total=100, visible=True, description=f"  fit {label}", detail="")

        def cb(p) -> None:
            self.progress.update(self.fit, completed=round(100 * p.fraction),
                                 detail=f"step {p.step}, PSNR {p.psnr:.2f} dB ({p.phase})")

        return cb

    def fit_done(self) -> None:
        if self.progress:
            self.progress.update(self.fit, visible=False)


def load_materials(paths: Sequence[str | Path], crop: int | None) -> list[tuple[Material, Path, list[int] | None]]:
    loaded = []
    for p in paths:
        material = load_material(p)
        window = None
        if crop:
            cw, ch = min(crop, material.width), min(crop, material.height)
            window = [(material.width - cw) // 2, (material.height - ch) // 2, cw, ch]
            material = material.crop(*window)
        loaded.append((material, Path(p), window))
    return loaded


def evaluate(paths: Sequence[str | Path], opts: EvalOptions, command: str | None = None,
             progress: bool = True) -> dict[str, Any]:
    """Run the whole evaluation and write the report folder; returns the report (as in report.json)."""
    if not paths:
        raise EvalError("give at least one material (a folder of maps or a .glb/.gltf)")
    t_start = time.perf_counter()
    out = opts.out
    prepare_out(out)  # from here on, a failure leaves no report.md / report.json behind
    materials = load_materials(paths, opts.crop)
    from .codec import describe_device
    from .fit import pick_device

    device = describe_device(pick_device(opts.device))
    names: dict[str, int] = {}
    report: dict[str, Any] = {
        "format": REPORT_FORMAT, "version": REPORT_VERSION,
        "created": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "command": command or shlex.join(["python", "-m", "models.evaluate", *sys.argv[1:]]),
        # "quality": the anchor curve's astcenc preset, as when there was one; "qualities" x "packings": the curves
        "settings": jsonable({**{k: v for k, v in dataclasses.asdict(opts).items() if k != "out"},
                               "quality": opts.qualities[0] if opts.qualities else None}),
        "environment": {**_versions(), "platform": platform.platform(), "device": device},
        "materials": [],
    }
    total = len(materials) * (len(opts.blocks) * len(astc_curves(opts)) + len(opts.presets) + 1)
    with _Progress(total, progress) as prog:
        for material, source, window in materials:
            base = slug(material.name)
            names[base] = names.get(base, 0) + 1
            if names[base] > 1:
                base = f"{base}_{names[base]}"
            report["materials"].append(_evaluate_material(material, source, window, base, opts, prog))
    report["wall_seconds"] = round(time.perf_counter() - t_start, 1)
    report = jsonable(report)
    write_file(out / "report.json", (json.dumps(report, indent=1, allow_nan=False) + "\n").encode())
    write_file(out / "report.md", render_markdown(report).encode())
    return report


def _evaluate_material(material: Material, source: Path, window, base: str, opts: EvalOptions,
                       prog: _Progress) -> dict[str, Any]:
    out = opts.out
    fingerprint = astc.material_fingerprint(material)
    ref = material.mip_chain()
    layout = material.layout()
    settings: list[Setting] = []
    curves = astc_curves(opts)
    for quality, packing in curves:
        for block in opts.blocks:
            prog.step(f"{material.name}: ASTC {block} {quality} {packing}")
            folder = out / "astc" / base / astc.folder_name(block, quality, packing)
            s = run_astc(material, fingerprint, block, quality, packing, folder)
            s.quality = measure(s.decode, ref, layout)
            settings.append(s)
            prog.done(f"{material.name}: ASTC {block} {quality} {packing}", _done_line(material.name, s))
    for preset in opts.presets:
        prog.step(f"{material.name}: neural {preset}")
        path = out / "ngtc" / f"{base}_{preset}.ngtc"
        try:
            s = run_neural(material, fingerprint, preset, opts, path, prog.fit_callback(preset))
        finally:
            prog.fit_done()
        s.quality = measure(s.decode, ref, layout)
        settings.append(s)
        prog.done(f"{material.name}: neural {preset}", _done_line(material.name, s))
    prog.step(f"{material.name}: figures")
    mips = min(len(ref), REPORT_MIPS)
    neural = [s for s in settings if s.codec == NEURAL]
    curve_reports = []
    for quality, packing in curves:
        label = curve_label(quality, packing)
        members = [s for s in settings if curve_of(s) == label]
        bds = []
        for k in range(mips):
            bds.append({"mip": k, **bd_summary([(s.bits_per_texel, s.quality["psnr"][k]) for s in neural],
                                               [(s.bits_per_texel, s.quality["psnr"][k]) for s in members])})
        secs = [s.details.get("encode_seconds") for s in members]
        curve_reports.append({
            "curve": label, "quality": quality, "packing": packing, "settings": [s.name for s in members],
            "textures": len(members[0].details["textures"]) if members else 0,
            "encode_seconds": round(sum(secs), 3) if secs and None not in secs else None,
            "folders": [astc.folder_name(b, quality, packing) for b in opts.blocks], "bd": bds})
    rd_name = f"rd_{base}.png"
    rd_figure(material.name, settings, curve_reports, len(ref), out / rd_name)
    compares = []
    anchor = [s for s in settings if curve_of(s) == curve_reports[0]["curve"]] if curve_reports else []
    a, n = nearest_setting(anchor, ASTC, opts.compare_bpp), nearest_setting(settings, NEURAL, opts.compare_bpp)
    if a and n:
        for k in opts.compare_mips:
            if k >= len(ref):
                continue
            da, dn = a.decode(k), n.decode(k)
            for info in layout:
                if info.constant is None:
                    path = out / f"compare_{base}_{slug(info.name)}_mip{k}.png"
                    compares.append(compare_figure(material, ref[k], info, k, a, n, da, dn, path))
    prog.done(f"{material.name}: done", f"{material.name}: wrote {rd_name} and {len(compares)} compare images")
    rel = lambda p: os.path.relpath(p, out)  # noqa: E731
    return {
        "name": material.name, "id": base, "source": str(source), "crop": window,
        "size": [material.width, material.height], "mips": len(ref), "channels": material.channels,
        "maps": layout_to_builtins(layout), "fingerprint": fingerprint,
        "settings": [{"codec": s.codec, "setting": s.name, "label": s.label, "bits_per_texel": s.bits_per_texel,
                      "stored_bytes": s.stored_bytes, "reused": s.reused,
                      "files": [rel(f) for f in s.files], **s.details, **s.quality,
                      **({"folder": rel(s.details["folder"])} if "folder" in s.details else {})} for s in settings],
        # "bd": neural against the anchor curve (the first quality and packing), as before there were several;
        # "astc_curves": every ASTC curve with its own BD figures per mip
        "bd": curve_reports[0]["bd"] if curve_reports else [],
        "bd_anchor": curve_reports[0]["curve"] if curve_reports else None,
        "astc_curves": curve_reports,
        "rd_plot": rd_name, "compare_bpp": opts.compare_bpp, "compare": compares,
    }


def _done_line(material: str, s: Setting) -> str:
    if s.reused:
        how = "reused"
    elif s.codec == NEURAL:
        how = f"{s.details['steps']} steps in {s.details['train_seconds']} s"
    else:
        how = f"encoded in {s.details['encode_seconds']} s"
    psnrs = " ".join(f"{v:.2f}" for v in s.quality["psnr"][:REPORT_MIPS])
    return f"{material}: {s.label}: {s.bits_per_texel:.3f} bpp, PSNR mips 0-4 {psnrs} dB ({how})"


# ------------------------------------------------------------------------------------------ entry point


def run_cli(paths: Sequence[str | Path], command: str | None = None, **options: Any) -> dict[str, Any]:
    """What `ngtc eval` and `python -m models.evaluate` do: options, the run, a summary on stdout."""
    from rich.console import Console

    opts = make_options(**options)
    report = evaluate(paths, opts, command)
    console = Console(width=None if sys.stdout.isatty() else 140)
    console.print(summary_table(report))
    console.print(f"wrote {opts.out / 'report.md'} and {opts.out / 'report.json'}")
    return report


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m models.evaluate", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", help="material folders or .glb/.gltf files")
    p.add_argument("--out", type=Path, default=Path("report"), help="report folder (default report/)")
    p.add_argument("--quick", action="store_true", help="tests: 64 px crop, bpp2.4,bpp12 at 60 steps, 6x6,12x12")
    p.add_argument("--presets", default=None, help=f"neural presets (default {','.join(DEFAULT_PRESETS)})")
    p.add_argument("--blocks", default=None, help=f"ASTC block sizes (default {','.join(DEFAULT_BLOCKS)})")
    p.add_argument("--quality", default=None, help="astcenc presets, comma-separated, one ASTC curve each "
                   f"(default {','.join(DEFAULT_QUALITIES)}; --quick: medium): {', '.join(astc.PRESETS)}")
    p.add_argument("--astc-packing", default=None, help="compact, fewest or both: one ASTC curve each (default both; "
                   "--quick: compact)")
    p.add_argument("--method", default="grids", help="neural fitting method (grids, encoder+refine, encoder)")
    p.add_argument("--seconds", type=float, default=None,
                   help="neural training budget per preset (default 300; --quick: 60 steps unless given)")
    p.add_argument("--steps", type=int, default=None, help="step budget instead of seconds (bit-exact)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--crop", type=int, default=None, help="evaluate a centred crop of this many texels a side")
    p.add_argument("--compare-bpp", type=float, default=2.4, help="rate of the side-by-side images (default 2.4)")
    p.add_argument("--compare-mips", default="0", help="mips of the side-by-side images (default 0)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    return p.parse_args(argv)


def is_user_error(exc: BaseException) -> bool:
    """Errors that are one line for the user (bad option, material, file, encoder), not a bug."""
    from .ngtc_file import NgtcError

    return isinstance(exc, EvalError | MaterialError | NgtcError | ValueError)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    options = {k: v for k, v in vars(args).items() if k != "paths"}
    try:
        run_cli(args.paths, shlex.join(["python", "-m", "models.evaluate", *(sys.argv[1:] if argv is None else argv)]),
                **options)
    except Exception as exc:
        if not is_user_error(exc):
            raise
        print(f"ngtc eval: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ngtc eval: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
