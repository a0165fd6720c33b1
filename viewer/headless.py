"""The headless host: the viewer on an EGL context, drawing into an offscreen framebuffer (`ngtc render`,
`ngtc bench`, the no-display fallback of `ngtc view`, tests)."""

from __future__ import annotations

import time
from pathlib import Path

import moderngl
import numpy as np

from .app import Viewer
from .captures import read_pixels
from .errors import ViewerError, one_line
from .panel import Panel


def headless_context() -> moderngl.Context:
    try:
        return moderngl.create_standalone_context(backend="egl", require=430)
    except Exception as e:  # noqa: BLE001 - any driver failure becomes one line
        raise ViewerError(f"cannot create a headless OpenGL 4.3 context (EGL): {one_line(e)}") from None


class Headless:
    """A viewer (with its panel: `--panel`, `ngtc bench --viewer`) on an EGL context drawing into an offscreen
    framebuffer of `size`."""

    def __init__(self, size: tuple[int, int] = (1280, 720), output_dir: Path | str = ".", ctx=None):
        self.ctx = ctx or headless_context()
        self.size = size
        self.color = self.ctx.texture(size, 4)
        self.fbo = self.ctx.framebuffer([self.color])
        self.viewer = Viewer(self.ctx, Panel(), output_dir)
        self.viewer.size = size

    def activate(self) -> None:
        """Make the EGL context current again (a window opened meanwhile in this process unbinds it)."""
        self.ctx.__enter__()

    def wait(self) -> None:
        """Finish the viewer's background jobs (their GPU uploads need the context current)."""
        self.activate()
        self.viewer.wait()

    def frame(self, panel: bool | None = None) -> np.ndarray:
        self.activate()
        self.viewer.frame(self.fbo, self.size, panel)
        return read_pixels(self.fbo, self.size)

    def timed_frame(self, panel: bool | None = None) -> float:
        """ms of one viewer frame, from a finished pipeline to a finished one (glFinish: software renderers'
        timer queries end before they rasterize)."""
        self.ctx.finish()
        start = time.perf_counter()
        self.viewer.frame(self.fbo, self.size, panel)
        self.ctx.finish()
        return (time.perf_counter() - start) * 1e3

    def release(self) -> None:
        self.activate()
        self.viewer.release()
        self.fbo.release()
        self.color.release()
