"""`ngtc view` and `ngtc render`: the command-line entry points, on the window or the headless host."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .captures import write_image
from .environment import check_environment
from .errors import ViewerError, one_line
from .feedback import check_cache_mib
from .headless import Headless
from .library_index import is_library, read_library
from .modes import check_mode
from .renderer import VIEWS
from .scene import resolve_inputs
from .window import run_window

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ViewerError(f"size {text!r}: expected WxH, e.g. 1280x720") from None
    if not (16 <= w <= 8192 and 16 <= h <= 8192):
        raise ViewerError(f"size {text!r}: width and height must be 16 .. 8192")
    return w, h


def view_command(target: Path | None, mesh: Path | None, ngtc: Path | None, size: str = "1280x720",
                 fallback_dir: Path = Path("ngtc-view"), env: Path | None = None,
                 cache_mib: float | None = None, scene: bool | None = None) -> None:
    """`ngtc view`: the window; without a display, headless renders and a capture in `fallback_dir`. `scene`: a
    glTF as a whole scene (None: when it has several materials or meshes)."""
    material, ngtc = resolve_inputs(target, ngtc)
    if is_library(material):
        read_library(material)  # a folder with no material: one line, before any window or file
    environment = check_environment(env)
    dims = parse_size(size)
    if mesh is not None and not Path(mesh).is_file():
        raise ViewerError(f"{mesh}: no such mesh file")
    if cache_mib is not None:
        check_cache_mib(cache_mib)
    if run_window(material, ngtc, mesh, dims, environment=environment, cache_mib=cache_mib, scene=scene) is not None:
        return
    print(f"ngtc view: no display to open a window on (DISPLAY={os.environ.get('DISPLAY') or 'unset'}); "
          f"writing headless renders and a timing capture to {fallback_dir}/ instead", file=sys.stderr)
    for path in headless_captures(material, ngtc, mesh, fallback_dir, dims, environment=environment,
                                  cache_mib=cache_mib, scene=scene):
        print(f"wrote {path}", file=sys.stderr)


def headless_captures(material: Path | None, ngtc: Path | None, mesh: Path | None, out_dir: Path,
                      size: tuple[int, int], frames: int = 3, environment: str | None = None,
                      cache_mib: float | None = None, scene: bool | None = None) -> list[Path]:
    """What `ngtc view` writes without a display: each loaded mode (with the panel), A | B split, a capture."""
    host = Headless(size, output_dir=out_dir)
    written = []
    try:
        viewer = host.viewer
        viewer.scene.cache_mib = cache_mib
        viewer.open(material, ngtc, mesh, environment=environment, scene=scene)
        host.wait()
        if viewer.log.errors:
            raise ViewerError(viewer.log.errors[0])
        modes = [m for m in ("reference", "neural") if m in viewer.scene.sets]
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ViewerError(f"{out_dir}: cannot create the folder ({e.strerror or one_line(e)})") from None
        for mode in modes:
            viewer.state.mode_a, viewer.state.compare = mode, "single"
            host.frame()
            written.append(viewer.captures.save_screenshot(host.fbo, size, out_dir / f"{mode}.png"))
        if len(modes) == 2:
            viewer.state.mode_a, viewer.state.mode_b, viewer.state.compare = "reference", "neural", "split"
            host.frame()
            written.append(viewer.captures.save_screenshot(host.fbo, size, out_dir / "split.png"))
        viewer.start_capture(frames, modes)
        while viewer.captures.running is not None:
            host.frame(panel=False)
        if viewer.captures.last:
            written += list(viewer.captures.last)
    finally:
        host.release()
    return written


def render_command(target: Path, output: Path, *, mode: str = "reference", mip: int = -1, view: str = "shaded",
                   mesh: Path | None = None, ngtc: Path | None = None, panel: bool = False, size: str = "1280x720",
                   split: str | None = None, diff: str | None = None, flat: bool = False,
                   cache_mib: float | None = None,
                   lod_bias: float = 0.0, env: Path | None = None, scene: bool | None = None) -> Path:
    """`ngtc render`: one picture, headless (EGL); `scene` as in `view_command`."""
    material, ngtc = resolve_inputs(target, ngtc)
    dims = parse_size(size)
    if view not in VIEWS:
        raise ViewerError(f"unknown view {view!r}; choose one of {', '.join(VIEWS)}")
    if split and diff:
        raise ViewerError("--split and --diff exclude each other")
    if output.suffix.lower() not in IMAGE_SUFFIXES:
        raise ViewerError(f"{output}: expected an image file name (.png)")
    if mesh is not None and not Path(mesh).is_file():
        raise ViewerError(f"{mesh}: no such mesh file")
    if cache_mib is not None:
        check_cache_mib(cache_mib)
    try:  # fail before rendering, not after
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ViewerError(f"{output}: cannot write the image ({e.strerror or one_line(e)})") from None
    state = {"mode_a": check_mode(mode), "view": view, "force_mip": mip, "lod_bias": lod_bias, "flat": flat}
    environment = check_environment(env)
    if environment is not None:
        state["environment"] = environment
    if split or diff:
        state.update(mode_b=check_mode(split or diff), compare="split" if split else "difference")
    return render_headless(material, ngtc, output, mesh=mesh, size=dims, state=state, panel=panel,
                           cache_mib=cache_mib, scene=scene)


SETTLE_FRAMES = 64  # ngtc render of neural-feedback: at most this many more frames until its cache is settled


def render_headless(material: Path | None, ngtc: Path | None, output: Path, *, mesh: Path | None = None,
                    size: tuple[int, int] = (1280, 720), state: dict | None = None, panel: bool = True,
                    frames: int = 2, cache_mib: float | None = None, scene: bool | None = None) -> Path:
    """Render one picture offscreen and save it; errors (loading included) raise ViewerError."""
    host = Headless(size)
    try:
        viewer = host.viewer
        viewer.scene.cache_mib = cache_mib
        viewer.open(material, ngtc, mesh, scene=scene)
        for k, v in (state or {}).items():
            setattr(viewer.state, k, v)
        host.wait()
        if viewer.log.errors:
            raise ViewerError(viewer.log.errors[0])
        for mode in viewer.shown_modes():
            if mode not in viewer.scene.sets:
                raise ViewerError(f"mode {mode} is not available (load a material for reference/ASTC, "
                                  f"an .ngtc for neural modes)")
        image = None
        for _ in range(max(1, frames)):
            image = host.frame(panel)
        caches = [c for c in (getattr(viewer.scene.sets[m], "feedback", None) for m in viewer.shown_modes())
                  if c is not None]
        for _ in range(SETTLE_FRAMES):  # decode on feedback: until the tiles the view asks for are in the cache
            if all(c.settled for c in caches):
                break
            image = host.frame(panel)
        return write_image(output, image)
    finally:
        host.release()
