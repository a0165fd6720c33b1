"""Material texture sets on the GPU: reference, ASTC and neural, all sampled the same way by the shaders.

A `TextureSet` is up to 8 RGBA textures (full mip chains, repeat, trilinear) plus, for every logical
channel the shader knows (`SLOTS`: basecolor r g b, normal x y, roughness, ...), where it lives: a texture
index and a component, or a constant. `shaders/material.glsl` samples every texture once and picks the
channels through that table, so reference, ASTC and neural materials go through one code path:

- reference: `Material.mip_chain()` packed 4 channels per RGBA8 texture, every level uploaded with its
  own data (glTexImage2D per level; no glGenerateMipmap: the reference mips are the codec's reference);
- ASTC: the `.astc` files of every texture and mip uploaded as they are (glCompressedTexImage2D), read
  back through the packing plan the folder's manifest names (`models.astc.manifest_plan`: compact, e.g.
  normal X = R, Y = A, or fewest, e.g. roughness in the color texture's A);
- neural, decoded on load: `viewer.neural_gl.decode_to_textures` (the GLSL decoder fills RGBA8 chains);
- neural, on sample: no textures; the fragment shader runs `ngtc_decode` per pixel (`NeuralGL` bound);
- neural, on feedback: a tile cache filled by the decoder where the view needs it (`viewer.feedback.TileCache`),
  the textures its always-resident last mips.

Texture row 0 is v = 0 (numpy order, as the neural decoder and ASTC files have it); the vertex shader
flips mesh UVs (v = 0 at the image bottom) into that convention.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import moderngl
import numpy as np

from models import astc

from .feedback import TileCache
from .gl_upload import chain_bytes, upload_astc_chain, upload_rgba8_chain
from .modes import TRANSCODE_PREFIX
from .neural_gl import decode_to_textures, upload_ngtc

SLOTS: tuple[tuple[str, int], ...] = (
    ("basecolor", 0), ("basecolor", 1), ("basecolor", 2), ("normal", 0), ("normal", 1), ("roughness", 0),
    ("metallic", 0), ("ao", 0), ("height", 0), ("opacity", 0), ("emissive", 0), ("emissive", 1),
    ("emissive", 2), ("specular", 0),
)
SLOT_INDEX = {s: i for i, s in enumerate(SLOTS)}
# Values of absent maps (basecolor sRGB-encoded as stored; normal 0.5, 0.5 is the flat normal).
DEFAULTS = {"basecolor": (0.8, 0.8, 0.8), "normal": (0.5, 0.5), "roughness": (0.5,), "metallic": (0.0,),
            "ao": (1.0,), "height": (0.5,), "opacity": (1.0,), "emissive": (0.0, 0.0, 0.0), "specular": (0.5,)}
MAX_TEXTURES = 8  # sampler units 0..7 (layout binding in material.glsl)
ON_SAMPLE = ("trilinear", "stochastic")  # TextureSet.sampling that runs the neural decoder per pixel

ASTC_EXTENSION = "GL_KHR_texture_compression_astc_ldr"
ASTC_VIEW_PRESET = "medium"  # of an `ngtc eval` folder's several astcenc presets, the one shown first


class TextureSetError(ValueError):
    """A texture set that cannot be built (one line)."""


# ------------------------------------------------------------------------------------------- texture sets


@dataclass(eq=False)
class TextureSet:
    """What the shader needs to sample one material representation (see the module docstring)."""

    mode: str  # reference | astc-<block> | neural | neural-trilinear | neural-stochastic
    label: str
    width: int
    height: int
    mips: int
    textures: list[moderngl.Texture]
    sources: np.ndarray  # (len(SLOTS), 2) int32: texture index (-1: constant), component
    constants: np.ndarray  # (len(SLOTS),) float32
    maps: tuple[str, ...]  # maps of the material (textured or constant)
    gpu_bytes: int
    bits_per_texel: float | None = None
    psnr: list[float] | None = None  # per mip, all channels, against the reference chain
    notes: list[str] = field(default_factory=list)
    neural: Any = None  # viewer.neural_gl.NeuralGL for on-sample decoding
    sampling: str = "textures"  # textures | trilinear | stochastic | accumulated
    owns_neural: bool = False
    loss: Any = None  # a transcoded set's viewer.transcode.Loss: PSNR of the plain decode and of the transcoding
    feedback: Any = None  # sampling "feedback": its viewer.feedback.TileCache (owns `textures`, the tail)

    @property
    def opaque(self) -> bool:
        """No texel is cut out (pbr.frag discards opacity < 0.5): opacity absent or a constant of 0.5 or more."""
        slot = SLOT_INDEX[("opacity", 0)]
        return int(self.sources[slot][0]) < 0 and float(self.constants[slot]) >= 0.5

    @property
    def defines(self) -> dict[str, object]:
        """Program variant: the neural decoder's #defines when sampling on the fly; MAT_ACCUMULATED for the mean
        of the texels picked (`as_accumulated`)."""
        if self.sampling == "textures":
            return {}
        if self.sampling == "accumulated":
            return {"MAT_ACCUMULATED": 1}
        if self.sampling == "feedback":
            return {**self.feedback.defines, "FB_EARLY": int(self.opaque)}
        return {**self.neural.defines, "NGTC_ON_SAMPLE": 1, "NGTC_STOCHASTIC": int(self.sampling == "stochastic")}

    def as_accumulated(self, textures: list[moderngl.Texture]) -> TextureSet:
        """This on-sample set's channels read from screen-sized `textures`, one value per pixel: the mean of the
        texels stochastic filtering picked there (`viewer.accumulation`); same slots (texture i: channels 4i..)."""
        return replace(self, textures=textures, sampling="accumulated", neural=None, owns_neural=False)

    def bind(self, program: moderngl.Program) -> None:
        for i, tex in enumerate(self.textures):
            tex.use(location=i)
        if self.neural is not None and self.sampling in ON_SAMPLE:
            self.neural.bind(program)
        if self.feedback is not None:
            self.feedback.bind(program)
        _set(program, "mat_tex_count", len(self.textures))
        _write(program, "mat_src", self.sources.astype(np.int32))
        _write(program, "mat_const", self.constants.astype(np.float32))
        _set(program, "mat_size", (float(self.width), float(self.height)))
        _set(program, "mat_mips", self.mips)

    def release(self) -> None:
        if self.feedback is not None:
            self.feedback.release()
            self.feedback = None
        for tex in self.textures:
            tex.release()
        self.textures = []
        if self.owns_neural and self.neural is not None:
            self.neural.release()
            self.neural = None


def _set(program: moderngl.Program, name: str, value) -> None:
    if name in program:
        program[name].value = value


def _write(program: moderngl.Program, name: str, data: np.ndarray) -> None:
    if name in program:
        program[name].write(np.ascontiguousarray(data).tobytes())


def _slot_table(maps: Sequence[Any], locate) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """sources/constants for `maps` (MapInfo objects or dicts); locate(map, channel) -> (texture, comp)."""
    sources = np.full((len(SLOTS), 2), -1, np.int32)
    constants = np.zeros(len(SLOTS), np.float32)
    for (name, c), i in SLOT_INDEX.items():
        constants[i] = DEFAULTS[name][min(c, len(DEFAULTS[name]) - 1)]
    names = []
    for m in maps:
        get = m.get if isinstance(m, dict) else lambda k, m=m: getattr(m, k)
        name, channels, constant = get("name"), int(get("channels")), get("constant")
        names.append(name)
        for c in range(channels):
            if (name, c) not in SLOT_INDEX:
                continue
            i = SLOT_INDEX[(name, c)]
            if constant is not None:
                constants[i] = float(constant[c])
            else:
                sources[i] = locate(m, c)
    return sources, constants, tuple(names)


def _packed_locator(m: Any, c: int) -> tuple[int, int]:
    offset = m["offset"] if isinstance(m, dict) else m.offset
    return (offset + c) // 4, (offset + c) % 4


def reference_set(ctx: moderngl.Context, material) -> TextureSet:
    """`Material.mip_chain()` as RGBA8 chains, 4 channels per texture, each level uploaded explicitly."""
    chain = material.mip_chain()
    channels = material.channels
    groups = -(-channels // 4)
    if groups > MAX_TEXTURES:
        raise TextureSetError(f"{material.name}: {channels} channels need more than {MAX_TEXTURES} textures")
    textures = []
    for g in range(groups):
        levels = []
        for level in chain:
            rgba = np.zeros((*level.shape[:2], 4), np.uint8)
            part = level[..., 4 * g : 4 * g + 4]
            rgba[..., : part.shape[-1]] = astc.to_unorm8(part)
            levels.append(rgba)
        textures.append(upload_rgba8_chain(ctx, levels, f"{material.name} reference"))
    sources, constants, names = _slot_table(material.maps, _packed_locator)
    source_bits = sum(m.channels * m.bit_depth for m in material.maps if m.constant is None)
    chain_texels = chain_bytes(material.width, material.height, len(chain), 1)
    return TextureSet("reference", "reference", material.width, material.height, len(chain), textures, sources,
                      constants, names, chain_bytes(material.width, material.height, len(chain)) * groups,
                      source_bits * chain_texels / (material.width * material.height), None,
                      [f"{source_bits} bits per texel at mip 0 as stored (uncompressed)"])


def astc_set(ctx: moderngl.Context, out_dir: str | Path, maps: Sequence[Any]) -> TextureSet:
    """The `.astc` files of an ASTC output folder (`models.astc` manifest) as GPU textures.

    With GL ASTC support the blocks are uploaded compressed; without it they are decoded on the CPU to RGBA8
    (same values, noted in the set's notes)."""
    out_dir = Path(out_dir)
    manifest = astc.load_manifest(out_dir)
    try:  # the plan (compact, fewest) the manifest names, checked against its textures and the material
        plan = astc.manifest_plan(manifest, maps, out_dir)
    except astc.AstcError as exc:
        raise TextureSetError(f"{exc} (ASTC packing of the material)") from None
    if len(plan) > MAX_TEXTURES:
        raise TextureSetError(f"{out_dir}: {len(plan)} ASTC textures, the viewer binds at most {MAX_TEXTURES}")
    block = astc.parse_block(manifest["block"])
    native = ASTC_EXTENSION in ctx.extensions
    textures = []
    try:
        for spec, tex in zip(plan, manifest["textures"], strict=True):
            files = [out_dir / rec["file"] for rec in tex["files"]]
            what = f"{out_dir.name}/{spec.name}"
            if native:
                textures.append(upload_astc_chain(ctx, [astc.read_astc(f) for f in files], what))
            else:
                levels = [astc.to_unorm8(astc.read_decoded(f, spec.profile)) for f in files]
                textures.append(upload_rgba8_chain(ctx, levels, what))
    except Exception:
        for tex in textures:
            tex.release()
        raise
    where = {(m, c): (i, "rgba".index(s)) for i, spec in enumerate(plan)
             for (m, c), s in zip(spec.sources, spec.read, strict=True)}
    sources, constants, names = _slot_table(maps, lambda m, c: where[(_name(m), c)])
    name = astc.block_name(block)
    w, h = int(manifest["width"]), int(manifest["height"])
    notes = [f"{len(plan)} textures ({', '.join(s.name for s in plan)}), preset {manifest.get('preset')}, "
             f"{manifest.get('plan', astc.LEGACY_PACKING)} packing"]
    if not native:
        notes.append("no GL ASTC support: blocks decoded on the CPU to RGBA8")
    gpu = int(manifest["block_bytes"]) if native else sum(chain_bytes(w, h, int(manifest["mips"])) for _ in plan)
    return TextureSet(f"astc-{name}", f"ASTC {name}", w, h, int(manifest["mips"]), textures, sources, constants,
                      names, gpu, astc.astc_bits_per_texel(manifest), None, notes)


def transcoded_set(ctx: moderngl.Context, out_dir: Path, neural: TextureSet, block: str, loss: Any) -> TextureSet:
    """The `.ngtc` of a neural set decoded on load and transcoded to ASTC at `block` (`viewer.transcode`; `loss`:
    its `Loss`): the ASTC folder uploaded as the ASTC modes upload theirs. Bits per texel are the `.ngtc`'s (what
    is stored), the bytes on the GPU the ASTC textures'."""
    ct = neural.neural.compressed
    tset = astc_set(ctx, out_dir, ct.layout)
    tset.mode, tset.label = f"{TRANSCODE_PREFIX}{block}", f"neural {ct.info.preset or '?'} -> ASTC {block} (transcoded)"
    tset.notes = [f"the .ngtc ({neural.bits_per_texel:.2f} bpp) decoded on load, encoded by astcenc; on the GPU "
                  f"{tset.bits_per_texel:.2f} bpp of ASTC {block}", loss.summary(), *tset.notes]
    tset.bits_per_texel, tset.psnr, tset.loss = neural.bits_per_texel, loss.transcoded, loss
    return tset


def _name(m: Any) -> str:
    return m["name"] if isinstance(m, dict) else m.name


def neural_sets(ctx: moderngl.Context, source, cache_mib: float | None = None) -> list[TextureSet]:
    """A `.ngtc` (path or CompressedTexture) as four sets sharing one upload: decoded on load (RGBA8 chains
    filled by the GLSL decoder), decoded per pixel with trilinear or stochastic mip selection, and decoded on
    feedback into a tile cache of `cache_mib` (None: `viewer.feedback.default_cache_mib`, from the material)."""
    ngl = upload_ngtc(ctx, source)
    try:
        textures = decode_to_textures(ctx, ngl)
        cache = TileCache(ctx, ngl, cache_mib)
    except Exception:
        ngl.release()
        raise
    ct = ngl.compressed
    sources, constants, names = _slot_table(ct.layout, _packed_locator)
    stored = ct.info.stored_bytes
    bpp = stored * 8 / (ct.width * ct.height) if stored else ct.info.stored_bits_per_texel
    psnr = ct.info.quality.psnr
    common = dict(width=ct.width, height=ct.height, mips=ct.mips, sources=sources, constants=constants, maps=names,
                  bits_per_texel=bpp, psnr=list(psnr) if psnr else None, neural=ngl)
    preset = ct.info.preset or "?"
    decoded = chain_bytes(ct.width, ct.height, ct.mips) * len(textures)
    return [
        TextureSet("neural", f"neural {preset} (decoded on load)", textures=textures, gpu_bytes=decoded + ngl.gpu_bytes,
                   notes=[f"preset {preset}; RGBA8 chains {decoded:,} B + grids/weights {ngl.gpu_bytes:,} B"],
                   owns_neural=True, **common),
        TextureSet("neural-trilinear", f"neural {preset} (on sample, trilinear)", textures=[],
                   gpu_bytes=ngl.gpu_bytes, notes=["decoded per pixel at 2 mips, blended"], sampling="trilinear",
                   **common),
        TextureSet("neural-stochastic", f"neural {preset} (on sample, stochastic)", textures=[],
                   gpu_bytes=ngl.gpu_bytes, notes=["decoded per pixel at 1 mip picked at random"],
                   sampling="stochastic", **common),
        TextureSet("neural-feedback", f"neural {preset} (on feedback, tile cache)", textures=cache.tail,
                   gpu_bytes=ngl.gpu_bytes + cache.gpu_bytes, sampling="feedback", feedback=cache,
                   notes=[f"{cache.slots.count} cache slots of {cache.layout.pages} tiles ({cache.layout.tile}^2 "
                          f"texels); mips {cache.layout.tail}+ resident; cache, page table and tail "
                          f"{cache.gpu_bytes:,} B + grids/weights {ngl.gpu_bytes:,} B"], **common),
    ]


# ------------------------------------------------------------------------------------------- finding files


def cache_root() -> Path:
    """Where on-demand ASTC encodings go: $NGTC_CACHE, else $XDG_CACHE_HOME/ngtc, else ~/.cache/ngtc."""
    if os.environ.get("NGTC_CACHE"):
        return Path(os.environ["NGTC_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ngtc"


def _astc_rank(preset: object, plan: object) -> tuple[bool, bool]:
    """Which of several ASTC encodings of one block size the viewer shows: astcenc medium with the compact
    packing first (the viewer's own encodings), then other presets, then other packings."""
    return (preset != ASTC_VIEW_PRESET, (plan or astc.LEGACY_PACKING) != astc.DEFAULT_PACKING)


def find_astc_dir(material, block: str, roots: Sequence[Path], fingerprint: str) -> Path | None:
    """An existing ASTC folder (e.g. from `ngtc eval`, under report/astc/) for exactly this material; of several
    (astcenc presets, packings) the one `_astc_rank` puts first."""
    found: list[tuple[tuple[bool, bool], int, Path]] = []
    seen = set()
    for root in roots:
        for pattern in ("report/astc/**/manifest.json", "astc/**/manifest.json"):
            for manifest_path in sorted(Path(root).glob(pattern))[:200]:
                if manifest_path in seen:
                    continue
                seen.add(manifest_path)
                try:
                    manifest = json.loads(manifest_path.read_text())
                except (OSError, ValueError):
                    continue
                if (manifest.get("format") == astc.MANIFEST_FORMAT and manifest.get("block") == block
                        and manifest.get("fingerprint") == fingerprint
                        and manifest.get("packing_version") == astc.PACKING_VERSION):
                    found.append((_astc_rank(manifest.get("preset"), manifest.get("plan")), len(found),
                                  manifest_path.parent))
    return min(found)[2] if found else None


def find_ngtc_presets(roots: Sequence[Path], fingerprint: str) -> dict[str, Path]:
    """The `.ngtc` files `ngtc eval` made for exactly this material (report/ngtc/, matched by the fingerprint in
    each file's `.json` sidecar), by preset name ("bpp1.2"; a second file of one preset: "bpp1.2-2")."""
    found: dict[str, Path] = {}
    seen = set()
    for root in roots:
        for pattern in ("report/ngtc/*.ngtc", "ngtc/*.ngtc"):
            for path in sorted(Path(root).glob(pattern))[:200]:
                real = path.resolve()
                if real in seen:
                    continue
                seen.add(real)
                try:
                    key = json.loads(path.with_name(path.name + ".json").read_text())["key"]
                    preset = str(key["fit"]["preset"]["name"]) if key["fingerprint"] == fingerprint else None
                except (OSError, ValueError, KeyError, TypeError):
                    continue
                if preset:
                    name = preset.replace("@", "-")
                    n = 1
                    while name in found:
                        n += 1
                        name = f"{preset}-{n}"
                    found[name] = real
    return found


def report_psnr(path: Path, fingerprint: str | None, ngtc: Path | None = None) -> dict[str, list[float]]:
    """PSNR per mip (all channels) by mode from an `ngtc eval` report.json, for this material only (matched by
    fingerprint): "astc-<block>" for its ASTC settings (of several presets and packings of one block size, the
    one `find_astc_dir` would pick), "neural" for the setting whose file is `ngtc`."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    found: dict[str, list[float]] = {}
    ranks: dict[str, tuple[bool, bool]] = {}
    target = Path(ngtc).resolve() if ngtc else None
    for material in doc.get("materials", []) if isinstance(doc, dict) else []:
        if not isinstance(material, dict) or material.get("fingerprint") != fingerprint:
            continue
        for setting in material.get("settings", []):
            psnr = setting.get("psnr")
            if not isinstance(psnr, list) or not psnr:
                continue
            values = [math.inf if v is None else float(v) for v in psnr]
            if setting.get("codec") == "astc":
                mode = f"astc-{setting.get('setting')}"
                rank = _astc_rank(setting.get("quality"), setting.get("packing"))
                if mode not in found or rank < ranks[mode]:
                    found[mode], ranks[mode] = values, rank
            elif setting.get("codec") == "neural" and target is not None and any(
                    (Path(path).parent / f).resolve() == target for f in setting.get("files", [])):
                found["neural"] = values
    return found


def psnr_per_mip(chain: Sequence[np.ndarray], reference: Sequence[np.ndarray]) -> list[float]:
    out = []
    for a, b in zip(chain, reference, strict=False):
        mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
        out.append(math.inf if mse == 0 else 10 * math.log10(1 / mse))
    return out
