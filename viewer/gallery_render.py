"""`ngtc render LIBRARY_DIR --gallery`: the gallery of a library in one picture, headless (EGL), for reports and
tests. Materials that cannot be shown are left out and returned, one line each."""

from __future__ import annotations

from pathlib import Path

from .captures import write_image
from .commands import IMAGE_SUFFIXES, parse_size
from .environment import check_environment
from .errors import ViewerError, one_line
from .gallery import SORTS, Library
from .headless import Headless
from .library_index import is_library, read_library
from .modes import check_mode
from .renderer import VIEWS


def render_gallery(target: Path, output: Path, *, mode: str = "neural", view: str = "shaded", size: str = "1280x720",
                   sort: str = "worst", search: str = "", panel: bool = False, env: Path | None = None,
                   frames: int = 2) -> tuple[Path, list[str]]:
    """Render the gallery of `target` in `mode`; returns the image and a line per material not shown."""
    if not is_library(target):
        raise ViewerError(f"{target}: not a library (a folder of material folders and glTF files, or the output "
                          f"folder of `ngtc compress` of several materials)")
    dims = parse_size(size)
    if view not in VIEWS:
        raise ViewerError(f"unknown view {view!r}; choose one of {', '.join(VIEWS)}")
    if sort not in SORTS:
        raise ViewerError(f"unknown sort {sort!r}; choose one of {', '.join(SORTS)}")
    if output.suffix.lower() not in IMAGE_SUFFIXES:
        raise ViewerError(f"{output}: expected an image file name (.png)")
    check_mode(mode)
    environment = check_environment(env)
    try:  # fail before rendering, not after
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ViewerError(f"{output}: cannot write the image ({e.strerror or one_line(e)})") from None
    entries = read_library(target)  # an empty folder: one line, before any GL
    host = Headless(dims)
    try:
        viewer = host.viewer
        viewer.library = library = Library(viewer.ctx, target, entries)
        state = viewer.state
        state.mode_a, state.view, state.compare = mode, view, "single"
        if environment is not None:
            state.environment = environment
        library.sort, library.filter = sort, search
        if panel and library.first() is not None:  # as `ngtc view` opens it: the first material in the normal view
            library.choose(viewer, library.first())
            library.gallery = True
        host.wait()
        if not library.order(mode):
            reason = library.log.errors[0] if library.log.errors else "none matches the search"
            raise ViewerError(f"{target}: no material of the library can be shown in mode {mode} ({reason})")
        image = None
        for _ in range(max(1, frames)):
            for history in viewer.history.values():  # the panel's timings: these frames, not the loading
                history.clear()
            image = host.frame(panel)
        return write_image(output, image), list(library.log.errors)
    finally:
        host.release()
