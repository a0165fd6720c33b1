"""Warm-start training data: game material sets from Debian's game-data packages, as folders of PNG maps.

Downloads the packages with `apt-get download` into CACHE (nothing is installed), unpacks them with
`dpkg-deb -x`, reads the game archives inside (.pk3 / .wz / .zip) with zipfile, pairs each diffuse texture
with its normal map (and gloss / specular / height maps when there are any), and writes every pair as
OUT/<package>/<set>/ with maps named the way models/material.py recognises them:

    basecolor.png  RGB, sRGB as stored (the diffuse's alpha is dropped)
    normal.png     RGB, tangent space, OpenGL convention (Y up: DirectX-style sources get G flipped)
    roughness.png  L, 1 - gloss (Nexuiz `_gloss`; with --gloss-as specular it is written as specular.png)
    specular.png   L or RGB, the engine's specular intensity/colour map (Red Eclipse `_s`, 0 A.D. `_spec`)
    height.png     L, a separate height map (`_bump`, Red Eclipse `z`) or the normal map's alpha channel
                   when that alpha is measurably a height field (see below)
    sources.json   package, version, licence and copyright of every source file, the original paths,
                   what was converted and why

Every map of a set is resampled to one size: the largest of its sources, capped to --max-size (box filter
when shrinking, normals renormalised). How pairs are found, per package:

    nexuiz-data, nexuiz-textures  file names in data.pk3 / textures.pk3: foo.tga + foo_norm.tga
                                  [+ foo_gloss.* + foo_bump.*]
    redeclipse-data               the engine's own slot definitions in data/**/*.cfg: `texture c|0` + `texture n`
                                  [+ s, z], and models' `*skin` + `*bumpmap` [+ the mask's red channel = spec]
    warzone2100-data              file names in base.wz / mp.wz: foo.png + foo_nm.png (none exist in 4.3.3)
    0ad-data                      `<texture name="baseTex|normTex|specTex">` in art/{actors,variants,terrains}
                                  XML and file names foo.png + foo_norm.png; all stored as *.cached.dds (BC1/BC3)

Normal-map convention (green = +Y up, OpenGL, or down, DirectX), decided per set and recorded in sources.json:
1. against a height field, when one is at hand (a height map, or the normal map's alpha): the correlation of R
   with -dh/dx says whether it is a height field of this normal map at all (>= 0.3), and the sign of the
   correlation of G with +dh/drow (rows top to bottom) says OpenGL (+) or DirectX (-);
2. else by integrability: the slopes a normal map implies are curl-free only when it is read in its own
   convention, so the reading whose mean |curl| is lower by a factor >= 1.25 wins;
3. else the package's default (the engine's convention).

    .venv/bin/python scripts/warmstart_data.py --cache .cache/warmstart/packages --out .cache/warmstart/sets
"""

from __future__ import annotations

import argparse
import fnmatch
import io
import json
import logging
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

log = logging.getLogger("warmstart")

DEFAULT_PACKAGES = ("nexuiz-data", "redeclipse-data", "warzone2100-data", "0ad-data")
IMAGE_EXTS = (".tga", ".png", ".jpg", ".jpeg", ".dds", ".webp", ".bmp")
HEIGHT_CORR = 0.3  # |corr(R, -dh/dx)| at least this: the field is a height field of this normal map
Y_CORR = 0.2  # |corr(G, +dh/drow)| at least this: the sign decides OpenGL / DirectX
MIN_ALPHA_RANGE = 16  # a normal-map alpha spanning fewer levels is not taken as a height candidate
CURL_RATIO = 1.25  # mean |curl| of the wrong reading over the right one, at least this: decided by integrability
CHECK_SIZE = 512  # the convention check runs on maps box-filtered to at most this size


# ----------------------------------------------------------------------------------------------- sources


class Tree:
    """The files of one package that hold textures: a folder, or a zip archive (.pk3, .wz, .zip) in it."""

    def __init__(self, label: str, folder: Path | None = None, archive: Path | None = None) -> None:
        self.label = label  # path inside the package, e.g. usr/share/games/nexuiz/data/data.pk3
        self.folder = folder
        self.zip = zipfile.ZipFile(archive) if archive is not None else None
        if self.zip is not None:
            self._names = [i.filename for i in self.zip.infolist() if not i.is_dir()]
        else:
            assert folder is not None
            self._names = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
        self._set = set(self._names)

    def names(self) -> list[str]:
        return self._names

    def exists(self, name: str) -> bool:
        return name in self._set

    def read(self, name: str) -> bytes:
        if self.zip is not None:
            return self.zip.read(name)
        assert self.folder is not None
        return (self.folder / name).read_bytes()

    def close(self) -> None:
        if self.zip is not None:
            self.zip.close()


@dataclass
class Candidate:
    """One material set to write: paths inside `tree`, and how they were paired."""

    tree: Tree
    basecolor: str
    normal: str
    gloss: str | None = None
    specular: str | None = None
    specular_channel: int | None = None  # a mask whose one channel is the specular map
    height: str | None = None
    pairing: str = "file name"


@dataclass(frozen=True)
class PackageSpec:
    name: str
    trees: tuple[str, ...]  # inside the unpacked package: zip archives (by suffix) or a folder
    finder: Callable[[list[Tree]], list[Candidate]]
    upstream: Callable[[Tree, str], str]  # path in a tree -> path in the upstream source (debian/copyright)
    normal_default: str  # "opengl" | "directx": when a set's convention cannot be measured


def _stem_key(name: str) -> str:
    """`a/b.png.cached.dds` -> `a/b`, `a/b.tga` -> `a/b` (0 A.D. ships its textures as cached DDS)."""
    if name.endswith(".cached.dds"):
        name = name[: -len(".cached.dds")]
    return str(PurePosixPath(name).with_suffix("")) if PurePosixPath(name).suffix.lower() in IMAGE_EXTS else name


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTS)


def _stem_index(tree: Tree) -> dict[str, str]:
    """Image stem -> file, lossless formats first when a stem has several."""
    rank = {".png": 0, ".tga": 1, ".dds": 2, ".bmp": 3, ".webp": 4, ".jpg": 5, ".jpeg": 5}
    index: dict[str, str] = {}
    for name in sorted((n for n in tree.names() if _is_image(n)), key=lambda n: rank.get(Path(n).suffix.lower(), 9)):
        index.setdefault(_stem_key(name), name)
    return index


def pair_by_name(
    tree: Tree, normal: tuple[str, ...], gloss: tuple[str, ...] = (), specular: tuple[str, ...] = (),
    height: tuple[str, ...] = (), under: str = "",
) -> list[Candidate]:
    """foo + foo<normal suffix> [+ foo<gloss suffix>, ...] in one folder of `tree`."""
    index = _stem_index(tree)
    out = []
    for stem, file in sorted(index.items()):
        if not stem.startswith(under):
            continue
        for suffix in normal:
            if stem.endswith(suffix) and (base := index.get(stem[: -len(suffix)])) is not None:
                root = stem[: -len(suffix)]

                def first(suffixes: tuple[str, ...], root: str = root) -> str | None:
                    return next((index[root + s] for s in suffixes if root + s in index), None)

                out.append(Candidate(tree, base, file, gloss=first(gloss), specular=first(specular),
                                     height=first(height)))
                break
    return out


# ----------------------------------------------------------------------------------------------- finders


def find_nexuiz(trees: list[Tree]) -> list[Candidate]:
    """DarkPlaces: foo + foo_norm (RGB normal, often height in alpha) + foo_gloss (specular intensity) + foo_bump."""
    return [c for t in trees for c in pair_by_name(t, ("_norm",), gloss=("_gloss",), height=("_bump",))]


def find_warzone(trees: list[Tree]) -> list[Candidate]:
    """Warzone 2100: page-N.png + page-N_nm.png [+ _sm specular, _hm height] (only placeholders in 4.3.3)."""
    return [c for t in trees for c in pair_by_name(t, ("_nm", "_norm", "_normal"), specular=("_sm", "_spec"),
                                                  height=("_hm",))]


_CUBE_TOKEN = re.compile(r'"([^"]*)"|(\S+)')
_CUBE_TEXTURE = re.compile(r"^\s*texture\s+\"?(\w+)\"?\s+(.*)$")
_CUBE_SKIN = re.compile(r"^\s*(?:md2|md3|md5|iqm|smd|obj)(skin|bumpmap)\s+(.*)$")
_CUBE_PREFIX = re.compile(r"^(?:<[^>]*>)+")


def _cube_args(rest: str) -> list[str]:
    rest = rest.split("//", 1)[0]
    return [a if a else b for a, b in _CUBE_TOKEN.findall(rest)]


def _cube_resolve(tree: Tree, raw: str, dirs: Iterable[str]) -> str | None:
    """A Cube-engine texture reference -> a file: `<dds>`-style prefixes dropped, tried under each dir."""
    path = _CUBE_PREFIX.sub("", raw).strip()
    if not path:
        return None
    for d in dirs:
        name = str(PurePosixPath(d, path)) if d else path
        parts: list[str] = []
        for part in name.split("/"):  # normalise "a/b/../c" by hand: the file may not exist
            if part == "..":
                if parts:
                    parts.pop()
            elif part not in ("", "."):
                parts.append(part)
        name = "/".join(parts)
        if tree.exists(name):
            return name
    return None


def _cube_slot(tree: Tree, slot: dict[str, str], cfg: str) -> list[Candidate]:
    if "c" in slot and "n" in slot:
        return [Candidate(tree, slot["c"], slot["n"], specular=slot.get("s"), height=slot.get("z"),
                          pairing=f"texture slot in {cfg}")]
    return []


def _cube_cfg(tree: Tree, cfg: str) -> list[Candidate]:
    """One Cube-engine .cfg: world texture slots (`texture c|0` then n, s, z) and model skins with bump maps."""
    here = str(PurePosixPath(cfg).parent)
    here = "" if here == "." else here
    out: list[Candidate] = []
    slot: dict[str, str] = {}
    skins: dict[str, tuple[str, str | None]] = {}
    bumps: dict[str, str] = {}
    for line in tree.read(cfg).decode("utf-8", "replace").splitlines():
        for statement in line.split(";"):
            if m := _CUBE_TEXTURE.match(statement):
                kind, args = m.group(1), _cube_args(m.group(2))
                file = _cube_resolve(tree, args[0], ("", here)) if args else None
                kind = "c" if kind == "0" else kind
                if kind == "c":
                    out += _cube_slot(tree, slot, cfg)
                    slot = {}
                if file is not None and kind in ("c", "n", "s", "z"):
                    slot[kind] = file
            elif m := _CUBE_SKIN.match(statement):
                args = _cube_args(m.group(2))
                first = _cube_resolve(tree, args[1], (here, "")) if len(args) >= 2 else None
                if first is None:
                    continue
                if m.group(1) == "skin":
                    skins[args[0]] = (first, _cube_resolve(tree, args[2], (here, "")) if len(args) > 2 else None)
                else:
                    bumps[args[0]] = first
    out += _cube_slot(tree, slot, cfg)
    for mesh, (skin, mask) in skins.items():
        normal = bumps.get(mesh, bumps.get("*"))
        if normal is not None:
            out.append(Candidate(tree, skin, normal, specular=mask, specular_channel=0 if mask else None,
                                 pairing=f"model skin + bumpmap in {cfg}"))
    return out


def find_redeclipse(trees: list[Tree]) -> list[Candidate]:
    """Red Eclipse (Cube 2 engine): texture slots and model skins as its own .cfg files define them."""
    return [c for tree in trees for cfg in tree.names() if cfg.endswith(".cfg") for c in _cube_cfg(tree, cfg)]


def find_0ad(trees: list[Tree]) -> list[Candidate]:
    """0 A.D.: baseTex + normTex [+ specTex] as actors, variants and terrains declare them, then by file name."""
    out: list[Candidate] = []
    for tree in trees:
        index = _stem_index(tree)
        roots = {"art/actors/": "art/textures/skins/", "art/variants/": "art/textures/skins/",
                 "art/terrains/": "art/textures/terrain/"}

        def resolve(ref: str, root: str, index: dict[str, str] = index) -> str | None:
            return index.get(_stem_key(root + ref.strip()))

        for xml in (n for n in tree.names() if n.endswith(".xml")):
            root = next((r for prefix, r in roots.items() if xml.startswith(prefix)), None)
            if root is None:
                continue
            try:
                doc = ET.fromstring(tree.read(xml))
            except ET.ParseError as exc:
                log.warning("%s: %s", xml, exc)
                continue
            for block in doc.iter("textures"):
                refs = {t.get("name", ""): t.get("file", "") for t in block.iter("texture")}
                if refs.get("baseTex") and refs.get("normTex"):
                    base, normal = resolve(refs["baseTex"], root), resolve(refs["normTex"], root)
                    if base is not None and normal is not None:
                        spec = resolve(refs["specTex"], root) if refs.get("specTex") else None
                        out.append(Candidate(tree, base, normal, specular=spec, pairing=f"textures in {xml}"))
        out.extend(pair_by_name(tree, ("_norm",), specular=("_spec",), under="art/textures/"))
    return out


def _upstream_0ad(tree: Tree, name: str) -> str:
    return f"binaries/data/mods/{PurePosixPath(tree.label).stem}/{name}"


def _upstream_warzone(tree: Tree, name: str) -> str:
    return f"data/{PurePosixPath(tree.label).stem}/{name}"


PACKAGES: dict[str, PackageSpec] = {
    spec.name: spec for spec in (
        PackageSpec("nexuiz-data", ("usr/share/games/nexuiz/data/data.pk3",), find_nexuiz, lambda t, n: n, "opengl"),
        PackageSpec("nexuiz-textures", ("usr/share/games/nexuiz/data/textures.pk3",), find_nexuiz,
                    lambda t, n: n, "opengl"),
        PackageSpec("redeclipse-data", ("usr/share/games/redeclipse/data",), find_redeclipse,
                    lambda t, n: f"data/{n}", "directx"),
        PackageSpec("warzone2100-data", ("usr/share/games/warzone2100/base.wz", "usr/share/games/warzone2100/mp.wz"),
                    find_warzone, _upstream_warzone, "opengl"),
        PackageSpec("0ad-data", ("usr/share/games/0ad/mods/public/public.zip", "usr/share/games/0ad/mods/mod/mod.zip"),
                    find_0ad, _upstream_0ad, "directx"),
    )
}


# ----------------------------------------------------------------------------------------------- licences


@dataclass
class Stanza:
    patterns: list[str]
    copyright: str
    license: str


@dataclass
class Licensing:
    """debian/copyright: DEP-5 stanzas (the last match wins), or one licence for the whole package."""

    stanzas: list[Stanza] = field(default_factory=list)
    whole: tuple[str, str] | None = None  # (licence, copyright) of a free-form copyright file

    @classmethod
    def read(cls, path: Path) -> Licensing:
        text = path.read_text(encoding="utf-8", errors="replace")
        if not text.startswith("Format:"):
            return cls(whole=_free_form_licence(text))
        stanzas = []
        for block in re.split(r"\n\s*\n", text):
            fields: dict[str, str] = {}
            key = ""
            for line in block.splitlines():
                if line[:1] in (" ", "\t") and key:
                    fields[key] += "\n" + line.strip()
                elif ":" in line:
                    key, _, value = line.partition(":")
                    fields[key.strip()] = value.strip()
            if "Files" in fields and "License" in fields:
                stanzas.append(Stanza(fields["Files"].split(), " ".join(fields.get("Copyright", "").split()),
                                      fields["License"].splitlines()[0].strip()))
        return cls(stanzas=stanzas)

    def lookup(self, upstream_path: str) -> tuple[str, str]:
        if self.whole is not None:
            return self.whole
        found = ("unknown", "")
        for stanza in self.stanzas:
            if any(fnmatch.fnmatchcase(upstream_path, p.replace("[", "[[]")) for p in stanza.patterns):
                found = (stanza.license, stanza.copyright)
        return found


def _free_form_licence(text: str) -> tuple[str, str]:
    flat = " ".join(text.split())
    holder = next((line.strip() for line in text.splitlines() if "©" in line or "Copyright" in line), "")
    m = re.search(r"GNU General Public License.{0,80}?version (\d)(.{0,60}any later version)?", flat)
    if m:
        return f"GPL-{m.group(1)}{'+' if m.group(2) else ''}", holder
    return "see copyright file", holder


# ----------------------------------------------------------------------------------------------- images


def _open(tree: Tree, name: str) -> Image.Image:
    im = Image.open(io.BytesIO(tree.read(name)))
    im.load()
    return im


def _fit(size: tuple[int, int], cap: int) -> tuple[int, int]:
    w, h = size
    scale = min(1.0, cap / max(w, h))
    return max(1, round(w * scale)), max(1, round(h * scale))


def _resize(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """float32 (H, W, C) -> (size[1], size[0], C): box filter when shrinking, bilinear when enlarging."""
    if (a.shape[1], a.shape[0]) == size:
        return a
    method = Image.Resampling.BOX if size[0] <= a.shape[1] and size[1] <= a.shape[0] else Image.Resampling.BILINEAR
    planes = [np.asarray(Image.fromarray(np.ascontiguousarray(a[..., c])).resize(size, method)) for c in
              range(a.shape[2])]
    return np.stack(planes, axis=-1)


def _float(im: Image.Image, mode: str) -> np.ndarray:
    a = np.asarray(im.convert(mode), dtype=np.float32) / 255
    return a[..., None] if a.ndim == 2 else a


def _gray(a: np.ndarray) -> tuple[np.ndarray, str]:
    """One channel of an RGB map: R when R == G == B (checked), else Rec. 709 luminance."""
    if a.shape[-1] == 1:
        return a, "single channel"
    if np.array_equal(a[..., 0], a[..., 1]) and np.array_equal(a[..., 0], a[..., 2]):
        return a[..., :1], "R (R == G == B)"
    return (a[..., :3] @ np.array([0.2126, 0.7152, 0.0722], np.float32))[..., None], "Rec. 709 luminance of RGB"


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 0 else 0.0


def normal_vs_height(normal: np.ndarray, height: np.ndarray) -> tuple[float, float]:
    """(corr(R, -dh/dx), corr(G, +dh/drow)) with rows top to bottom: + / + is OpenGL, + / - is DirectX."""
    size = _fit((normal.shape[1], normal.shape[0]), CHECK_SIZE)
    n, h = _resize(normal, size), _resize(height, size)[..., 0]
    d_row, d_col = np.gradient(h)
    return _corr(n[..., 0], -d_col), _corr(n[..., 1], d_row)


def curl_residuals(normal: np.ndarray) -> tuple[float, float]:
    """Mean |curl| of the slope field of a normal map read as OpenGL and as DirectX (rows top to bottom).

    The slopes of a real surface, (dh/dcol, dh/drow) = (-x/z, +-y/z), are a gradient field: curl-free. Read in
    the wrong convention, dh/drow changes sign and the field is no longer curl-free.
    """
    size = _fit((normal.shape[1], normal.shape[0]), CHECK_SIZE)
    v = _resize(normal, size) * 2 - 1
    z = np.maximum(v[..., 2], 0.2)  # steeper than ~78 degrees: clamped, not exploded
    a, b = -v[..., 0] / z, v[..., 1] / z  # dh/dcol, and dh/drow if the map is OpenGL
    da_drow = (a[1:, :-1] + a[1:, 1:] - a[:-1, :-1] - a[:-1, 1:]) / 2  # both at the centre of each 2x2 cell
    db_dcol = (b[:-1, 1:] + b[1:, 1:] - b[:-1, :-1] - b[1:, :-1]) / 2
    return float(np.abs(da_drow - db_dcol).mean()), float(np.abs(da_drow + db_dcol).mean())


def _png(a: np.ndarray, path: Path) -> None:
    u8 = np.clip(np.rint(a * 255), 0, 255).astype(np.uint8)
    Image.fromarray(u8[..., 0] if u8.shape[-1] == 1 else u8).save(path, compress_level=6)


class SkipSet(Exception):
    """One-line reason why a candidate is not written."""


def build_set(cand: Candidate, dest: Path, cap: int, min_size: int, gloss_as: str, y_default: str,
              licence: Callable[[str], tuple[str, str]]) -> dict:
    """Write one material set under `dest`; return its sources.json record."""
    tree = cand.tree
    try:
        images = {"basecolor": _open(tree, cand.basecolor), "normal": _open(tree, cand.normal)}
        for slot, name in (("gloss", cand.gloss), ("specular", cand.specular), ("height", cand.height)):
            if name is not None:
                images[slot] = _open(tree, name)
    except (OSError, ValueError, SyntaxError, zipfile.BadZipFile) as exc:
        raise SkipSet(f"unreadable image: {' '.join(str(exc).split())}") from exc
    files = {"basecolor": cand.basecolor, "normal": cand.normal, "gloss": cand.gloss, "specular": cand.specular,
             "height": cand.height}
    base_w, base_h = images["basecolor"].size
    for slot, im in images.items():
        w, h = im.size
        if abs(w * base_h - h * base_w) > 0.01 * base_w * base_h:
            raise SkipSet(f"different aspect ratios: {slot} {w}x{h}, basecolor {base_w}x{base_h}")
    size = _fit(max((im.size for im in images.values()), key=lambda s: s[0] * s[1]), cap)
    if min(size) < min_size:
        raise SkipSet(f"too small: {size[0]}x{size[1]}, shorter side < {min_size}")

    maps: dict[str, dict] = {}

    def record(slot: str, source: str, **notes: object) -> None:
        lic, holder = licence(source)
        im = images[slot if slot in images else "normal"]
        maps[slot] = {"source": source, "source_size": list(im.size), "source_mode": im.mode,
                      "source_format": im.format, "license": lic, "copyright": holder, **notes}

    # base colour: RGB; the alpha (transparency, team-colour mask, specular...) is dropped and said so
    base_im = images["basecolor"]
    alpha_note = "none"
    if "A" in base_im.getbands():
        a = np.asarray(base_im.getchannel("A"))
        alpha_note = "opaque" if a.min() == 255 else f"dropped (min {a.min()}, mean {a.mean():.1f})"
    basecolor = _resize(_float(base_im, "RGB"), size)
    record("basecolor", cand.basecolor, alpha=alpha_note)

    # normal: RGB (+ alpha as a height candidate), convention measured against a height field when possible
    norm_im = images["normal"]
    normal = _resize(_float(norm_im, "RGB"), size)
    height: np.ndarray | None = None
    height_note: dict[str, object] = {}
    check: dict[str, object] = {"height_field": None}
    if "height" in images:
        height, how = _gray(_resize(_float(images["height"], "RGB"), size))
        height_note = {"source": cand.height, "channel": how}
        check["height_field"] = f"{cand.height} ({how})"
    elif "A" in norm_im.getbands():
        alpha = np.asarray(norm_im.getchannel("A"))
        if int(alpha.max()) - int(alpha.min()) >= MIN_ALPHA_RANGE:
            height = _resize(_float(norm_im.getchannel("A"), "L"), size)
            height_note = {"source": cand.normal, "channel": "A of the normal map"}
            check["height_field"] = f"{cand.normal} (alpha)"
    y = y_default
    check["convention"] = f"package default ({y_default})"
    measured = False
    if height is not None:
        cx, cy = normal_vs_height(normal, height)
        check.update(corr_x=round(cx, 3), corr_y=round(cy, 3))
        if cx >= HEIGHT_CORR and abs(cy) >= Y_CORR:
            y, measured = ("opengl" if cy > 0 else "directx"), True
            check["convention"] = f"height field ({y})"
        if cx < HEIGHT_CORR and height_note.get("channel") == "A of the normal map":
            check["alpha"] = f"not written as height: corr_x {cx:.3f} < {HEIGHT_CORR}"
            height, height_note = None, {}
    curl_gl, curl_dx = curl_residuals(normal)
    check.update(curl_opengl=round(curl_gl, 5), curl_directx=round(curl_dx, 5))
    if min(curl_gl, curl_dx) > 0 and max(curl_gl, curl_dx) >= CURL_RATIO * min(curl_gl, curl_dx):
        by_curl = "opengl" if curl_gl < curl_dx else "directx"
        check["curl_says"] = by_curl
        if not measured:
            y = by_curl
            check["convention"] = f"integrability ({y})"
    if y == "directx":
        normal[..., 1] = 1 - normal[..., 1]
    v = normal * 2 - 1
    v /= np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-6)
    normal = v * 0.5 + 0.5
    record("normal", cand.normal, convention=y, flipped_y=y == "directx", check=check)

    out: dict[str, np.ndarray] = {"basecolor": basecolor, "normal": normal}
    if "gloss" in images and cand.gloss is not None:
        gloss, how = _gray(_resize(_float(images["gloss"], "RGB"), size))
        if gloss_as == "roughness":
            out["roughness"] = 1 - gloss
            record("gloss", cand.gloss, written_as="roughness", inverted=True, channel=how,
                   note="DarkPlaces _gloss is a specular intensity (or colour) map; 1 - gloss approximates roughness")
        else:
            rgb = _resize(_float(images["gloss"], "RGB"), size)
            out["specular"] = gloss if how.startswith("R ") else rgb
            record("gloss", cand.gloss, written_as="specular", inverted=False,
                   channel=how if how.startswith("R ") else "RGB")
    if "specular" in images and cand.specular is not None:
        spec = _resize(_float(images["specular"], "RGB"), size)
        if cand.specular_channel is not None:
            spec, how = spec[..., cand.specular_channel : cand.specular_channel + 1], "R of the model mask"
        else:
            spec, how = _gray(spec) if np.array_equal(spec[..., 0], spec[..., 1]) else (spec, "RGB")
        out["specular"] = spec
        record("specular", cand.specular, written_as="specular", channel=how)
    if height is not None:
        out["height"] = height
        maps["height"] = {**height_note, "license": licence(str(height_note["source"]))[0]}

    dest.mkdir(parents=True, exist_ok=True)
    for slot, data in out.items():
        _png(data, dest / f"{slot}.png")
    constant = [slot for slot, data in out.items() if float(data.max() - data.min()) <= 2 / 255 + 1e-6]
    licences = sorted({m["license"] for m in maps.values()})
    return {"size": list(size), "pairing": cand.pairing, "archive": tree.label, "license": " AND ".join(licences),
            "written": sorted(f"{s}.png" for s in out), "constant_maps": constant, "maps": maps,
            "sources": sorted({str(v) for v in files.values() if v})}


# ----------------------------------------------------------------------------------------------- packages


def fetch(package: str, cache: Path) -> Path:
    """The package's .deb in CACHE/debs (apt-get download when absent), unpacked once into CACHE/root/<package>."""
    debs = cache / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    found = sorted(debs.glob(f"{package}_*.deb"), key=lambda p: p.stat().st_mtime)
    if not found:
        log.info("%s: apt-get download", package)
        subprocess.run(["apt-get", "download", package], cwd=debs, check=True)
        found = sorted(debs.glob(f"{package}_*.deb"), key=lambda p: p.stat().st_mtime)
    return found[-1]


def unpack(deb: Path, package: str, cache: Path) -> Path:
    root = cache / "root" / package
    marker = root / ".unpacked"
    if marker.exists() and marker.read_text().strip() == deb.name:
        return root
    shutil.rmtree(root, ignore_errors=True)
    tmp = root.with_name(root.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    log.info("%s: dpkg-deb -x %s", package, deb.name)
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp)], check=True)
    tmp.rename(root)
    marker.write_text(deb.name)
    return root


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", _stem_key(name).replace("/", "__")).strip("_") or "set"


def run_package(package: str, cache: Path, out: Path, cap: int, min_size: int, gloss_as: str,
                limit: int | None) -> dict:
    spec = PACKAGES[package]
    t0 = time.monotonic()
    deb = fetch(package, cache)
    version = subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], check=True, capture_output=True,
                             text=True).stdout.strip()
    root = unpack(deb, package, cache)
    t_unpacked = time.monotonic()
    licensing = Licensing.read(root / "usr/share/doc" / package / "copyright")
    trees = []
    for rel in spec.trees:
        path = root / rel
        if path.is_dir():
            trees.append(Tree(rel, folder=path))
        elif path.is_file():
            trees.append(Tree(rel, archive=path))
        else:
            log.warning("%s: %s is not in the package", package, rel)
    candidates = spec.finder(trees)
    unique: dict[tuple[str, str, str], Candidate] = {}
    for cand in candidates:  # the first declaration of a (basecolor, normal) pair wins
        unique.setdefault((cand.tree.label, cand.basecolor, cand.normal), cand)
    dest_root = out / package
    shutil.rmtree(dest_root, ignore_errors=True)
    dest_root.mkdir(parents=True)
    names: Counter[str] = Counter(_slug(c.basecolor) for c in unique.values())
    used: set[str] = set()
    written, skipped = [], []
    conventions: Counter[str] = Counter()
    for i, cand in enumerate(unique.values()):
        if limit is not None and len(written) >= limit:
            break
        name = _slug(cand.basecolor)
        if names[name] > 1:  # one base colour with several normal maps: name the normal map too
            name += "--" + _slug(cand.normal)
        while name in used:  # the same pair in two archives of one package
            name += "-"
        used.add(name)
        tree = cand.tree

        def licence(source: str, tree: Tree = tree) -> tuple[str, str]:
            return licensing.lookup(spec.upstream(tree, source))

        try:
            rec = build_set(cand, dest_root / name, cap, min_size, gloss_as, spec.normal_default, licence)
        except SkipSet as exc:
            skipped.append({"basecolor": cand.basecolor, "normal": cand.normal, "reason": str(exc)})
            continue
        rec = {"package": package, "version": version, "set": name, **rec}
        (dest_root / name / "sources.json").write_text(json.dumps(rec, indent=1) + "\n")
        written.append(rec)
        conventions[str(rec["maps"]["normal"]["check"]["convention"])] += 1
        if (i + 1) % 100 == 0:
            log.info("%s: %d / %d candidates", package, i + 1, len(unique))
    for tree in trees:
        tree.close()
    summary = {
        "version": version, "deb": deb.name, "deb_bytes": deb.stat().st_size, "candidates": len(unique),
        "sets": len(written), "distinct_normal_maps": len({r["maps"]["normal"]["source"] for r in written}),
        "skipped": len(skipped),
        "skip_reasons": dict(Counter(s["reason"].split(":")[0] for s in skipped)),
        "licenses": dict(Counter(r["license"] for r in written)),
        "sizes": dict(Counter("x".join(map(str, r["size"])) for r in written).most_common()),
        "maps": dict(Counter(m for r in written for m in r["written"])),
        "normal_convention": dict(conventions), "seconds_unpack": round(t_unpacked - t0, 1),
        "seconds_sets": round(time.monotonic() - t_unpacked, 1),
        "output_bytes": sum(p.stat().st_size for p in dest_root.rglob("*") if p.is_file()),
    }
    (dest_root / "skipped.json").write_text(json.dumps(skipped, indent=1) + "\n")
    log.info("%s %s: %d sets from %d candidates (%d skipped) in %.0f s", package, version, len(written),
             len(unique), len(skipped), time.monotonic() - t0)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=Path(".cache/warmstart/packages"),
                        help="where the .deb files are downloaded and unpacked (kept between runs; ~5 GiB for all)")
    parser.add_argument("--out", type=Path, default=Path(".cache/warmstart/sets"),
                        help="output: OUT/<package>/<set>/*.png + sources.json, and OUT/index.json")
    parser.add_argument("--packages", nargs="+", default=list(DEFAULT_PACKAGES), choices=sorted(PACKAGES),
                        metavar="PKG", help=f"packages to use (default: {' '.join(DEFAULT_PACKAGES)}; "
                        f"known: {', '.join(sorted(PACKAGES))})")
    parser.add_argument("--max-size", type=int, default=1024, help="cap on the longer side, in pixels (default 1024)")
    parser.add_argument("--min-size", type=int, default=64, help="skip sets whose shorter side is below this")
    parser.add_argument("--gloss-as", choices=("roughness", "specular"), default="roughness",
                        help="Nexuiz _gloss maps: written as roughness.png = 1 - gloss (default) or specular.png")
    parser.add_argument("--limit", type=int, default=None, help="at most this many sets per package (a smoke run)")
    parser.add_argument("--remove-unpacked", action="store_true", help="delete CACHE/root/<package> afterwards")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    args.out.mkdir(parents=True, exist_ok=True)
    index_path = args.out / "index.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else {}
    failed = []
    t0 = time.monotonic()
    for package in args.packages:
        try:
            index[package] = run_package(package, args.cache, args.out, args.max_size, args.min_size, args.gloss_as,
                                         args.limit)
        except (subprocess.CalledProcessError, OSError) as exc:
            log.error("%s: %s", package, exc)
            failed.append(package)
            index[package] = {"error": str(exc)}
        if args.remove_unpacked:
            shutil.rmtree(args.cache / "root" / package, ignore_errors=True)
        index_path.write_text(json.dumps(index, indent=1) + "\n")
    total = sum(v.get("sets", 0) for k, v in index.items() if k in args.packages)
    log.info("%d sets in %s (%.0f s); index: %s", total, args.out, time.monotonic() - t0, index_path)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
