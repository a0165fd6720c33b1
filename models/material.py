"""The one material-loading path of the app: a folder of maps or a glTF file -> a stacked float texel array.

Every consumer (codec training, evaluation, viewer) reads materials through `load_material`, so all of them
agree on the channel layout, on which maps are constant, and on the mip chain used as the reference.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import logging
import os
import re
import stat
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, unquote_to_bytes

import numpy as np
from PIL import Image, JpegImagePlugin, PngImagePlugin, WebPImagePlugin

from .atomic import write_atomic
from .layout import MAP_COLOR_SPACE, MAP_NAMES, MapInfo, color_space, printable

log = logging.getLogger(__name__)

CANONICAL = MAP_NAMES  # the maps a material may have, in channel order
_COLOR = frozenset(n for n, space in MAP_COLOR_SPACE.items() if space == "srgb")  # RGB, kept sRGB-encoded
# Per slot, file-name aliases in priority order: the first one wins when several files fill the same slot.
_ALIASES: dict[str, tuple[str, ...]] = {
    "basecolor": ("basecolor", "basecolour", "albedo", "diffuse", "diff", "color", "colour", "col"),
    "normal": (
        "normalgl", "normalopengl", "norgl", "normal", "nrm", "nor", "normaldx", "normaldirectx", "nordx",
    ),
    "roughness": ("roughness", "rough", "glossiness", "gloss"),
    "metallic": ("metallic", "metalness", "metal"),
    "ao": ("ao", "ambientocclusion", "occlusion"),
    "height": ("height", "displacement", "disp", "bump"),
    "opacity": ("opacity", "alpha"),
    "emissive": ("emissive", "emission"),
    "specular": ("specular", "spec"),
}
_ALIAS_SLOT = {alias: (slot, rank) for slot, names in _ALIASES.items() for rank, alias in enumerate(names)}
_GLOSS = frozenset({"glossiness", "gloss"})
_DIRECTX = frozenset({"normaldx", "normaldirectx", "nordx"})
# Lossless formats first, so `x_normal.png` beats a `x_normal.jpg` preview next to it. Images are read by content
# (PNG, JPEG or WebP, whatever the name says); a map file of another kind is named in an error, never skipped.
_EXT_RANK = {".png": 0, ".webp": 1, ".jpg": 2, ".jpeg": 2}
_UNREAD_EXT = frozenset({".tif", ".tiff", ".tga", ".bmp", ".gif", ".exr", ".hdr", ".dds", ".psd", ".ktx", ".ktx2",
                         ".avif", ".heic", ".jxl"})
_DECODERS = {"PNG": PngImagePlugin.PngImageFile, "JPEG": JpegImagePlugin.JpegImageFile,
             "WebP": WebPImagePlugin.WebPImageFile}
# Limits on what a material may make the loader read. MAX_PIXELS: per image, checked from the header before
# decoding (8192 x 8192 = 67 Mpx: ~1 GiB as float32 RGBA); the NGTC_MAX_PIXELS environment variable or
# load_material(max_pixels=) changes it. MAX_FILE_BYTES: any file (image, .gltf, .glb, .bin), checked with fstat
# before reading; MAX_DATA_URI_BYTES: a glTF data: URI's decoded payload.
MAX_PIXELS = 8192 * 8192
MAX_FILE_BYTES = 1 << 30
MAX_DATA_URI_BYTES = 256 << 20
_RES_TOKEN = re.compile(r"\d+[kK]?|\d+x\d+", re.ASCII)
_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_CONSTANT_RANGE = 2 / 255 + 1e-6  # the epsilon absorbs float32 rounding of e.g. (255 - 253) / 255
_LUMA = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
# Scalar maps: one channel of their image. Which one is asked for per map (`channels=`, `--channel MAP=CH`) or per
# folder (CHANNELS_FILE); otherwise R, provided every other channel is constant or equal to R (see _scalar).
CHANNEL_CHOICES = ("R", "G", "B", "A", "luminance")
CHOOSABLE = ("roughness", "metallic", "ao", "height", "opacity", "specular")  # specular: RGB colour unless asked
CHANNELS_FILE = "channels.json"
# "Carries no data of its own" (constant, or equal to R): lossless images within the constant-map range at every
# texel; lossy ones (JPEG, lossy WebP) within an RMS of 6/255, above the chroma noise that JPEG q30..95 and WebP
# q50..80 leave in all-zero G and B beside real maps in R (std 0.3/255 .. 3.9/255, measured on the bundled tiles).
_LOSSY_RMS = 6 / 255
_GLB_JSON, _GLB_BIN = 0x4E4F534A, 0x004E4942
_URI_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")  # file:, http:, C: ...
# One material of a glTF file with several: "file.glb#materials[2]" (the form its default name takes too).
_GLTF_REF = re.compile(r"(?P<file>.+\.gltf|.+\.glb)#materials\[(?P<index>\d+)\]", re.IGNORECASE | re.DOTALL)


class MaterialError(Exception):
    """One-line, user-facing message that names the file and the problem."""


@dataclass(eq=False)
class Material:
    name: str
    maps: list[MapInfo]
    texels: np.ndarray
    _mips: list[np.ndarray] | None = field(default=None, init=False, repr=False)

    @property
    def height(self) -> int:
        return int(self.texels.shape[0])

    @property
    def width(self) -> int:
        return int(self.texels.shape[1])

    @property
    def channels(self) -> int:
        return int(self.texels.shape[2])

    def mip_count(self) -> int:
        return max(self.height, self.width).bit_length()  # == floor(log2(max)) + 1

    def map_info(self, name: str) -> MapInfo:
        for info in self.maps:
            if info.name == name:
                return info
        raise KeyError(f"material {self.name!r} has no {name!r} map (has: {', '.join(self.map_names())})")

    def map_names(self) -> list[str]:
        return [info.name for info in self.maps]

    def map_slice(self, name: str) -> slice:
        info = self.map_info(name)
        if info.constant is not None:
            raise KeyError(f"map {name!r} of material {self.name!r} is constant and not in texels")
        return slice(info.offset, info.offset + info.channels)

    def crop(self, x: int, y: int, w: int, h: int) -> Material:
        if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > self.width or y + h > self.height:
            raise ValueError(f"crop ({x}, {y}, {w}, {h}) outside {self.width}x{self.height}")
        return Material(self.name, list(self.maps), self.texels[y : y + h, x : x + w].copy())

    def layout(self) -> list[MapInfo]:
        return list(self.maps)

    def mip_chain(self) -> list[np.ndarray]:
        if self._mips is None:
            self._mips = _build_mips(self.texels, self.maps, self.mip_count())
        return self._mips


# ----------------------------------------------------------------------------------------------- public API


def load_material(
    path: str | Path,
    maps: Sequence[str] | None = None,
    size: tuple[int, int] | None = None,
    channels: dict[str, str] | None = None,
    max_pixels: int | None = None,
) -> Material:
    """Load a folder of maps or a .glb/.gltf file; `maps` keeps a subset, `size` is (width, height).

    `channels` picks the image channel of scalar maps in a folder, e.g. {"roughness": "R"} (values: R, G, B, A,
    luminance); it overrides the folder's own CHANNELS_FILE. Without a choice a scalar map is read from R when its
    other channels are constant or equal to R, and refused when they carry different data. glTF fixes its channels
    (metallicRoughness: G roughness, B metallic; occlusion: R), so `channels` is refused for a glTF file.

    `max_pixels` caps each image (default: NGTC_MAX_PIXELS from the environment, else MAX_PIXELS). A glTF reads
    only regular files inside its own folder; every file's size is checked before it is read.

    A glTF file with several materials gives the one with the most textures, or the one `path` names as
    "file.glb#materials[N]" (`gltf_material_ref`)."""
    path, index = _split_gltf_ref(Path(path))
    if not path.exists():
        raise MaterialError(f"{path}: no such file or folder")
    wanted = _check_wanted(path, maps)
    choices = _check_channels(path, channels or {})
    cap = _pixel_cap(max_pixels)
    if size is not None and (len(size) != 2 or min(size) < 1):
        raise MaterialError(f"{path}: size must be (width, height) >= 1, got {size}")
    if size is not None and size[0] * size[1] > cap:
        raise MaterialError(f"{path}: size {size[0]}x{size[1]} is over the cap of {cap:,} pixels")
    if path.is_dir():
        name, raws = path.resolve().name, _load_folder(path, wanted, choices, cap)
    elif path.suffix.lower() in (".glb", ".gltf"):
        if choices:
            raise MaterialError(f"{path}: channel choices apply to folders of maps; a glTF fixes its channels "
                                f"(metallicRoughness: G roughness, B metallic; occlusion: R)")
        name, raws = _GltfDoc(path, cap).load(wanted, index)
    else:
        raise MaterialError(f"{path}: expected a folder of maps or a .glb/.gltf file")
    if not raws:
        raise MaterialError(f"{path}: none of the requested maps ({', '.join(wanted)}) is present")
    return _assemble(path, name, raws, size)


def gltf_materials(path: str | Path) -> list[tuple[int, str]]:
    """(index, name) of every textured material of a .glb/.gltf file: what `gltf_material_ref` can name."""
    doc = _GltfDoc(Path(path), MAX_PIXELS)
    try:
        return [(i, doc.material_name(i)) for i in doc.textured()]
    except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
        raise MaterialError(f"{path}: malformed glTF ({type(exc).__name__}: {_one_line(exc)})") from exc


def gltf_document(path: str | Path) -> dict:
    """The JSON of a .glb/.gltf file, read with the limits above (the viewer's scenes: materials' factors and
    alpha modes, which primitive uses which material)."""
    return _GltfDoc(Path(path), MAX_PIXELS).doc


def gltf_material_ref(path: str | Path, index: int) -> str:
    """The path `load_material` reads as material `index` of a glTF file."""
    return f"{path}#materials[{index}]"


def has_maps(folder: str | Path) -> bool:
    """True when a folder holds files named like maps (a material folder, not a library of them)."""
    files = (p for p in Path(folder).iterdir() if not p.name.startswith(".") and not p.is_dir())
    return any(p.suffix.lower() in _EXT_RANK.keys() | _UNREAD_EXT and _classify(p) for p in files)


def _split_gltf_ref(path: Path) -> tuple[Path, int | None]:
    """A "file.glb#materials[N]" that is not itself an existing file -> (file.glb, N)."""
    ref = None if path.exists() else _GLTF_REF.fullmatch(str(path))
    return (Path(ref["file"]), int(ref["index"])) if ref else (path, None)


def parse_channel_choices(specs: Sequence[str]) -> dict[str, str]:
    """`--channel` values ("roughness=R", or several comma-separated) -> {map: channel}, checked."""
    choices: dict[str, str] = {}
    for spec in (item.strip() for text in specs for item in text.split(",")):
        slot, sep, value = spec.partition("=")
        slot, value = slot.strip(), value.strip()
        if not sep or not slot or not value:
            raise MaterialError(f"--channel {spec!r}: expected MAP=CHANNEL, e.g. roughness=R "
                                f"(channels: {', '.join(CHANNEL_CHOICES)})")
        if slot in choices:
            raise MaterialError(f"--channel: {slot} is given twice")
        choices[slot] = value
    return _check_channels("--channel", choices)


def save_maps(texels: np.ndarray, maps: list[MapInfo], out_dir: Path, suffix: str = "") -> list[Path]:
    """Write every map (constants too) as `<name><suffix>.png` at its source bit depth; atomic per file."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MaterialError(f"{out_dir}: cannot create folder ({_one_line(exc)})") from exc
    written = []
    for info in maps:
        data = map_array(texels, info)
        if info.name == "normal":
            data = np.concatenate([data, reconstruct_normal_z(data)[..., None]], axis=-1)
        written.append(_write_png(_to_image(data, info.bit_depth), out_dir / f"{info.name}{suffix}.png"))
    return written


def map_array(texels: np.ndarray, info: MapInfo) -> np.ndarray:
    """(H, W, channels) values of one map, expanding a constant to the texels' size."""
    if info.constant is None:
        return texels[..., info.offset : info.offset + info.channels]
    return np.broadcast_to(np.asarray(info.constant, np.float32), (*texels.shape[:2], info.channels))


def reconstruct_normal_z(xy: np.ndarray) -> np.ndarray:
    """Stored XY in [0, 1] -> stored Z in [0, 1] (shape xy.shape[:-1]), assuming a unit, outward normal."""
    n = xy[..., :2].astype(np.float32) * 2 - 1
    z = np.sqrt(np.clip(1 - n[..., 0] ** 2 - n[..., 1] ** 2, 0, 1))
    return z * 0.5 + 0.5


# ----------------------------------------------------------------------------------------------- decoding


@dataclass
class _Decoded:
    color: np.ndarray  # float32 (H, W, 1 | 3) in [0, 1]
    alpha: np.ndarray | None  # float32 (H, W) or None
    bit_depth: int
    lossy: bool = False  # JPEG or lossy WebP: channels meant to be equal or constant carry codec noise


@dataclass
class _Raw:
    name: str
    data: np.ndarray  # float32 (H, W, C), the map's channels at source size
    source: str
    bit_depth: int
    source_channel: str | None = None  # the image channel it was read from (MapInfo.source_channel)
    inverted: bool = False  # 1 - source (gloss read as roughness)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _pixel_cap(max_pixels: int | None) -> int:
    if max_pixels is None:
        env = os.environ.get("NGTC_MAX_PIXELS")
        if env is None:
            return MAX_PIXELS
        try:
            max_pixels = int(env.strip().replace("_", ""))
        except ValueError:
            max_pixels = 0
        if max_pixels < 1:
            raise MaterialError(f"NGTC_MAX_PIXELS={env!r}: expected a positive whole number of pixels")
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
        raise MaterialError(f"max_pixels must be a positive whole number, got {max_pixels!r}")
    return max_pixels


def _read_file(path: Path, what: str, limit: int | None = None) -> bytes:
    """A regular file's bytes, its size checked before reading: never blocks on a FIFO, never reads a device."""
    limit = MAX_FILE_BYTES if limit is None else limit
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise MaterialError(f"{path}: cannot read {what} ({_one_line(exc)})") from exc
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(file.fileno())
        if stat.S_ISDIR(info.st_mode):
            raise MaterialError(f"{path}: is a folder, expected {what}")
        if not stat.S_ISREG(info.st_mode):
            raise MaterialError(f"{path}: not a regular file (a FIFO, device or socket), expected {what}")
        if info.st_size > limit:
            raise MaterialError(f"{path}: {info.st_size:,} bytes, over the {limit:,}-byte limit for {what}")
        try:
            data = file.read(limit + 1)
        except OSError as exc:
            raise MaterialError(f"{path}: cannot read {what} ({_one_line(exc)})") from exc
    if len(data) > limit:
        raise MaterialError(f"{path}: grew past the {limit:,}-byte limit for {what} while being read")
    return data


def _sniff(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    return None


def _webp_lossy(data: bytes) -> bool:
    """True unless the WebP's first image chunk is VP8L (lossless)."""
    pos = 12
    while pos + 8 <= len(data):
        kind, size = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        if kind in (b"VP8 ", b"VP8L"):
            return kind == b"VP8 "
        pos += 8 + size + (size & 1)
    return True


def _decode(data: bytes, label: str, max_pixels: int) -> _Decoded:
    """PNG, JPEG or WebP by content; the pixel cap is checked from the header, before anything is decoded."""
    kind = _sniff(data)
    if kind is None:
        raise MaterialError(f"{label}: not a PNG, JPEG or WebP image (the formats the loader reads)")
    try:
        # The format's own decoder, not Image.open: no guessing among Pillow's other formats, and no
        # decompression-bomb warning of Pillow's in front of our own one-line cap.
        with _DECODERS[kind](io.BytesIO(data)) as im:
            width, height = im.size
            if width * height > max_pixels:
                raise MaterialError(f"{label}: {width}x{height} image = {width * height:,} pixels, over the cap of "
                                    f"{max_pixels:,} (the NGTC_MAX_PIXELS environment variable sets it)")
            im.load()
            decoded = _to_float(im)
    except Image.DecompressionBombError as exc:
        raise MaterialError(f"{label}: image over Pillow's pixel limit ({_one_line(exc)})") from exc
    except (OSError, ValueError, SyntaxError, EOFError, zlib.error, struct.error) as exc:
        raise MaterialError(f"{label}: cannot read image ({kind}: {_one_line(exc)})") from exc
    decoded.lossy = kind == "JPEG" or (kind == "WebP" and _webp_lossy(data))
    return decoded


def _to_float(im: Image.Image) -> _Decoded:
    if im.mode.startswith("I") or im.mode == "F":
        # 16-bit PNGs open as I;16* (or I in older Pillow); float TIFFs are taken as [0, 1] data.
        scale = 1.0 if im.mode == "F" else 65535.0
        arr = np.clip(np.asarray(im, dtype=np.float32) / scale, 0, 1)
        return _Decoded(arr[..., None], None, 16)
    if im.mode in ("P", "PA"):
        im = im.convert("RGBA" if "transparency" in im.info or im.mode == "PA" else "RGB")
    elif im.mode == "1":
        im = im.convert("L")
    elif im.mode not in ("L", "LA", "RGB", "RGBA"):
        im = im.convert("RGB")  # CMYK, YCbCr, LAB, ...: Pillow only yields 8 bits for these anyway
    arr = np.asarray(im, dtype=np.float32) / 255
    if arr.ndim == 2:
        arr = arr[..., None]
    if im.mode in ("LA", "RGBA"):
        return _Decoded(arr[..., :-1], arr[..., -1], 8)
    return _Decoded(arr, None, 8)


def _no_data(channel: np.ndarray, r: np.ndarray, lossy: bool) -> bool:
    """True when `channel` carries nothing beside R: it is constant, or it equals R (within codec noise)."""
    if lossy:
        def rms(d: np.ndarray) -> float:
            return float(np.sqrt(np.mean(np.square(d, dtype=np.float64))))
        return rms(channel - channel.mean(dtype=np.float64)) <= _LOSSY_RMS or rms(channel - r) <= _LOSSY_RMS
    return bool(np.ptp(channel) <= _CONSTANT_RANGE or np.abs(channel - r).max() <= _CONSTANT_RANGE)


def _scalar(img: _Decoded, label: str, slot: str, choice: str | None) -> tuple[np.ndarray, str | None]:
    """(H, W, 1) values of a scalar map and the channel they came from (None: a grey image's one channel).

    As engines read such maps: R, when every other channel (alpha included) is constant or equal to R. A file
    whose channels carry different data (a packed map under a single-map name) is refused unless `choice` says
    which channel to take; luminance only when asked for. Never a silent mix of several channels."""
    color, alpha = img.color, img.alpha
    if choice == "A":
        if alpha is None:
            raise MaterialError(f"{label}: has no alpha channel ({slot}=A was asked for)")
        return alpha[..., None], "A"
    if color.shape[-1] == 1:
        if choice is None and alpha is not None and not _no_data(alpha, color[..., 0], img.lossy):
            raise _packed(label, slot, ["grey", "A"])
        return color, None  # R, G, B and luminance of a grey image are the grey itself
    if choice == "luminance":
        return (color @ _LUMA)[..., None], "luminance"
    if choice is not None:
        index = "RGB".index(choice)
        return color[..., index : index + 1], choice
    r = color[..., 0]
    others = [("G", color[..., 1]), ("B", color[..., 2])] + ([("A", alpha)] if alpha is not None else [])
    differ = [name for name, channel in others if not _no_data(channel, r, img.lossy)]
    if differ:
        raise _packed(label, slot, ["R", *differ])
    return color[..., :1], "R"


def _packed(label: str, slot: str, differ: list[str]) -> MaterialError:
    return MaterialError(
        f"{label}: channels {', '.join(differ)} carry different data (a packed map?); say which one is the {slot}: "
        f"--channel {slot}=R|G|B|A|luminance, or {{\"{slot}\": \"R\"}} in {CHANNELS_FILE} in the folder")


def _map_data(name: str, img: _Decoded, label: str, choice: str | None = None) -> tuple[np.ndarray, str | None]:
    """The map's channels from its image, and the channel they were read from (None: the colour channels)."""
    if name in _COLOR:
        return (img.color if img.color.shape[-1] == 3 else np.repeat(img.color, 3, axis=-1)), None
    if name == "normal":
        if img.color.shape[-1] != 3:
            raise MaterialError(f"{label}: a normal map must be RGB, got a grayscale image")
        return img.color[..., :2], None
    if name == "specular" and choice is None:
        return img.color, None  # a scalar or an RGB colour, as stored
    return _scalar(img, label, name, choice)


def _alpha_opacity(img: _Decoded, source: str) -> _Raw | None:
    """Base-color alpha becomes the opacity map unless it is fully opaque."""
    if img.alpha is None or img.alpha.min() >= 1:
        return None
    return _Raw("opacity", img.alpha[..., None], source, img.bit_depth, "A")


# ----------------------------------------------------------------------------------------------- folders


def _classify(file: Path) -> tuple[str, str, int] | None:
    """(slot, alias, alias rank) of a map file name, or None. Conservative: no single-letter suffixes."""
    tokens = [t for t in re.split(r"[\s._\-]+", file.stem) if t]
    while tokens and _RES_TOKEN.fullmatch(tokens[-1]):
        tokens.pop()  # "rock_diff_2k", "rock_normal_1024"
    words = [w.lower() for t in tokens for w in _WORD.findall(t)]
    # The longest word-aligned tail that is an alias: "RockBaseColor" -> basecolor, not color.
    for start in range(len(words)):
        alias = "".join(words[start:])
        if alias in _ALIAS_SLOT:
            slot, rank = _ALIAS_SLOT[alias]
            return slot, alias, rank
    return None


def _pick_files(folder: Path, wanted: Sequence[str]) -> dict[str, tuple[Path, str]]:
    candidates: dict[str, list[tuple[int, int, str, Path, str]]] = {}
    unread: dict[str, Path] = {}
    # Not only regular files: a FIFO or device named like a map is refused by name when read, never skipped.
    files = sorted(p for p in folder.iterdir() if not p.name.startswith(".") and not p.is_dir())
    for file in files:
        ext = file.suffix.lower()
        kind = _classify(file) if ext in _EXT_RANK or ext in _UNREAD_EXT else None
        if kind is None:
            continue
        slot, alias, rank = kind
        if ext in _UNREAD_EXT:
            unread.setdefault(slot, file)
        else:
            candidates.setdefault(slot, []).append((rank, _EXT_RANK[ext], file.name, file, alias))
    for slot, file in unread.items():
        if slot in wanted and slot not in candidates:
            raise MaterialError(f"{file}: {file.suffix[1:].upper()} images are not read; the loader reads PNG, "
                                f"JPEG or WebP (convert the {slot} map to one of them)")
    if not candidates:
        more = f", ... ({len(files)} in all)" if len(files) > 8 else ""
        seen = ", ".join(p.name for p in files[:8]) + more
        raise MaterialError(f"{folder}: no recognizable texture maps (files: {seen or 'none'})")
    return {slot: min(c)[3:] for slot, c in candidates.items() if slot in wanted}


def _folder_channels(folder: Path) -> dict[str, str]:
    """The folder's own channel choices: CHANNELS_FILE, a JSON object {map: channel}, when present."""
    file = folder / CHANNELS_FILE
    if not os.path.lexists(file):
        return {}
    try:
        choices = json.loads(_read_file(file, "channel choices (JSON)", 1 << 20).decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise MaterialError(f"{file}: cannot read channel choices ({_one_line(exc)})") from exc
    if not isinstance(choices, dict):
        raise MaterialError(f'{file}: expected a JSON object of map -> channel, e.g. {{"roughness": "R"}}')
    return _check_channels(file, choices)


def _load_folder(folder: Path, wanted: Sequence[str], channels: dict[str, str], max_pixels: int) -> list[_Raw]:
    picked = _pick_files(folder, wanted)
    channels = {**_folder_channels(folder), **channels}
    raws = []
    for slot, (file, alias) in picked.items():
        img = _decode(_read_file(file, "an image"), str(file), max_pixels)
        data, source_channel = _map_data(slot, img, str(file), channels.get(slot))
        inverted = alias in _GLOSS
        if inverted:
            log.info("%s: glossiness map inverted to roughness", file)
            data = 1 - data
        if alias in _DIRECTX:
            log.info("%s: DirectX normal map, Y flipped to the OpenGL convention", file)
            data = data * np.array([1, -1], np.float32) + np.array([0, 1], np.float32)
        raws.append(_Raw(slot, data, str(file), img.bit_depth, source_channel, inverted))
        if slot == "basecolor" and "opacity" in wanted and "opacity" not in picked:
            raws.append(_alpha_opacity(img, str(file)))
    return [raw for raw in raws if raw is not None]


# ----------------------------------------------------------------------------------------------- glTF


class _GltfDoc:
    """Just enough glTF 2.0 to reach a material's images: GLB chunks, external files and data: URIs.

    External files resolve inside the glTF's own folder (no absolute paths, no `..` or symlink escape) and must be
    regular files; indices must point at existing elements (no Python negative indexing)."""

    def __init__(self, path: Path, max_pixels: int = MAX_PIXELS) -> None:
        self.path = path
        self.max_pixels = max_pixels
        self.bin: bytes | None = None
        self._buffers: dict[int, bytes] = {}
        self._images: dict[int, tuple[_Decoded, str]] = {}
        data = _read_file(path, "a glTF file")
        try:
            doc = self._read_glb(data) if path.suffix.lower() == ".glb" else json.loads(data.decode("utf-8"))
        except RecursionError as exc:
            raise MaterialError(f"{path}: cannot read glTF (its JSON is nested too deeply)") from exc
        except ValueError as exc:
            raise MaterialError(f"{path}: cannot read glTF ({_one_line(exc)})") from exc
        if not isinstance(doc, dict):
            raise MaterialError(f"{path}: malformed glTF (the JSON is a {type(doc).__name__}, not an object)")
        self.doc = doc

    def _read_glb(self, data: bytes) -> dict:
        if len(data) < 12 or data[:4] != b"glTF":
            raise MaterialError(f"{self.path}: not a GLB file (bad magic)")
        version, length = struct.unpack_from("<II", data, 4)
        if version != 2:
            raise MaterialError(f"{self.path}: unsupported glTF version {version}")
        if length > len(data):
            raise MaterialError(f"{self.path}: truncated GLB ({len(data)} of {length} bytes)")
        doc, pos = None, 12
        while pos + 8 <= length:
            size, kind = struct.unpack_from("<II", data, pos)
            if pos + 8 + size > length:
                raise MaterialError(f"{self.path}: truncated GLB (chunk at byte {pos} runs past the end)")
            chunk, pos = data[pos + 8 : pos + 8 + size], pos + 8 + size
            if kind == _GLB_JSON and doc is None:
                doc = json.loads(chunk)
            elif kind == _GLB_BIN and self.bin is None:
                self.bin = chunk
        if doc is None:
            raise MaterialError(f"{self.path}: GLB has no JSON chunk")
        return doc

    def load(self, wanted: Sequence[str], index: int | None = None) -> tuple[str, list[_Raw]]:
        """The maps of material `index`, or of the one with the most textures (ties: the first)."""
        try:
            textured = self.textured()
            if index is None:
                index = max(textured, key=lambda i: len(textured[i]))
            elif index not in textured:
                raise MaterialError(f"{self.path}: materials[{index}] is not a textured material (textured: "
                                    f"{', '.join(map(str, textured))})")
            return self.material_name(index), self._maps(textured[index], wanted)
        except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
            problem = f"{type(exc).__name__}: {_one_line(exc)}"
            raise MaterialError(f"{self.path}: malformed glTF ({problem})") from exc

    def textured(self) -> dict[int, dict[str, object]]:
        """Texture slots of every material that has any, by material index."""
        mats = self.doc.get("materials") or []
        textured = {i: refs for i, refs in enumerate(_texture_refs(mat) for mat in mats) if refs}
        if not textured:
            raise MaterialError(f"{self.path}: glTF has {'no textured material' if mats else 'no material'}")
        return textured

    def material_name(self, index: int) -> str:
        return printable(str(self.doc["materials"][index].get("name") or f"{self.path.stem}#materials[{index}]"))

    def _maps(self, refs: dict[str, object], wanted: Sequence[str]) -> list[_Raw]:
        # (canonical map, glTF texture slot, channel of that image): fixed by the glTF specification.
        plan = [("basecolor", "base", None), ("normal", "normal", None), ("roughness", "mr", "G"),
                ("metallic", "mr", "B"), ("ao", "occlusion", "R"), ("emissive", "emissive", None)]
        raws = []
        for name, slot, channel in plan:
            if name in wanted and slot in refs:
                img, source = self._image(refs[slot])
                data, _ = _map_data(name, img, source, channel)
                raws.append(_Raw(name, data, source, img.bit_depth, channel))
        if "opacity" in wanted and "base" in refs:
            raws.append(_alpha_opacity(*self._image(refs["base"])))
        return [raw for raw in raws if raw is not None]

    def _element(self, key: str, index: object, referrer: str) -> tuple[int, dict]:
        """doc[key][index], checked: an int in range (-1 is no "last element") naming a JSON object."""
        items = self.doc.get(key)
        count = len(items) if isinstance(items, list) else 0
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count:
            raise MaterialError(f"{self.path}: {referrer} refers to {key}[{index!r}], which does not exist "
                                f"({count} {key})")
        if not isinstance(items[index], dict):
            raise MaterialError(f"{self.path}: {key}[{index}] is not a JSON object")
        return index, items[index]

    def _image(self, texture: object) -> tuple[_Decoded, str]:
        texture, tex = self._element("textures", texture, "a material")
        # Texture extensions (EXT_texture_webp, ...) name their image in the extension instead of `source`.
        source = tex.get("source", next((e.get("source") for e in (tex.get("extensions") or {}).values()), None))
        index, image = self._element("images", source, f"textures[{texture}]")
        if index not in self._images:
            src, label = self._image_bytes(index, image)
            self._images[index] = (_decode(src, label, self.max_pixels), label)
        return self._images[index]

    def _image_bytes(self, index: int, image: dict) -> tuple[bytes, str]:
        label = f"{self.path}#images[{index}]"
        if "uri" in image:
            uri = image["uri"]
            if isinstance(uri, str) and uri.startswith("data:"):
                return _data_uri(uri, label), label
            file = self._local_file(uri, f"images[{index}]")
            return _read_file(file, "an image"), str(file)
        _, view = self._element("bufferViews", image.get("bufferView"), f"images[{index}]")
        buf = self._buffer(view.get("buffer"))
        start, length = view.get("byteOffset", 0), view.get("byteLength")
        for field_name, value in (("byteOffset", start), ("byteLength", length)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise MaterialError(f"{label}: bufferView {field_name} {value!r} is not a non-negative integer")
        if start + length > len(buf):
            raise MaterialError(f"{label}: truncated (its bufferView runs past the end of the buffer)")
        return buf[start : start + length], label

    def _buffer(self, index: object) -> bytes:
        index, buffer = self._element("buffers", index, "a bufferView")
        if index not in self._buffers:
            uri = buffer.get("uri")
            if uri is None:
                if self.bin is None:
                    raise MaterialError(f"{self.path}: buffer {index} has no uri and no GLB BIN chunk")
                self._buffers[index] = self.bin
            elif isinstance(uri, str) and uri.startswith("data:"):
                self._buffers[index] = _data_uri(uri, f"{self.path}#buffers[{index}]")
            else:
                self._buffers[index] = _read_file(self._local_file(uri, f"buffers[{index}]"), "a glTF buffer")
        return self._buffers[index]

    def _local_file(self, uri: object, referrer: str) -> Path:
        """A relative URI resolved inside the glTF's folder (symlinks followed), or one line why not."""
        where = f"{self.path}: {referrer} uri {uri!r}"
        if not isinstance(uri, str) or not uri:
            raise MaterialError(f"{where} is not a file name")
        name = unquote(uri)
        if _URI_SCHEME.match(name) or name.startswith(("/", "\\")) or Path(name).is_absolute() or "\0" in name:
            raise MaterialError(f"{where}: only files beside the glTF (relative paths) are read, not absolute "
                                f"paths or URLs")
        folder = self.path.parent.resolve()
        try:
            file = (folder / name).resolve()
        except (OSError, RuntimeError) as exc:  # a symlink loop
            raise MaterialError(f"{where}: cannot resolve ({_one_line(exc)})") from exc
        if not file.is_relative_to(folder):
            raise MaterialError(f"{where} points outside the glTF's folder ({folder})")
        return self.path.parent / name


def _texture_refs(mat: dict) -> dict[str, object]:
    pbr = mat.get("pbrMetallicRoughness") or {}
    slots = {"base": pbr.get("baseColorTexture"), "mr": pbr.get("metallicRoughnessTexture"),
             "normal": mat.get("normalTexture"), "occlusion": mat.get("occlusionTexture"),
             "emissive": mat.get("emissiveTexture")}
    return {slot: ref["index"] for slot, ref in slots.items() if ref is not None}


def _data_uri(uri: str, label: str) -> bytes:
    """A data: URI's payload, its decoded size checked first (base64 decodes to 3/4 of its length)."""
    header, _, payload = uri.partition(",")
    base64_coded = header.endswith(";base64")
    size = len(payload) * 3 // 4 if base64_coded else len(payload)
    if size > MAX_DATA_URI_BYTES:
        raise MaterialError(f"{label}: data: URI of ~{size:,} bytes, over the {MAX_DATA_URI_BYTES:,}-byte limit "
                            f"(store large images as files or in the GLB's binary chunk)")
    try:
        return base64.b64decode(payload) if base64_coded else unquote_to_bytes(payload)
    except (binascii.Error, ValueError) as exc:
        raise MaterialError(f"{label}: bad data: URI ({_one_line(exc)})") from exc


# ----------------------------------------------------------------------------------------------- assembly


def _check_wanted(path: Path, maps: Sequence[str] | None) -> tuple[str, ...]:
    if maps is None:
        return CANONICAL
    maps = [maps] if isinstance(maps, str) else list(maps)
    unknown = ", ".join(m for m in maps if m not in CANONICAL)
    if unknown:
        raise MaterialError(f"{path}: unknown map name(s) {unknown}; valid: {', '.join(CANONICAL)}")
    return tuple(m for m in CANONICAL if m in maps)


def _check_channels(where: str | Path, channels: dict) -> dict[str, str]:
    """Channel choices with known scalar map names and channel names (R/G/B/A in any case), or one line why not."""
    checked, names = {}, {c.lower(): c for c in CHANNEL_CHOICES}
    for slot, value in channels.items():
        if slot not in CHOOSABLE:
            kind = "keeps its colour channels" if slot in CANONICAL else "is not a map name"
            raise MaterialError(f"{where}: {slot!r} {kind}; channel choices apply to {', '.join(CHOOSABLE)}")
        choice = names.get(value.lower()) if isinstance(value, str) else None
        if choice is None:
            raise MaterialError(f"{where}: {slot} channel {value!r} unknown; choose one of "
                                f"{', '.join(CHANNEL_CHOICES)}")
        checked[slot] = choice
    return checked


def _constant(data: np.ndarray) -> tuple[float, ...] | None:
    flat = data.reshape(-1, data.shape[-1])
    lo, hi = flat.min(axis=0), flat.max(axis=0)
    if np.all(hi - lo <= _CONSTANT_RANGE):
        return tuple(min(1.0, max(0.0, float(v))) for v in flat.mean(axis=0, dtype=np.float64))
    return None


def _assemble(path: Path, name: str, raws: list[_Raw], size: tuple[int, int] | None) -> Material:
    raws = sorted(raws, key=lambda raw: CANONICAL.index(raw.name))
    constants = [_constant(raw.data) for raw in raws]
    varying = [raw for raw, const in zip(raws, constants, strict=True) if const is None]
    if not varying:
        names = ", ".join(r.name for r in raws)
        raise MaterialError(f"{path}: every map is constant ({names}); nothing to encode")
    width, height = size or (max(r.data.shape[1] for r in varying), max(r.data.shape[0] for r in varying))
    texels = np.empty((height, width, sum(r.data.shape[-1] for r in varying)), np.float32)
    maps, offset = [], 0
    for raw, const in zip(raws, constants, strict=True):
        channels = raw.data.shape[-1]
        if const is None:
            _warn_if_stretched(raw, width, height)
            texels[..., offset : offset + channels] = _resize(raw.data, width, height)
        maps.append(MapInfo(raw.name, channels, color_space(raw.name), printable(raw.source), raw.bit_depth,
                            -1 if const else offset, const, raw.source_channel, raw.inverted))
        offset += 0 if const else channels
    return Material(name, maps, texels)


def _warn_if_stretched(raw: _Raw, width: int, height: int) -> None:
    """One warning line when a map is resampled to another aspect ratio (off by more than half a source texel)."""
    h, w = raw.data.shape[:2]
    if abs(w * height / width - h) <= 0.5 and abs(h * width / height - w) <= 0.5:
        return
    log.warning("%s: %s map is %dx%d, resampled to %dx%d, a different aspect ratio (stretched %.3gx across, "
                "%.3gx down)", printable(raw.source), raw.name, w, h, width, height, width / w, height / h)


def _resize(data: np.ndarray, width: int, height: int) -> np.ndarray:
    """Per-channel float resampling: box when shrinking both axes (no ringing), Lanczos otherwise."""
    if data.shape[:2] == (height, width):
        return data
    shrink = width <= data.shape[1] and height <= data.shape[0]
    method = Image.Resampling.BOX if shrink else Image.Resampling.LANCZOS
    planes = [Image.fromarray(np.ascontiguousarray(data[..., c])).resize((width, height), method)
              for c in range(data.shape[-1])]
    return np.clip(np.stack([np.asarray(p) for p in planes], axis=-1), 0, 1)


# ----------------------------------------------------------------------------------------------- mips


def _area_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Source indices and weights (n_out, taps) of exact area averaging; 2 taps of 1/2 for even sizes."""
    scale = n_in / n_out
    start = np.arange(n_out) * scale
    end = start + scale
    first = np.floor(start).astype(np.int64)
    taps = int((np.ceil(end - 1e-9) - first).max())
    idx = first[:, None] + np.arange(taps)
    weights = np.clip(np.minimum(idx + 1, end[:, None]) - np.maximum(idx, start[:, None]), 0, None) / scale
    return np.minimum(idx, n_in - 1), weights.astype(np.float32)


def _area_downsample(img: np.ndarray, height: int, width: int) -> np.ndarray:
    for axis, n_out in ((0, height), (1, width)):
        if img.shape[axis] == n_out:
            continue
        idx, weights = _area_taps(img.shape[axis], n_out)
        shape = [1] * img.ndim
        shape[axis] = n_out
        acc = np.zeros([n_out if a == axis else s for a, s in enumerate(img.shape)], np.float32)
        for k in range(idx.shape[1]):
            acc += np.take(img, idx[:, k], axis=axis) * weights[:, k].reshape(shape)
        img = acc
    return img


def _downsample_level(level: np.ndarray, maps: list[MapInfo]) -> np.ndarray:
    height, width = max(1, level.shape[0] // 2), max(1, level.shape[1] // 2)
    out = _area_downsample(level, height, width)
    for info in maps:
        if info.name == "normal" and info.constant is None:
            # Average unit vectors, not encodings, then renormalize: that is what a normal mip means.
            xy = level[..., info.offset : info.offset + 2]
            xyz = np.concatenate([xy, reconstruct_normal_z(xy)[..., None]], axis=-1) * 2 - 1
            xyz = _area_downsample(xyz, height, width)
            norm = np.linalg.norm(xyz, axis=-1, keepdims=True)
            xyz = np.where(norm > 1e-8, xyz / np.maximum(norm, 1e-8), np.array([0, 0, 1], np.float32))
            out[..., info.offset : info.offset + 2] = xyz[..., :2] * 0.5 + 0.5
    return out


def _build_mips(texels: np.ndarray, maps: list[MapInfo], count: int) -> list[np.ndarray]:
    """Float filtering from the unquantized previous level; each output level quantized to source depth."""
    scale = np.ones(texels.shape[-1], np.float32)
    for info in maps:
        if info.constant is None:
            scale[info.offset : info.offset + info.channels] = 65535 if info.bit_depth == 16 else 255
    chain, level = [texels], texels
    for _ in range(count - 1):
        level = _downsample_level(level, maps)
        chain.append(np.round(np.clip(level, 0, 1) * scale) / scale)
    return chain


# ----------------------------------------------------------------------------------------------- writing


def _to_image(data: np.ndarray, bit_depth: int) -> Image.Image:
    if bit_depth == 16 and data.shape[-1] == 1:
        return Image.fromarray(np.round(np.clip(data[..., 0], 0, 1) * 65535).astype(np.uint16))
    # Pillow cannot hold 16-bit multi-channel images (and reads such PNGs back as 8-bit), so those go 8-bit.
    u8 = np.round(np.clip(data, 0, 1) * 255).astype(np.uint8)
    return Image.fromarray(u8[..., 0] if u8.shape[-1] == 1 else np.ascontiguousarray(u8))


def _write_png(image: Image.Image, target: Path) -> Path:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    try:
        write_atomic(target, buf.getvalue())
    except OSError as exc:
        raise MaterialError(f"{target}: cannot write ({_one_line(exc)})") from exc
    return target
