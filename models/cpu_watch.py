"""How much CPU other people's processes took while a benchmark ran (Linux /proc): on a shared machine the load
average counts the benchmark's own work too, so it cannot say whether a timing was disturbed; this can.

`with CpuWatch() as w: ...` then `w.result()`: CPU seconds of this process's descendants ("mine") and of every
other process ("others"), sampled every `every` seconds (a process that starts and ends between two samples is
missed), and the others' share of the machine's CPU time over the run.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _processes() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, CPU seconds so far) of every process we can read."""
    out = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(proc.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK)  # ppid, utime + stime
    return out


def _descends(pid: int, root: int, parents: dict[int, int]) -> bool:
    for _ in range(64):
        if pid == root:
            return True
        pid = parents.get(pid, 0)
        if pid <= 1:
            return False
    return False


class CpuWatch(threading.Thread):
    def __init__(self, every: float = 2.0):
        super().__init__(daemon=True)
        self.every, self.root = every, os.getpid()
        self.mine = self.others = 0.0
        self._last = _processes()
        self._done = threading.Event()
        self._start = time.monotonic()
        self._family = set()

    def __enter__(self) -> CpuWatch:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self.join()
        self._sample()

    def run(self) -> None:
        while not self._done.wait(self.every):
            self._sample()

    def _sample(self) -> None:
        now = _processes()
        parents = {pid: ppid for pid, (ppid, _) in now.items()}
        for pid, (_, cpu) in now.items():
            delta = cpu - self._last.get(pid, (0, 0.0))[1]
            if pid in self._family or _descends(pid, self.root, parents):
                self._family.add(pid)  # a Ray worker stays ours after its parent is gone
                self.mine += delta
            else:
                self.others += delta
        self._last = now

    def result(self) -> dict[str, float]:
        wall = time.monotonic() - self._start
        return {"wall_seconds": round(wall, 1), "mine_cpu_seconds": round(self.mine, 1),
                "others_cpu_seconds": round(self.others, 1),
                "others_share": round(self.others / (wall * (os.cpu_count() or 1)), 3)}
