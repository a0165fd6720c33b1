"""Training's C kernels (models/native/*.c): compiled with the system's C compiler on first use, cached, loaded.

Each kernel is plain C called through ctypes (`native_reads`: the grid reads; `native_synthesizer`: the MLP). A
library is built into .cache/native/ under a hash of its source, its flags and the machine (the CPU's model and
features too where the flags tune for it), beside its target and renamed into place, so a concurrent build never
loads half a file. Where no compiler is found, or `NGTC_NATIVE=0` (`enabled`), training runs in PyTorch (slower,
same maths); scripts/setup.sh builds the kernels ahead (`python -m models.native_reads`, `... native_synthesizer`).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

SOURCES = Path(__file__).with_name("native")
CACHE = Path(__file__).resolve().parents[1] / ".cache" / "native"
# -fopenmp: a kernel's threads come from the OpenMP runtime PyTorch has loaded (libgomp.so.1 is resolved to the copy
# already in the process), whose workers are awake after PyTorch's own parallel ops: threads of its own (pthreads)
# waited for cores those workers spun on, and ran slower than one thread.
BASE_FLAGS = ("-O3", "-shared", "-fPIC", "-fopenmp")


def enabled(source: str) -> bool:
    """Whether training may use the kernel native/`source`: `NGTC_NATIVE` unset or 1 allows every kernel, 0 none,
    a comma-separated list of names those alone (`NGTC_NATIVE=grid_reads` times the synthesizer in PyTorch)."""
    allowed = os.environ.get("NGTC_NATIVE", "1")
    return allowed == "1" or Path(source).stem in allowed.split(",")


def why(error: Exception, source: str) -> str:
    """One line on why a kernel is unavailable."""
    if isinstance(error, subprocess.CalledProcessError):
        lines = (error.stderr or b"").decode(errors="replace").strip().splitlines()
        return f"{source} did not compile ({lines[0] if lines else f'exit {error.returncode}'})"
    return str(error)


def machine() -> bytes:
    """What a library built with -march=native depends on: the CPU's model and feature flags."""
    try:
        info = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        info = []
    wanted = ("model name", "flags", "Features", "CPU part")
    lines = sorted({line for line in info if line.split(":")[0].strip() in wanted})
    return ("\n".join(lines) or platform.processor()).encode()


def build(source: str, flags: tuple[str, ...], cache: Path | None = None) -> Path:
    """The shared library of native/`source` with `flags`, compiled into `cache` (CACHE) when missing."""
    cache = cache or CACHE
    text = (SOURCES / source).read_bytes()
    tuned = machine() if "-march=native" in flags else b""
    key = hashlib.sha256(text + " ".join(flags).encode() + os.uname().machine.encode() + tuned).hexdigest()[:16]
    stem = Path(source).stem
    target = cache / f"{stem}-{key}.so"
    if target.exists():
        return target
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not compiler:
        raise FileNotFoundError("no C compiler (cc or gcc) on PATH")
    cache.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{stem}-", suffix=".so", dir=cache)
    os.close(fd)
    try:  # compiled beside the target and renamed into place: a concurrent build never sees half a file
        subprocess.run([compiler, *flags, "-o", tmp, str(SOURCES / source), "-lm"], check=True, capture_output=True)
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return target


def loader(source: str, flags: tuple[str, ...], declare: Callable[[ctypes.CDLL], None],
           use: str) -> Callable[[], ctypes.CDLL | None]:
    """A cached function giving the built library with its functions declared, or None where it cannot be built
    (said once on stderr, with `use`, what PyTorch does instead)."""

    @functools.cache
    def library() -> ctypes.CDLL | None:
        try:
            lib = ctypes.CDLL(str(build(source, flags)))
        except (OSError, subprocess.CalledProcessError) as e:
            print(f"ngtc: {use}: {why(e, source)}", file=sys.stderr)
            return None
        declare(lib)
        return lib

    return library


def main(module: str, source: str, flags: tuple[str, ...]) -> None:
    """`python -m models.<module>`: build that kernel (scripts/setup.sh does) and say where it is, or why not."""
    try:
        print(build(source, flags))
    except (OSError, subprocess.CalledProcessError) as e:
        raise SystemExit(f"models.{module}: {why(e, source)}") from None
