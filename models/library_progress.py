"""Progress of a whole library on the console: done, running, failed, queued and the time left, with one line
per finished material (plain lines in a log, a live bar on a terminal)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from .cluster import PoolState


def clock(seconds: float | None) -> str:
    if seconds is None:
        return "time left unknown"
    seconds = round(seconds)
    return f"~{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d} left"


def counts(state: PoolState) -> str:
    return (f"{state.done}/{state.total} done, {len(state.running)} running, {state.failed} failed, "
            f"{state.queued} queued, {clock(state.time_left())}")


class LibraryProgress:
    """`with LibraryProgress(total, "compress") as p: ... p.update(state); p.line(text)`."""

    def __init__(self, total: int, title: str, console: Console | None = None):
        self.console = console or Console(stderr=True)
        self.progress = Progress(TextColumn(f"{escape(title)}"), BarColumn(), TextColumn("{task.fields[counts]}"),
                                 TimeElapsedColumn(), console=self.console, transient=False)
        self.task = self.progress.add_task(title, total=max(1, total), counts="starting")
        self.state: PoolState | None = None

    def __enter__(self) -> LibraryProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def update(self, state: PoolState) -> None:
        self.state = state
        self.progress.update(self.task, completed=state.done, counts=counts(state))

    def line(self, text: str) -> None:
        """One finished item, with where the library stands."""
        where = f"[{self.state.done + 1}/{self.state.total}] " if self.state else ""
        self.progress.console.print(escape(where + text), highlight=False, soft_wrap=True)
