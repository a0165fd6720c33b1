"""A library's output folder: `library.json` (read on a resumed run, rewritten atomically after every material),
the files the tasks return, and the temporary files an interrupted writer can leave."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from .atomic import writable_folder, write_atomic
from .eval_common import jsonable  # non-finite floats (a lossless PSNR) to null: JSON has none

LIBRARY_JSON = "library.json"
LIBRARY_FORMAT = "ngtc-library"
LIBRARY_VERSION = 1
STATUSES = ("ok", "failed", "pending")

log = logging.getLogger(__name__)


class LibraryError(ValueError):
    """An output folder that cannot hold a library: one line for the user."""


def prepare(out: Path) -> None:
    """Create the output folder, check it can be written, and remove what a dead writer left half done."""
    writable_folder(out, "library", LibraryError)
    remove_partial(out)


def remove_partial(out: Path) -> list[Path]:
    """Temporary files of `atomic.write_atomic` (".<name>.<random>.tmp") in the folder and its subfolders: a
    write that never finished. Only called while nothing is writing there."""
    stale = [p for p in out.rglob(".*.tmp") if p.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def read_entries(out: Path) -> dict[str, dict[str, Any]]:
    """The materials an earlier run recorded, by name; nothing when there is no readable library.json."""
    path = out / LIBRARY_JSON
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("%s: unreadable (%s); every material is compressed again", path, exc)
        return {}
    if not isinstance(doc, dict) or doc.get("format") != LIBRARY_FORMAT:
        log.warning("%s: not an %s file; every material is compressed again", path, LIBRARY_FORMAT)
        return {}
    return {e["name"]: e for e in doc.get("materials", []) if isinstance(e, dict) and isinstance(e.get("name"), str)}


def intact(out: Path, entry: dict[str, Any] | None, settings_key: dict[str, Any]) -> dict[str, Any] | None:
    """`entry` when it is a completed material made with these settings whose file is still what it recorded."""
    if not entry or entry.get("status") != "ok" or entry.get("settings") != settings_key:
        return None
    try:
        data = (out / entry["file"]).read_bytes()
    except (OSError, KeyError, TypeError):
        return None
    return entry if hashlib.sha256(data).hexdigest() == entry.get("sha256") else None


def write_files(out: Path, files: dict[str, bytes]) -> None:
    """A task's outputs, each atomically; the .ngtc last, so a material's file never exists without the rest."""
    for rel in sorted(files, key=lambda r: r.endswith(".ngtc")):
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, files[rel])


def write_library(out: Path, doc: dict[str, Any]) -> None:
    """library.json, atomically: a reader (or a run resumed after Ctrl-C) always finds a whole one."""
    entries = doc["materials"]
    doc["updated"] = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    doc["summary"] = {status: sum(e["status"] == status for e in entries) for status in STATUSES}
    doc["summary"].update(materials=len(entries), skipped=sum(bool(e.get("skipped")) for e in entries))
    write_atomic(out / LIBRARY_JSON, (json.dumps(jsonable(doc), indent=1, allow_nan=False) + "\n").encode())


def new_doc(command: str, settings_key: dict[str, Any], cluster: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {"format": LIBRARY_FORMAT, "version": LIBRARY_VERSION, "command": command, "settings": settings_key,
            "cluster": cluster, "materials": entries}
