"""Atomic file writes: every output of the project goes through here."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, flush it to disk, then rename it over `path`.

    Readers see the old file or the new one, never half of one, and a failed write (or a crash right
    after the rename) leaves the old file or the complete new one. The file gets the permissions of the
    file it replaces, else those the umask gives a new file. Raises OSError: callers turn it into their
    own one-line error naming the path.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _mode_for(path))  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_folder(folder)


def _mode_for(path: Path) -> int:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX); folders cannot be opened this way everywhere."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def writable_folder(folder: Path, what: str, error: type[Exception]) -> None:
    """Create `folder` (and its parents) and check that a file can be made in it, or raise `error` with one line
    saying why the `what` (report, library...) cannot be written there."""
    if folder.exists() and not folder.is_dir():
        raise error(f"{folder}: cannot write the {what} there (it is a file, not a folder)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test."):
            pass
    except OSError as exc:
        raise error(f"{folder}: cannot write the {what} folder ({' '.join(str(exc).split())})") from None
