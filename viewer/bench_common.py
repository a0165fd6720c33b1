"""What the viewer's benchmarks share: a scene loaded into a headless host through the viewer's own loaders, and
results written as JSON (atomically, with a one-line error)."""

from __future__ import annotations

import json
from pathlib import Path

from models.atomic import write_atomic

from .errors import ViewerError
from .headless import Headless


def load_scene(host: Headless, material: Path | None, ngtc: Path | None, mesh: Path | None,
               modes: list[str], cache_mib: float | None = None) -> None:
    """Load everything `modes` need through the viewer's own loaders (ASTC: from `ngtc eval`, else encoded)."""
    viewer, scene = host.viewer, host.viewer.scene
    scene.cache_mib = cache_mib
    viewer.open(material, ngtc, mesh)
    host.activate()
    scene.wait(set(modes))  # what loads on demand (ASTC, transcoded) too
    if viewer.log.errors:
        raise ViewerError(viewer.log.errors[0])
    missing = [m for m in modes if m not in scene.sets]
    if missing:
        raise ViewerError(f"cannot bench {', '.join(missing)}: the reference and ASTC modes need the material, "
                          f"the neural and transcoded modes an .ngtc")
    viewer.reframe()  # the sphere fills the frame's height


def write_json(doc: dict, path: Path) -> None:
    try:
        if path.parent and not path.parent.exists():
            path.parent.mkdir(parents=True)
        write_atomic(path, (json.dumps(doc, indent=1) + "\n").encode())
    except OSError as e:
        raise ViewerError(f"{path}: cannot write the results ({e.strerror or e})") from None
