"""Benchmarks of libraries on Ray (issue 12): `python -m models.bench_library overhead|nodes|kill`.

- overhead: the same sets at a fixed step budget compressed back to back in one process (torch's threads), then
  as a library on a local Ray (start and stop included); the ratio Ray / back to back (target <= 1.15).
- nodes: two Ray nodes on this machine (`ray start`, each limited to one CPU) against one such node, the same
  library each time; the ratio two / one (target <= 0.6). Nodes are stopped by the PID of their `ray start`.
- kill: a library on a local Ray while a worker is killed (SIGKILL) in the middle of a task: every material
  must still end ok, once, with a valid .ngtc, and nothing partial left.

Each prints its numbers and writes JSON (default bench/library_<which>.json) with the load average before and
after and, per timed run, the CPU time other processes took meanwhile (`cpu.others_share`, models/cpu_watch.py):
quote them only from a machine that was otherwise idle (load below 1 before, others' share near 0).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import torch

from . import ngtc_file
from .atomic import write_atomic
from .cluster import _token_auth_like_ray_start
from .cpu_watch import CpuWatch
from .library import Settings, compress, discover, load
from .library_run import WRITE_EVERY, RayOptions, compress_library
from .library_store import write_files, write_library

DATA = Path(__file__).resolve().parents[1] / ".cache" / "data"
SETS = ("rocks", "tiles", "eval/qt3d-walnut", "eval/qt3d-ceramic-diamond")
TARGETS = {"overhead": 1.15, "nodes": 0.6}


def load_average() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def serial(sources: list[str], settings: Settings) -> dict[str, Any]:
    """Every material loaded and compressed back to back in this process, with torch's own threads."""
    per, start = {}, time.perf_counter()
    with CpuWatch() as cpu:
        for source in sources:
            t0 = time.perf_counter()
            compress(load(source, settings), settings)
            per[Path(source).name] = round(time.perf_counter() - t0, 2)
    return {"seconds": round(time.perf_counter() - start, 2), "per_material": per, "threads": torch.get_num_threads(),
            "cpu": cpu.result()}


def on_ray(sources: list[str], settings: Settings, ray: RayOptions, out: Path) -> dict[str, Any]:
    """The same materials as a library (Ray's start and stop included); per material: seconds in its task."""
    start = time.perf_counter()
    with CpuWatch() as cpu:
        doc = compress_library(sources, out, settings, ray, "bench")
    seconds = time.perf_counter() - start
    entries = doc["materials"]
    return {"seconds": round(seconds, 2), "cluster": doc["cluster"], "status": doc["summary"], "cpu": cpu.result(),
            "per_material": {e["name"]: e.get("compress_seconds") for e in entries},
            "fit_seconds": {e["name"]: e.get("fit_seconds") for e in entries}}


def overhead(sources: list[str], settings: Settings, work: Path) -> dict[str, Any]:
    result = {"serial": serial(sources, settings)}
    result["ray"] = on_ray(sources, settings, RayOptions(), work / "ray")
    result["ratio"] = round(result["ray"]["seconds"] / result["serial"]["seconds"], 3)
    result["driver"] = driver_cost(work / "ray", 1000)
    return result


def driver_cost(out: Path, materials: int, rounds: int = 20) -> dict[str, Any]:
    """What the driver does per finished material in a library of `materials`: its files, written each time,
    and library.json (that long), written at most every WRITE_EVERY seconds. Their ceiling on materials a
    second, however many nodes there are."""
    doc = json.loads((out / "library.json").read_text())
    entry = next(e for e in doc["materials"] if e["status"] == "ok")
    files = {entry["file"]: (out / entry["file"]).read_bytes(),
             **{rel: (out / rel).read_bytes() for rel in entry["thumbnails"].values()}}
    doc["materials"] = [dict(entry, name=f"m{i}") for i in range(materials)]
    files_s = _timed(lambda: write_files(out, files), rounds)
    json_s = _timed(lambda: write_library(out, doc), rounds)
    busy = 1 - json_s / WRITE_EVERY  # of each second, what library.json leaves for the files
    return {"library_materials": materials, "files_seconds": round(files_s, 4), "library_json_seconds":
            round(json_s, 4), "write_every_seconds": WRITE_EVERY, "materials_per_second": round(busy / files_s, 1)}


def _timed(fn, rounds: int) -> float:
    start = time.perf_counter()
    for _ in range(rounds):
        fn()
    return (time.perf_counter() - start) / rounds


# ------------------------------------------------------------------------------------------ nodes


class RayNode:
    """A Ray node of this machine (`ray start --block`), stopped by signalling that process (never `ray stop`,
    which would stop every Ray of this user)."""

    def __init__(self, args: list[str], log: Path):
        ray = str(Path(sys.executable).with_name("ray"))
        self.log = log.open("w")
        self.proc = subprocess.Popen([ray, "start", *args, "--block"], stdout=self.log, stderr=subprocess.STDOUT,
                                     env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_nodes(address: str, count: int, timeout: float = 120) -> None:
    """Until the cluster at `address` has `count` live nodes (asked from a short-lived subprocess, so that this
    process connects only for the library itself)."""
    probe = ("import ray, sys; ray.init(address=sys.argv[1], logging_level='ERROR'); "
             "print(sum(n['Alive'] for n in ray.nodes()))")
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        r = subprocess.run([sys.executable, "-c", probe, address], capture_output=True, text=True)
        if r.returncode == 0 and r.stdout.strip().splitlines()[-1:] == [str(count)]:
            return
        time.sleep(2)
    raise RuntimeError(f"the Ray cluster at {address} did not reach {count} nodes in {timeout:.0f} s")


def _forget(port: int) -> None:
    """`ray start --head` leaves its address in /tmp/ray/ray_current_cluster, where a later plain ray.init()
    would look for a cluster: removed once that head is stopped."""
    current = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"
    try:
        if current.read_text().strip().endswith(f":{port}"):
            current.unlink()
    except OSError:
        pass


def nodes(sources: list[str], settings: Settings, work: Path) -> dict[str, Any]:
    _token_auth_like_ray_start()
    port = free_port()
    address = f"127.0.0.1:{port}"
    started = [RayNode(["--head", f"--port={port}", "--num-cpus=1", "--include-dashboard=false"], work / "head.log")]
    try:
        wait_for_nodes(address, 1)
        one = on_ray(sources, settings, RayOptions(address=address), work / "one")
        started.append(RayNode([f"--address={address}", "--num-cpus=1"], work / "worker.log"))
        wait_for_nodes(address, 2)
        two = on_ray(sources, settings, RayOptions(address=address), work / "two")
    finally:
        for node in reversed(started):
            node.stop()
        _forget(port)
    return {"one_node": one, "two_nodes": two, "ratio": round(two["seconds"] / one["seconds"], 3)}


# ------------------------------------------------------------------------------------------ kill


def task_processes(task: str) -> list[int]:
    """PIDs of this machine's Ray workers running `task` now (Ray titles a busy worker "ray::<task name>")."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "cmdline").read_bytes().startswith(f"ray::{task}".encode()):
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


class WorkerKiller(threading.Thread):
    """SIGKILLs the first Ray worker seen running `task`, `after` seconds into it: a worker dying mid-task."""

    def __init__(self, task: str, after: float = 0.5, timeout: float = 600):
        super().__init__(daemon=True)
        self.task, self.after, self.timeout = task, after, timeout
        self.killed: int | None = None
        self.title = ""

    def run(self) -> None:
        end = time.monotonic() + self.timeout
        while time.monotonic() < end and self.killed is None:
            pids = task_processes(self.task)
            if pids:
                time.sleep(self.after)
                self._kill(pids[0])
            time.sleep(0.05)

    def _kill(self, pid: int) -> None:
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
            if title.startswith(f"ray::{self.task}"):  # still that worker, still on a task
                os.kill(pid, signal.SIGKILL)
                self.killed, self.title = pid, title
        except OSError:
            pass


def kill(sources: list[str], settings: Settings, work: Path, after: float) -> dict[str, Any]:
    killer = WorkerKiller("compress_task", after=after)
    killer.start()
    out = work / "killed"
    result = on_ray(sources, settings, RayOptions(), out)
    killer.join(timeout=5)
    doc = json.loads((out / "library.json").read_text())
    names = [e["name"] for e in doc["materials"]]
    valid = {}
    for e in doc["materials"]:
        try:
            valid[e["name"]] = ngtc_file.load(out / e["file"]).info.steps == settings.steps
        except (ngtc_file.NgtcError, TypeError):
            valid[e["name"]] = False
    files = sorted(p.name for p in out.glob("*.ngtc"))
    checks = {"killed_a_worker": killer.killed is not None, "all_ok": doc["summary"]["ok"] == len(sources),
              "each_once": len(names) == len(set(names)) == len(sources), "all_valid": all(valid.values()),
              "files_match": files == sorted(e["file"] for e in doc["materials"]),
              "no_partial_files": not list(out.rglob(".*.tmp"))}
    return {**result, "killed": {"pid": killer.killed, "task": killer.title, "after_seconds": after},
            "checks": checks, "passed": all(checks.values())}


# ------------------------------------------------------------------------------------------ main


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m models.bench_library", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("which", choices=("overhead", "nodes", "kill"))
    p.add_argument("--sets", default=",".join(SETS), help="material paths, comma-separated (default: 4 real sets "
                   "in .cache/data, relative to it)")
    p.add_argument("--steps", type=int, default=600, help="fit steps per material (default 600)")
    p.add_argument("--preset", default="bpp2.4")
    p.add_argument("--kill-after", type=float, default=5.0, help="kill: seconds into a task (default 5)")
    p.add_argument("--out", type=Path, default=None, help="JSON results (default bench/library_<which>.json)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    sources = [str(p if Path(p).exists() else DATA / p) for p in args.sets.split(",")]
    settings = Settings(preset=args.preset, steps=args.steps)
    work = Path(tempfile.mkdtemp(prefix="ngtc-bench-library-"))
    load_before = load_average()
    try:
        if args.which == "overhead":
            result = overhead(sources, settings, work)
        elif args.which == "nodes":
            result = nodes(sources, settings, work)
        else:
            result = kill(sources, settings, work, args.kill_after)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    doc = {"benchmark": args.which, "sets": [i.name for i in discover(sources)], "preset": args.preset,
           "steps": args.steps, "cpus": os.cpu_count(), "load_average_before": load_before,
           "load_average_after": load_average(), "target": TARGETS.get(args.which), **result,
           "command": " ".join(["python -m models.bench_library", *(sys.argv[1:] if argv is None else argv)])}
    out = args.out or Path("bench") / f"library_{args.which}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, (json.dumps(doc, indent=1) + "\n").encode())
    print(json.dumps({k: v for k, v in doc.items() if k not in ("command",)}, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
