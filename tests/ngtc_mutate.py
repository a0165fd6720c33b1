"""Structure-aware editing of `.ngtc` files for the hostile-input tests: take a real file apart (header,
safetensors table, metadata JSON, tensor bytes), change any piece, and put it back together with a valid
checksum, so that only the reader's validation stands between the edit and the decoders."""

from __future__ import annotations

import copy
import json
import struct
import zlib
from dataclasses import dataclass

from models.ngtc_file import HEADER
from models.spec import FORMAT_MAGIC, FORMAT_VERSION


@dataclass
class Parts:
    meta: dict  # the ngtc metadata document
    table: dict  # safetensors tensor table: name -> {dtype, shape, data_offsets}
    blob: bytes  # the tensors' bytes
    size: int = 0  # of the file they came from

    def copy(self) -> Parts:
        return Parts(copy.deepcopy(self.meta), copy.deepcopy(self.table), self.blob, self.size)


def split(data: bytes) -> Parts:
    payload = data[HEADER.size:]
    (n,) = struct.unpack_from("<Q", payload)
    table = json.loads(payload[8:8 + n])
    meta = json.loads(table.pop("__metadata__")["ngtc"])
    return Parts(meta, table, payload[8 + n:], len(data))


def build(parts: Parts, meta_text: str | None = None, reserved: int = 0) -> bytes:
    """Bytes of a file with these parts (meta_text: raw metadata JSON instead of parts.meta), CRC resealed.

    Like a careful forger, it also rewrites info.stored_bytes to the new file's size (unless the edit was
    to that field), so that an edit is judged by the field it changed, not by the size check."""
    if meta_text is not None:
        return _assemble(parts, meta_text, reserved)
    info = parts.meta.get("info")
    fix = isinstance(info, dict) and type(info.get("stored_bytes")) is int and info["stored_bytes"] == parts.size
    data, pad = _assemble(parts, json.dumps(parts.meta), reserved), 0
    for _ in range(8):
        if not fix or info["stored_bytes"] == len(data):
            return data
        if len(data) < info["stored_bytes"]:
            pad += info["stored_bytes"] - len(data)
        info["stored_bytes"] = len(data)
        data = _assemble(parts, json.dumps(parts.meta) + " " * pad, reserved)
    return data


def _assemble(parts: Parts, text: str, reserved: int) -> bytes:
    head = json.dumps({**parts.table, "__metadata__": {"ngtc": text}}).encode()
    head += b" " * (-len(head) % 8)
    return seal(struct.pack("<Q", len(head)) + head + parts.blob, reserved)


def seal(payload: bytes, reserved: int = 0) -> bytes:
    return HEADER.pack(FORMAT_MAGIC, FORMAT_VERSION, len(payload), zlib.crc32(payload), reserved) + payload


def with_meta(data: bytes, path: tuple, value) -> bytes:
    """The file with the metadata field at `path` (keys and list indices) set to `value` (DELETE removes it)."""
    parts = split(data)
    set_path(parts.meta, path, value)
    return build(parts)


DELETE = object()


def set_path(doc, path: tuple, value) -> None:
    *head, last = path
    for key in head:
        doc = doc[key]
    if value is DELETE:
        del doc[last]
    else:
        doc[last] = value


def leaf_paths(doc, prefix: tuple = ()) -> list[tuple]:
    """Every path in a JSON document: containers and leaves, parents before children."""
    out = [prefix] if prefix else []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += leaf_paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += leaf_paths(v, (*prefix, i))
    return out
