"""Background jobs: loading and encoding run in threads; what they made reaches the GPU on the main thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

PROGRESS_POLL_S = 0.2  # a job's progress may look at files: not every frame


class Job:
    """`work()` in a daemon thread; `done(result)` runs on the main thread once it has finished.

    `modes`: the modes it makes (not asked for again once it failed); `progress()`: a fraction done, or None."""

    def __init__(self, label: str, work: Callable[[], Any], done: Callable[[Any], None],
                 modes: tuple[str, ...] = (), progress: Callable[[], float | None] | None = None):
        self.label, self.work, self.done, self.modes = label, work, done, modes
        self.started = time.perf_counter()
        self._progress, self._fraction, self._polled = progress, None, 0.0
        self.result: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=f"ngtc-{label}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.result = self.work()
        except BaseException as e:  # noqa: BLE001 - reported in the panel
            self.error = e

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def fraction(self) -> float | None:
        """`progress()`, polled at most 5 times a second."""
        now = time.perf_counter()
        if self._progress is not None and now - self._polled > PROGRESS_POLL_S:
            self._polled = now
            try:
                self._fraction = self._progress()
            except OSError:
                self._fraction = None
        return self._fraction
