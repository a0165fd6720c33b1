"""`ngtc compress` of a library: one Ray task per material, one `.ngtc` each plus `library.json` (and
`library.html`) in the output folder.

Resumable: a material whose `.ngtc` is intact and was made with the same settings from a material with the same
fingerprint is kept. Safe: only this driver writes, each file atomically, and `library.json` is rewritten as
materials finish and at the end, so Ctrl-C leaves every completed material and a whole `library.json` (a killed
driver: the materials of its last WRITE_EVERY seconds are done again on resuming).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.markup import escape

from . import cluster
from . import library_store as store
from .library import Item, Settings, compress_task, discover, failed_entry, one_line
from .library_html import write_compress_page
from .library_progress import LibraryProgress

# library.json is rewritten at most this often while tasks finish: with 1000 materials it takes ~0.1 s, a
# ceiling of ~10 materials a second on the driver if done after each (see docs/library.md).
WRITE_EVERY = 2.0


@dataclass(frozen=True)
class RayOptions:
    address: str | None = None  # join this cluster; None: start a local Ray
    cpus: int | None = None  # a local Ray's CPUs (default: all of this machine's)
    cpus_per_task: int | None = None  # torch threads per task (default: the cores split between the tasks)
    gpus_per_task: float | None = None  # default: 1 when the cluster has GPUs, else none
    device: str | None = None  # cpu or cuda; default: cuda when the task gets a GPU
    retries: int = cluster.RETRIES  # runs of a task whose worker died, after the first


def compress_library(paths: Sequence[str | Path], out: str | Path, settings: Settings, ray: RayOptions,
                     command: str) -> dict[str, Any]:
    """Compress every material below `paths` into `out`; returns library.json's document."""
    out = Path(out)
    cluster.check_address(ray.address)  # before any file is written
    items = discover(paths, exclude=out)
    if not items:
        raise store.LibraryError(f"no materials in {', '.join(map(str, paths))}")
    store.prepare(out)
    earlier = store.read_entries(out)
    entries, todo = plan(out, items, settings, earlier)
    where = cluster.start(ray.address, ray.cpus)
    doc = None
    try:
        res = cluster.task_resources(where, len(todo), ray.cpus_per_task, ray.gpus_per_task, ray.device)
        described = f"{where.describe()}; a task: {res.cpus} CPU, {res.gpus:g} GPU ({res.device})"
        doc = store.new_doc(command, settings.key(), described, list(entries.values()))
        store.write_library(out, doc)
        jobs = [cluster.Job(item.name, compress_task, (item, settings, kept, res.cpus, res.device), res)
                for item, kept in todo]
        with LibraryProgress(len(jobs), "compress") as progress:
            progress.console.print(escape(f"{len(items)} materials, {len(jobs)} to do on {doc['cluster']}"))
            collect = _collector(out, doc, entries, settings, progress)
            cluster.run(jobs, collect, progress.update, retries=ray.retries)
    finally:
        _close(out, doc, entries, where)
    return doc


def plan(out: Path, items: list[Item], settings: Settings, earlier: dict[str, dict[str, Any]]
         ) -> tuple[dict[str, dict[str, Any]], list[tuple[Item, dict[str, Any] | None]]]:
    """Every material's entry before the run (an intact earlier one, or pending; a discovery error: failed),
    the materials earlier runs recorded that are not among `items` after them; and the tasks to run, each with
    the earlier entry it may keep."""
    key = settings.key()
    entries: dict[str, dict[str, Any]] = {}
    todo = []
    for item in items:
        if item.error:
            entries[item.name] = failed_entry(item, settings, item.error)
            continue
        kept = store.intact(out, earlier.get(item.name), key)
        entries[item.name] = kept or failed_entry(item, settings, "not compressed yet", status="pending")
        todo.append((item, kept))
    for name, entry in earlier.items():
        entries.setdefault(name, entry)  # other materials of the folder, from earlier runs
    return entries, todo


def _collector(out: Path, doc: dict[str, Any], entries: dict[str, dict[str, Any]], settings: Settings,
               progress: LibraryProgress) -> cluster.OnResult:
    """What happens when a task is done: its files written, its entry recorded, and library.json rewritten if
    it was not in the last WRITE_EVERY seconds (and whatever happens, once more at the end: `_close`)."""

    written = [time.monotonic()]  # when library.json was last written

    def collect(job: cluster.Job, result: dict[str, Any] | None, error: BaseException | None) -> bool:
        item = job.args[0]
        if error is not None:  # the worker died on every try, or Ray itself failed
            entry = failed_entry(item, settings, f"{type(error).__name__}: {one_line(error)}")
        else:
            entry = result["entry"]
            try:
                store.write_files(out, result["files"])
            except OSError as exc:
                entry = failed_entry(item, settings, f"cannot write its files: {one_line(exc)}")
        entries[item.name] = entry
        if time.monotonic() - written[0] >= WRITE_EVERY:
            doc["materials"] = list(entries.values())
            store.write_library(out, doc)
            written[0] = time.monotonic()
        progress.line(describe(entry))
        return entry["status"] == "ok"

    return collect


def describe(entry: dict[str, Any]) -> str:
    """One line about a finished material."""
    name = entry["name"]
    if entry["status"] != "ok":
        return f"{name}: failed: {entry['reason']}"
    if entry.get("skipped"):
        return f"{name}: unchanged since the last run, kept {entry['file']}"
    return (f"{name}: {entry['bits_per_texel']:.3f} bpp, PSNR {entry['psnr'][0]:.2f} dB at mip 0, "
            f"{entry['compress_seconds']:.1f} s on {entry['device']} (node {entry['node']})")


def _close(out: Path, doc: dict[str, Any] | None, entries: dict[str, dict[str, Any]], where: cluster.Cluster) -> None:
    """However the run ends (done, Ctrl-C, an error): a whole library.json and page, then Ray stopped."""
    try:
        if doc is not None:
            doc["materials"] = list(entries.values())
            store.write_library(out, doc)
            write_page(out, doc)
        store.remove_partial(out)
    finally:
        cluster.stop(where)


def write_page(out: Path, doc: dict[str, Any]) -> None:
    write_compress_page(out, doc)


def summary(doc: dict[str, Any], out: Path) -> str:
    s = doc["summary"]
    return (f"{s['materials']} materials: {s['ok']} ok ({s['skipped']} kept from an earlier run), {s['failed']} "
            f"failed, {s['pending']} not done; wrote {out / store.LIBRARY_JSON} and {out / 'library.html'}")
