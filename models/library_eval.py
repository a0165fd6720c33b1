"""`ngtc eval` of a library on Ray: every ASTC encode and every neural preset of every material is a task, then
each material's report (`models.evaluate`, reusing what the tasks made) is one, then the library report.

The report folder holds one folder per material (`<out>/<name>/`: report.md/json, RD plot, comparison images,
`astc/`, `ngtc/`, as `ngtc eval` of that material alone writes) and, next to them, the library's report
(`models.library_report`) and `library.html`. Encode and fit tasks write into the report folder (on a
multi-node cluster it must be a folder every node sees, like the materials); each of their files is written
atomically and checked before reuse, so a task retried after its worker died starts again cleanly.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from . import astc, cluster
from . import evaluate as ev
from .library import Item, discover, failure_reason, thumbnails
from .library_progress import LibraryProgress
from .library_report import shown_setting, write_library_report
from .library_run import RayOptions
from .library_store import remove_partial, write_files
from .ngtc_file import load


def evaluate_library(paths: Sequence[str | Path], opts: ev.EvalOptions, ray: RayOptions, command: str
                     ) -> dict[str, Any]:
    """Evaluate every material below `paths` into `opts.out`; returns the library report (report.json)."""
    cluster.check_address(ray.address)  # before any file is written
    items = discover(paths, exclude=opts.out)
    ev.prepare_out(opts.out)
    where = cluster.start(ray.address, ray.cpus)
    try:
        fit = cluster.task_resources(where, len(items) * len(opts.presets), ray.cpus_per_task, ray.gpus_per_task,
                                     ray.device)
        opts = dataclasses.replace(opts, device=fit.device)  # one device kind in every cache key
        failed = {i.name: i.error for i in items if i.error}
        run = _Run(items, opts, fit, failed, command, where.describe())
        _encode_and_fit(run, ray.retries)
        reports = _reports(run, ray.retries)
        reports = {i.name: reports[i.name] for i in items if i.name in reports}  # in the library's order
        sources = {i.name: i.source for i in items}
        failed_at = {name: {"source": sources[name], "reason": reason} for name, reason in run.failed.items()}
        return write_library_report(opts.out, reports, failed_at, run.meta())
    finally:
        remove_partial(opts.out)
        cluster.stop(where)


@dataclasses.dataclass
class _Run:
    items: list[Item]
    opts: ev.EvalOptions
    fit: cluster.Resources  # a neural task's resources (a GPU when the cluster has them)
    failed: dict[str, str]  # material -> one-line reason
    command: str
    cluster: str

    def todo(self) -> list[Item]:
        return [i for i in self.items if i.name not in self.failed]

    def options(self, item: Item) -> ev.EvalOptions:
        return dataclasses.replace(self.opts, out=self.opts.out / item.name)

    def meta(self) -> dict[str, Any]:
        return {"command": self.command, "cluster": self.cluster, "task": dataclasses.asdict(self.fit)}


def _encode_and_fit(run: _Run, retries: int) -> None:
    """Every neural preset (the longest tasks, first) and every ASTC setting of every material, as tasks."""
    jobs = [(item, cluster.Job(f"{item.name}: neural {preset}", neural_task,
                               (item.source, run.options(item), preset, run.fit.cpus), run.fit))
            for item in run.todo() for preset in run.opts.presets]
    jobs += [(item, cluster.Job(f"{item.name}: ASTC {block} {quality} {packing}", astc_task,
                                (item.source, run.options(item), block, quality, packing), cluster.Resources(1)))
             for item in run.todo() for quality, packing in ev.astc_curves(run.opts) for block in run.opts.blocks]
    _run_jobs(run, jobs, "eval: encode and fit", retries)


def _reports(run: _Run, retries: int) -> dict[str, dict[str, Any]]:
    """Each material's report (measured from the files the tasks made), as tasks; returns them by material."""
    reports: dict[str, dict[str, Any]] = {}
    jobs = [(item, cluster.Job(f"{item.name}: report", report_task,
                               (item.source, run.options(item), run.command, run.fit.cpus), run.fit))
            for item in run.todo()]
    _run_jobs(run, jobs, "eval: measure", retries, reports)
    return reports


def _run_jobs(run: _Run, jobs: list[tuple[Item, cluster.Job]], title: str, retries: int,
              reports: dict[str, dict[str, Any]] | None = None) -> None:
    """Run (material, job) pairs; a material with a failed job is failed, with that job's reason."""
    owner = {job.key: item for item, job in jobs}
    with LibraryProgress(len(jobs), title) as progress:

        def collect(job: cluster.Job, result: dict[str, Any] | None, error: BaseException | None) -> bool:
            item = owner[job.key]
            reason = f"{type(error).__name__}: {' '.join(str(error).split())}" if error else result.get("error")
            if reason:
                run.failed.setdefault(item.name, f"{job.key.split(': ', 1)[-1]}: {reason}")
                progress.line(f"{job.key}: failed: {reason}")
                return False
            if reports is not None:
                write_files(run.opts.out, result["files"])
                reports[item.name] = result["report"]
            progress.line(f"{job.key}: {result['line']}")
            return True

        cluster.run([job for _, job in jobs], collect, progress.update, retries=retries)


# ------------------------------------------------------------------------------------------ the tasks


def _material(source: str, opts: ev.EvalOptions):
    """The material as `evaluate` reads it (cropped as asked), its fingerprint and its file-name base."""
    material = ev.load_materials([source], opts.crop)[0][0]
    return material, astc.material_fingerprint(material), ev.slug(material.name)


def neural_task(source: str, opts: ev.EvalOptions, preset: str, threads: int) -> dict[str, Any]:
    """Fit (or reuse) one preset's .ngtc into the material's report folder."""
    torch.set_num_threads(threads)
    try:
        material, fingerprint, base = _material(source, opts)
        s = ev.run_neural(material, fingerprint, preset, opts, opts.out / "ngtc" / f"{base}_{preset}.ngtc")
    except Exception as exc:  # noqa: BLE001 - the material fails, the library goes on
        return {"error": failure_reason(exc)}
    how = "reused" if s.reused else f"{s.details['steps']} steps in {s.details['train_seconds']} s"
    return {"line": f"{s.bits_per_texel:.3f} bpp ({how})"}


def astc_task(source: str, opts: ev.EvalOptions, block: str, quality: str, packing: str) -> dict[str, Any]:
    """Encode (or reuse) one ASTC setting into the material's report folder (astcenc in its own process)."""
    try:
        material, fingerprint, base = _material(source, opts)
        folder = opts.out / "astc" / base / astc.folder_name(block, quality, packing)
        s = ev.run_astc(material, fingerprint, block, quality, packing, folder)
    except Exception as exc:  # noqa: BLE001 - the material fails, the library goes on
        return {"error": failure_reason(exc)}
    how = "reused" if s.reused else f"encoded in {s.details['encode_seconds']} s"
    return {"line": f"{s.bits_per_texel:.3f} bpp ({how})"}


def report_task(source: str, opts: ev.EvalOptions, command: str, threads: int) -> dict[str, Any]:
    """One material's report folder (everything reused from the tasks before: it only measures and draws), and
    reference | neural thumbnails of the preset its comparison images show."""
    torch.set_num_threads(threads)
    try:
        report = ev.evaluate([source], opts, command, progress=False)["materials"][0]
        material = _material(source, opts)[0]
        shown = shown_setting(report)
        ct = load(opts.out / shown["files"][0])
        files = thumbnails(opts.out.name, material, ct, opts.device)
    except Exception as exc:  # noqa: BLE001 - the material fails, the library goes on
        return {"error": failure_reason(exc)}
    bd = report["bd"][0]["bd_rate_percent"] if report["bd"] else None
    line = f"report.md, RD plot, {len(report['compare'])} comparison images" + (
        f"; BD-rate at mip 0 {bd:+.1f}% against {report['bd_anchor']}" if bd is not None else "")
    return {"report": report, "files": files, "line": line}
