"""The environment tests run `ngtc` subprocesses in: a clean one (no user cache or HOME), but with what the machine
needs to find the packages and the GL driver (the device kit's PYTHONPATH and loader paths on a GPU machine)."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PASSED_ON = ("LD_LIBRARY_PATH", "__EGL_VENDOR_LIBRARY_FILENAMES")


def cli_env(cwd: Path) -> dict[str, str]:
    paths = [str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": os.pathsep.join(paths), "NGTC_CACHE": str(cwd / "cache"),
           "HOME": str(cwd)}
    return {**env, **{k: os.environ[k] for k in PASSED_ON if k in os.environ}}
