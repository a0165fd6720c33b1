"""The `.ngtc` file: a small fixed header, then a safetensors payload (see docs/ngtc-format.md).

    offset  size  field
    0       4     magic b"NGTC"
    4       4     format version, uint32 little-endian
    8       8     payload length in bytes, uint64 little-endian
    16      4     CRC-32 of the payload, uint32 little-endian
    20      4     reserved, zero
    24      ...   payload: a safetensors file; metadata JSON under __metadata__["ngtc"]

Loading checks every field and the consistency of metadata and tensors, and raises NgtcError with a
one-line message naming the file. Writing is atomic: a temporary file, then a rename.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from . import atomic
from .compression_model import CompressedTexture, grid_shape
from .grid_sampler import FEATURES_PER_CHANNEL
from .quantization import pack_nibbles, unpack_nibbles
from .spec import FORMAT_MAGIC, FORMAT_VERSION, QUANT_BITS, QUANT_LEVELS, QUANT_RANGE, mip_count

HEADER = struct.Struct("<4sIQII")
assert HEADER.size == 24


class NgtcError(Exception):
    """A `.ngtc` file that cannot be read or written; the message names the file."""


def synthesizer_shapes(s: dict, out_channels: int) -> dict[str, tuple[int, ...]]:
    """Weight names and shapes of a TextureSynthesizer with this configuration."""
    hidden, pe = s["hidden_dim"], 4 * s["positional_encoding_levels"]
    in_dim = s["g0_channels"] * FEATURES_PER_CHANNEL[g0_sampling(s)] + s["g1_channels"] + pe + 1
    shapes = {"input.weight": (hidden, in_dim), "input.bias": (hidden,)}
    for i in range(s["num_residual_blocks"]):
        shapes[f"blocks.{i}.linear.weight"] = (hidden, hidden)
        shapes[f"blocks.{i}.linear.bias"] = (hidden,)
    shapes["output.weight"] = (out_channels, hidden)
    shapes["output.bias"] = (out_channels,)
    return shapes


def g0_sampling(s: dict) -> str:
    """How G0 is read: "corners" (default since it was introduced) or "bilinear" (files without the key)."""
    mode = s.get("g0_sampling", "bilinear")
    if mode not in FEATURES_PER_CHANNEL:
        raise NgtcError(f"unknown g0_sampling {mode!r}")
    return mode


def _metadata(ct: CompressedTexture) -> dict:
    return {
        "width": ct.width, "height": ct.height, "mips": ct.mips, "layout": ct.layout,
        "channels": ct.out_channels, "synthesizer": ct.synthesizer,
        "quantization": {"bits": QUANT_BITS, "levels": QUANT_LEVELS, "range": list(QUANT_RANGE),
                         "packing": "two codes per byte, even channel in the low nibble"},
        "grids": {"g0": list(ct.g0.shape), "g1": list(ct.g1.shape)},
        "info": ct.info,
    }


def to_bytes(ct: CompressedTexture) -> bytes:
    """Serialise; info["stored_bytes"] and ["stored_bits_per_texel"] describe the returned bytes themselves."""
    # safetensors stores an array's memory as it lies: a strided view (grids built by the encoder are) must be
    # made C-contiguous first, or the file holds its texels in the wrong order.
    tensors = {"g0": np.ascontiguousarray(pack_nibbles(ct.g0)), "g1": np.ascontiguousarray(pack_nibbles(ct.g1))}
    tensors.update({f"synthesizer.{k}": np.ascontiguousarray(v, np.float16) for k, v in ct.weights.items()})
    size, pad = 0, 0
    for _ in range(16):  # the size is written inside the file it measures: grow to a fixed point
        ct.info["stored_bytes"] = size
        ct.info["stored_bits_per_texel"] = round(size * 8 / (ct.width * ct.height), 6)
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


def load(path: str | Path) -> CompressedTexture:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise NgtcError(f"{path}: cannot read ({e.strerror})") from None
    return from_bytes(data, str(path))


def from_bytes(data: bytes, name: str = "<bytes>") -> CompressedTexture:
    def fail(msg: str) -> NgtcError:
        return NgtcError(f"{name}: {msg}")

    if len(data) < HEADER.size:
        raise fail(f"too short to be an .ngtc file ({len(data)} bytes)")
    magic, version, length, crc, _ = HEADER.unpack_from(data)
    if magic != FORMAT_MAGIC:
        raise fail("not an .ngtc file (bad magic)")
    if version > FORMAT_VERSION:
        raise fail(f"written by a newer ngtc (format version {version}); this build reads version {FORMAT_VERSION}")
    if version < 1:
        raise fail(f"unsupported format version {version}")
    payload = data[HEADER.size:]
    if len(payload) < length:
        raise fail(f"truncated ({len(data)} bytes, expected {HEADER.size + length})")
    if len(payload) > length:
        raise fail(f"trailing data after the payload ({len(payload) - length} bytes)")
    if zlib.crc32(payload) != crc:
        raise fail("corrupted (checksum mismatch)")
    try:
        tensors = st_load(payload)
        meta = json.loads(_safetensors_metadata(payload)["ngtc"])
        return _validate(meta, tensors, data)
    except NgtcError as e:
        raise fail(str(e)) from None
    except (KeyError, TypeError, ValueError, json.JSONDecodeError) as e:
        raise fail(f"inconsistent contents ({type(e).__name__}: {e})") from None
    except Exception as e:  # safetensors raises its own error types on a malformed payload
        raise fail(f"malformed payload ({e})") from None


def _safetensors_metadata(payload: bytes) -> dict:
    (n,) = struct.unpack_from("<Q", payload)
    return json.loads(payload[8:8 + n])["__metadata__"]


def _expect(cond: bool, msg: str) -> None:
    if not cond:
        raise NgtcError(msg)


def _validate(meta: dict, tensors: dict[str, np.ndarray], data: bytes) -> CompressedTexture:
    w, h, s = int(meta["width"]), int(meta["height"]), meta["synthesizer"]
    _expect(w > 0 and h > 0, f"bad size {w}x{h}")
    _expect(meta["mips"] == mip_count(w, h), f"mip count {meta['mips']} does not match {w}x{h}")
    q = meta["quantization"]
    _expect(q["bits"] == QUANT_BITS and q["levels"] == QUANT_LEVELS and tuple(q["range"]) == QUANT_RANGE,
            f"unsupported quantization {q}")
    channels = int(meta["channels"])
    net = [m for m in meta["layout"] if m.get("constant") is None]
    _expect(sum(m["channels"] for m in net) == channels, "layout channels do not add up to the synthesizer's")
    grids = {}
    for g in ("g0", "g1"):
        rows, cols = grid_shape(w, h, s[f"{g}_cell"])
        shape = (rows, cols, s[f"{g}_channels"] // 2)
        t = tensors[g]
        _expect(t.dtype == np.uint8 and t.shape == shape, f"grid {g} has shape {t.shape}, expected {shape}")
        grids[g] = unpack_nibbles(t)
    weights = {}
    for k, shape in synthesizer_shapes(s, channels).items():
        t = tensors[f"synthesizer.{k}"]
        _expect(t.dtype == np.float16 and t.shape == shape, f"weight {k} has shape {t.shape}, expected {shape}")
        _expect(bool(np.isfinite(t).all()), f"weight {k} is not finite")
        weights[k] = t
    _expect(len(tensors) == 2 + len(weights), "unexpected extra tensors")
    info = meta.get("info", {})
    _expect(info.get("stored_bytes") == len(data), "recorded size does not match the file")
    return CompressedTexture(w, h, int(meta["mips"]), meta["layout"], s, grids["g0"], grids["g1"], weights, info)
