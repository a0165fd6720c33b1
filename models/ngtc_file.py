"""The `.ngtc` file: a small fixed header, then a safetensors payload (see docs/ngtc-format.md).

    offset  size  field
    0       4     magic b"NGTC"
    4       4     format version, uint32 little-endian
    8       8     payload length in bytes, uint64 little-endian
    16      4     CRC-32 of the payload, uint32 little-endian
    20      4     reserved, zero
    24      ...   payload: a safetensors file; metadata JSON under __metadata__["ngtc"]

This is the format layer: torch-free, so `ngtc info` and the viewer's GPU path read files without
PyTorch. Loading checks everything once, in order, before any allocation a field could size: the
header; the metadata, decoded into typed structs (`Metadata`, `DecoderShape`, `MapInfo`: strict types,
the bounds of `models.spec`); the tensor table against the shapes the metadata implies; only then the
tensors. Any failure is one NgtcError naming the file. Writing is atomic (models/atomic.py).
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import msgspec
import numpy as np
from msgspec import Meta
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from . import atomic
from .decoder_shape import DecoderShape
from .layout import MapInfo, MapName, Text, check_layout
from .spec import (
    FORMAT_MAGIC,
    FORMAT_VERSION,
    MAX_CHANNELS,
    MAX_MAPS,
    MAX_SIZE,
    QUANT_BITS,
    QUANT_RANGE,
    mip_count,
    quant_levels,
)

HEADER = struct.Struct("<4sIQII")
assert HEADER.size == 24
MAX_MIPS = MAX_SIZE.bit_length()
PACKING = "little-endian: channel k of a cell at bit k * bits of its bytes"
# what files written before per-grid bits say: the same layout for their 4-bit codes
LEGACY_PACKING = "two codes per byte, even channel in the low nibble"


class NgtcError(Exception):
    """A `.ngtc` file that cannot be read or written; the message names the file."""


# ------------------------------------------------------------------------------------------ metadata

Psnr = Annotated[float, Meta(ge=0.0)]  # dB; +inf for a lossless map
PsnrPerMip = Annotated[list[Psnr], Meta(max_length=MAX_MIPS)]


class Quality(msgspec.Struct, forbid_unknown_fields=True):
    """PSNR over all channels and per map, at every mip, decoded from the file itself."""

    psnr: PsnrPerMip = msgspec.field(default_factory=list)
    psnr_maps: dict[MapName, PsnrPerMip] = msgspec.field(default_factory=dict)


class Info(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """How the file was made and what it measured (reported, not needed to decode)."""

    material: Text | None = None
    preset: Text | None = None
    method: Text | None = None
    seed: Annotated[int, Meta(ge=-(2**63), le=2**63 - 1)] | None = None
    steps: Annotated[int, Meta(ge=0, le=2**63 - 1)] | None = None
    seconds: Annotated[float, Meta(ge=0.0, le=1e9)] | None = None
    batch: Annotated[int, Meta(ge=1, lt=2**31)] | None = None
    device: Text | None = None
    torch: Text | None = None
    quality: Quality = msgspec.field(default_factory=Quality)
    stored_bytes: Annotated[int, Meta(ge=0)] = 0  # the file's own size, checked on load
    stored_bits_per_texel: Annotated[float, Meta(ge=0.0)] = 0.0

    def __post_init__(self) -> None:
        for name in ("material", "preset", "method", "device", "torch"):
            value = getattr(self, name)
            if value is not None and not value.isprintable():
                raise ValueError(f"info.{name} has control characters")


class Quantization(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """How grid codes map to features and bytes; each grid's bits are the synthesizer's (`g0_bits`, `g1_bits`)."""

    range: tuple[float, float]
    packing: Literal["little-endian: channel k of a cell at bit k * bits of its bytes",
                     "two codes per byte, even channel in the low nibble"] = PACKING
    # files written before per-grid bits name the one width there was (4 bits, 16 levels); new files omit them
    bits: Literal[4] | None = None
    levels: Literal[16] | None = None

    def __post_init__(self) -> None:
        if tuple(self.range) != QUANT_RANGE:
            raise ValueError(f"quantization range {list(self.range)}, expected {list(QUANT_RANGE)}")


GridDims = tuple[Annotated[int, Meta(ge=1, le=MAX_SIZE)], Annotated[int, Meta(ge=1, le=MAX_SIZE)],
                 Annotated[int, Meta(ge=1, le=64)]]


class Grids(msgspec.Struct, forbid_unknown_fields=True):
    g0: GridDims
    g1: GridDims


class Metadata(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The JSON document under __metadata__["ngtc"] (docs/ngtc-format.md, "Metadata")."""

    width: Annotated[int, Meta(ge=1, le=MAX_SIZE)]
    height: Annotated[int, Meta(ge=1, le=MAX_SIZE)]
    mips: Annotated[int, Meta(ge=1, le=MAX_MIPS)]
    channels: Annotated[int, Meta(ge=1, le=MAX_CHANNELS)]
    layout: Annotated[list[MapInfo], Meta(min_length=1, max_length=MAX_MAPS)]
    synthesizer: DecoderShape
    quantization: Quantization
    grids: Grids
    info: Info = msgspec.field(default_factory=Info)

    def __post_init__(self) -> None:
        if self.mips != mip_count(self.width, self.height):
            raise ValueError(f"mip count {self.mips} does not match {self.width}x{self.height}")
        check_layout(self.layout, self.channels)
        if self.quantization.bits is not None and self.synthesizer.grid_bits != (QUANT_BITS, QUANT_BITS):
            raise ValueError(f"quantization bits {self.quantization.bits}, but grids of "
                             f"{self.synthesizer.g0_bits} and {self.synthesizer.g1_bits} bits")
        expected = self.synthesizer.grid_shapes(self.width, self.height)
        if (tuple(self.grids.g0), tuple(self.grids.g1)) != expected:
            raise ValueError(f"grids {list(self.grids.g0)} and {list(self.grids.g1)} do not match the shape "
                             f"({list(expected[0])} and {list(expected[1])})")


# ------------------------------------------------------------------------------------------ in memory


@dataclass
class CompressedTexture:
    """Everything the decoder needs: what a `.ngtc` file holds, in memory."""

    width: int
    height: int
    mips: int
    layout: list[MapInfo]
    shape: DecoderShape
    g0: np.ndarray  # uint8 codes (rows0, cols0, C0), values 0 .. 2^shape.g0_bits - 1
    g1: np.ndarray  # uint8 codes (rows1, cols1, C1), values 0 .. 2^shape.g1_bits - 1
    weights: dict[str, np.ndarray]  # synthesizer weights, float16, in shape.weight_shapes order
    info: Info = field(default_factory=Info)

    @property
    def out_channels(self) -> int:
        return int(self.weights["output.bias"].shape[0])

    @property
    def name(self) -> str:
        return self.info.material or "<compressed texture>"

    @property
    def coded_grids(self) -> tuple[tuple[np.ndarray, int], tuple[np.ndarray, int]]:
        """(codes, bits per feature) of G0 and G1."""
        return (self.g0, self.shape.g0_bits), (self.g1, self.shape.g1_bits)


def pack_codes(codes: np.ndarray, bits: int = QUANT_BITS) -> np.ndarray:
    """(..., C) `bits`-bit codes -> (..., C * bits / 8) bytes, little-endian: code k at bit k * bits (4 bits:
    code 2j in the low nibble of byte j, 2j+1 in the high one)."""
    per = 8 // bits
    if codes.shape[-1] % per:
        raise ValueError(f"grid channels must be a multiple of {per} to pack {bits}-bit codes")
    if codes.max(initial=0) >= quant_levels(bits):
        raise ValueError("codes out of range")
    c = codes.astype(np.uint8).reshape(*codes.shape[:-1], -1, per)
    out = np.zeros(c.shape[:-1], np.uint8)
    for j in range(per):
        out |= c[..., j] << np.uint8(j * bits)
    return out


def unpack_codes(packed: np.ndarray, bits: int = QUANT_BITS) -> np.ndarray:
    """Inverse of pack_codes."""
    per, mask = 8 // bits, np.uint8(quant_levels(bits) - 1)
    out = np.empty(packed.shape + (per,), np.uint8)
    for j in range(per):
        out[..., j] = (packed >> np.uint8(j * bits)) & mask
    return out.reshape(*packed.shape[:-1], -1)


# ------------------------------------------------------------------------------------------ writing


def _metadata(ct: CompressedTexture) -> dict:
    """The metadata document, checked exactly as a reader will check it: never write what cannot be read."""
    g0, g1 = ct.shape.grid_shapes(ct.width, ct.height)
    meta = msgspec.to_builtins({
        "width": ct.width, "height": ct.height, "mips": ct.mips, "channels": ct.out_channels,
        "layout": list(ct.layout), "synthesizer": ct.shape, "grids": {"g0": g0, "g1": g1}, "info": ct.info,
        "quantization": Quantization(range=QUANT_RANGE)})
    try:
        msgspec.convert(meta, Metadata, strict=True)
    except msgspec.ValidationError as e:
        raise NgtcError(f"cannot store an invalid texture: {_one_line(e)}") from None
    return meta


def to_bytes(ct: CompressedTexture) -> bytes:
    """Serialise; info.stored_bytes and .stored_bits_per_texel describe the returned bytes themselves."""
    # safetensors stores an array's memory as it lies: a strided view (grids built by the encoder are) must be
    # made C-contiguous first, or the file holds its texels in the wrong order.
    tensors = {name: np.ascontiguousarray(pack_codes(codes, bits))
               for name, (codes, bits) in zip(("g0", "g1"), ct.coded_grids, strict=True)}
    tensors.update({f"synthesizer.{k}": np.ascontiguousarray(ct.weights[k], np.float16)
                    for k in ct.shape.weight_shapes(ct.out_channels)})
    size, pad = 0, 0
    for _ in range(16):  # the size is written inside the file it measures: grow to a fixed point
        ct.info.stored_bytes = size
        ct.info.stored_bits_per_texel = round(size * 8 / (ct.width * ct.height), 6)
        # json, not msgspec: a lossless map's PSNR is +inf, written as Infinity (and read back by json)
        meta = json.dumps(_metadata(ct), sort_keys=True) + " " * pad  # JSON allows trailing spaces
        payload = st_save(tensors, metadata={"ngtc": meta})
        data = HEADER.pack(FORMAT_MAGIC, FORMAT_VERSION, len(payload), zlib.crc32(payload), 0) + payload
        if len(data) == size:
            return data
        if len(data) < size:  # shorter digits this time: pad back to `size` (a multiple of 8 apart)
            pad += size - len(data)
        else:
            size = len(data)
    raise RuntimeError("stored size did not converge")  # cannot happen: the size only grows, by few steps


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, then rename: an existing file is never half-written."""
    try:
        atomic.write_atomic(path, data)
    except OSError as e:
        raise NgtcError(f"{path}: cannot write ({e.strerror})") from None


def save(ct: CompressedTexture, path: str | Path) -> int:
    """Write `ct` to `path` atomically; returns the stored size in bytes."""
    data = to_bytes(ct)
    write_atomic(Path(path), data)
    return len(data)


# ------------------------------------------------------------------------------------------ reading


def load(path: str | Path) -> CompressedTexture:
    path = Path(path)
    try:
        if not path.is_file():
            raise NgtcError(f"{path}: {'not a regular file' if path.exists() else 'no such file'}")
        data = path.read_bytes()
    except OSError as e:
        raise NgtcError(f"{path}: cannot read ({e.strerror})") from None
    return from_bytes(data, str(path))


def from_bytes(data: bytes, name: str = "<bytes>") -> CompressedTexture:
    try:
        return _read(data)
    except NgtcError as e:
        raise NgtcError(f"{name}: {e}") from None


def _read(data: bytes) -> CompressedTexture:
    payload = _check_header(data)
    header, meta_json = _safetensors_header(payload)
    meta = _decode_metadata(meta_json)
    expected = _expected_tensors(meta)
    _check_tensor_table(header, expected)
    try:
        tensors = st_load(payload)
    except Exception as e:  # safetensors raises its own error types on a malformed payload
        raise NgtcError(f"malformed payload ({_one_line(e)})") from None
    weights = {}
    for k in meta.synthesizer.weight_shapes(meta.channels):
        t = tensors[f"synthesizer.{k}"]
        _expect(bool(np.isfinite(t).all()), f"weight {k} is not finite")
        weights[k] = t
    _expect(meta.info.stored_bytes == len(data), f"recorded size {meta.info.stored_bytes} does not match the "
                                                 f"file's {len(data)} bytes")
    return CompressedTexture(meta.width, meta.height, meta.mips, meta.layout, meta.synthesizer,
                             *(unpack_codes(tensors[name], bits)
                               for name, bits in zip(("g0", "g1"), meta.synthesizer.grid_bits, strict=True)),
                             weights, meta.info)


def _check_header(data: bytes) -> bytes:
    if len(data) < HEADER.size:
        raise NgtcError(f"too short to be an .ngtc file ({len(data)} bytes)")
    magic, version, length, crc, reserved = HEADER.unpack_from(data)
    if magic != FORMAT_MAGIC:
        raise NgtcError("not an .ngtc file (bad magic)")
    if version > FORMAT_VERSION:
        raise NgtcError(f"written by a newer ngtc (format version {version}); this build reads version "
                        f"{FORMAT_VERSION}")
    if version < 1:
        raise NgtcError(f"unsupported format version {version}")
    if reserved != 0:
        raise NgtcError(f"reserved header bytes are not zero ({reserved:#x})")
    payload = data[HEADER.size:]
    if len(payload) < length:
        raise NgtcError(f"truncated ({len(data)} bytes, expected {HEADER.size + length})")
    if len(payload) > length:
        raise NgtcError(f"trailing data after the payload ({len(payload) - length} bytes)")
    if zlib.crc32(payload) != crc:
        raise NgtcError("corrupted (checksum mismatch)")
    return payload


class _TensorEntry(msgspec.Struct, forbid_unknown_fields=True):
    dtype: str
    shape: list[int]
    data_offsets: tuple[int, int]


def _safetensors_header(payload: bytes) -> tuple[dict[str, _TensorEntry], str]:
    """The safetensors tensor table and our metadata string, parsed without trusting either."""
    if len(payload) < 8:
        raise NgtcError("malformed payload (no safetensors header)")
    (n,) = struct.unpack_from("<Q", payload)
    if n > len(payload) - 8:
        raise NgtcError("malformed payload (safetensors header runs past the end)")
    try:
        table = msgspec.json.decode(payload[8:8 + n], type=dict[str, msgspec.Raw])
        extra = msgspec.json.decode(table.pop("__metadata__", b"{}"), type=dict[str, str])
        tensors = {k: msgspec.json.decode(v, type=_TensorEntry) for k, v in table.items()}
    except (msgspec.DecodeError, msgspec.ValidationError) as e:
        raise NgtcError(f"malformed payload ({_one_line(e)})") from None
    if set(extra) != {"ngtc"}:
        raise NgtcError("malformed payload (expected exactly one metadata entry, 'ngtc')")
    return tensors, extra["ngtc"]


def _reject_constant(token: str) -> float:
    if token == "Infinity":
        return math.inf  # a lossless map's PSNR
    raise ValueError(f"{token} is not allowed")


def _decode_metadata(text: str) -> Metadata:
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise NgtcError("metadata JSON is nested too deeply") from None
    except ValueError as e:
        raise NgtcError(f"metadata is not valid JSON ({_one_line(e)})") from None
    try:
        return msgspec.convert(obj, Metadata, strict=True)
    except msgspec.ValidationError as e:
        raise NgtcError(f"invalid metadata: {_one_line(e)}") from None


def _expected_tensors(meta: Metadata) -> dict[str, tuple[str, tuple[int, ...]]]:
    out = {name: ("U8", (*g[:2], g[2] * bits // 8))
           for name, g, bits in zip(("g0", "g1"), meta.synthesizer.grid_shapes(meta.width, meta.height),
                                    meta.synthesizer.grid_bits, strict=True)}
    for k, shape in meta.synthesizer.weight_shapes(meta.channels).items():
        out[f"synthesizer.{k}"] = ("F16", shape)
    return out


def _check_tensor_table(table: dict[str, _TensorEntry], expected: dict[str, tuple[str, tuple[int, ...]]]) -> None:
    missing, extra = sorted(set(expected) - set(table)), sorted(set(table) - set(expected))
    _expect(not missing, f"missing tensor(s) {', '.join(missing[:4])}")
    _expect(not extra, f"unexpected tensor(s) {', '.join(extra[:4])}")
    for k, (dtype, shape) in expected.items():
        t = table[k]
        _expect(t.dtype == dtype and tuple(t.shape) == shape,
                f"tensor {k} is {t.dtype} {list(t.shape)}, expected {dtype} {list(shape)}")


def _expect(cond: bool, msg: str) -> None:
    if not cond:
        raise NgtcError(msg)


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:300] or type(e).__name__
