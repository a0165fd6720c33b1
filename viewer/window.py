"""The window host: a glfw window with an OpenGL 4.3 core context, drawing the viewer once per frame, and swapping
with the viewer's vsync setting."""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from pathlib import Path

import moderngl

from .app import Viewer
from .panel import Panel


def _window_hints(glfw, visible: bool = True) -> None:
    glfw.window_hint(glfw.CONTEXT_VERSION_MAJOR, 4)
    glfw.window_hint(glfw.CONTEXT_VERSION_MINOR, 3)
    glfw.window_hint(glfw.OPENGL_PROFILE, glfw.OPENGL_CORE_PROFILE)
    glfw.window_hint(glfw.OPENGL_FORWARD_COMPAT, True)
    glfw.window_hint(glfw.VISIBLE, visible)


def _release_current_egl() -> None:
    """Unbind a current EGL context (a headless one made earlier in this process): GLVND refuses to make a
    GLX context current on a thread that still has an EGL one (X error BadAccess in glXMakeCurrent)."""
    try:
        egl = ctypes.CDLL("libEGL.so.1")
    except OSError:
        return
    egl.eglGetCurrentDisplay.restype = ctypes.c_void_p
    egl.eglMakeCurrent.argtypes = [ctypes.c_void_p] * 4
    display = egl.eglGetCurrentDisplay()
    if display:
        egl.eglMakeCurrent(display, None, None, None)


def open_window(size: tuple[int, int], title: str = "NGTC viewer"):
    """(glfw window, moderngl context), or None when no display can be opened."""
    import glfw

    glfw.ERROR_REPORTING = "ignore"
    if not glfw.init():
        return None
    _release_current_egl()
    _window_hints(glfw)
    window = glfw.create_window(size[0], size[1], title, None, None)
    if not window:
        glfw.terminate()
        return None
    glfw.make_context_current(window)
    return window, moderngl.create_context(require=430)


def run_window(material: Path | None, ngtc: Path | None, mesh: Path | None, size: tuple[int, int] = (1280, 720),
               max_frames: int | None = None, on_frame: Callable[..., None] | None = None,
               environment: str | None = None, cache_mib: float | None = None,
               scene: bool | None = None) -> Viewer | None:
    """The interactive viewer; returns None when there is no display (nothing opened).

    `on_frame(viewer, framebuffer, size, index)` runs after each frame is drawn, before the swap (tests)."""
    import glfw

    opened = open_window(size)
    if opened is None:
        return None
    window, ctx = opened
    viewer = Viewer(ctx, Panel(window))
    viewer.scene.cache_mib = cache_mib  # neural-feedback's tile cache budget (None: from the material)
    try:
        viewer.open(material, ngtc, mesh, environment=environment, scene=scene)
        frames, vsync = 0, None
        while not glfw.window_should_close(window) and not viewer.quit:
            glfw.poll_events()
            fb = glfw.get_framebuffer_size(window)
            if fb[0] > 0 and fb[1] > 0:
                viewer.frame(ctx.screen, fb)
                if on_frame is not None:
                    on_frame(viewer, ctx.screen, fb, frames)
                if viewer.vsync != vsync:  # the V key or the panel changed it
                    vsync = viewer.vsync
                    glfw.swap_interval(1 if vsync else 0)
                glfw.swap_buffers(window)
            else:
                glfw.wait_events_timeout(0.1)  # minimized: nothing to draw
            frames += 1
            if max_frames is not None and frames >= max_frames:
                break
    finally:
        viewer.release()
        glfw.destroy_window(window)
        glfw.terminate()
    return viewer
