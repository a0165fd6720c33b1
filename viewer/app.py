"""The viewer: one frame of `ngtc view` or `ngtc render`, whichever host draws it.

`Viewer.frame(target, size)` is the one callback a host calls per frame: the window (`viewer.window`, glfw with
vsync) or an offscreen framebuffer on an EGL context (`viewer.headless`). It wires the parts, each in its file:
the scene and its background loading (`scene`), the display modes (`modes`), the render callback (`renderer`),
screenshots and timing captures (`captures`), and the user interface the host gives it (`panel`: the imgui
panel, the help and the keys). Every GL call happens on the main thread, in `frame`.
"""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path
from typing import Protocol

import moderngl
import numpy as np

from .camera import FlatCamera, OrbitCamera
from .captures import INVALID_QUERY_MS, Captures
from .ibl import Environments
from .library_index import is_library
from .log import Log
from .mesh import MeshData
from .modes import loaded_on_demand
from .renderer import PASSES, Renderer, ViewState
from .scene import DEFAULT_MESH, Scene

HISTORY = 240  # frames in the rolling timing plot


class Interface(Protocol):
    """The user interface a host gives the viewer (`viewer.panel.Panel`): drawn over the picture, it reads the
    viewer and calls its actions."""

    visible: bool
    help_visible: bool  # the keyboard shortcuts (F1)
    width: float  # covers the picture's left: the picture is centred right of it

    @property
    def scale(self) -> float: ...  # framebuffer pixels per unit of `width`

    def begin(self, viewer: Viewer, size: tuple[int, int], seconds: float) -> None: ...  # input first

    def draw(self, viewer: Viewer, visible: bool) -> None: ...

    def render(self, target: moderngl.Framebuffer) -> None: ...

    def release(self) -> None: ...


class Viewer:
    def __init__(self, ctx: moderngl.Context, panel: Interface, output_dir: Path | str = "."):
        self.ctx = ctx
        self.panel = panel
        self.renderer = Renderer(ctx)
        self.panel_query = ctx.query(time=True)
        self.log = Log()
        self.scene = Scene(ctx, self.log, self._frame_mesh)
        self.captures = Captures(Path(output_dir), self.log)
        self.state = ViewState()
        self.environments = Environments(ctx, self.log)
        self.environment_shown = self.state.environment  # the last one that loaded: kept when another fails
        self.library = None  # viewer.gallery.Library: `ngtc view LIBRARY_DIR` (the gallery, the picker)
        self.orbit = OrbitCamera()
        self.flat_camera = FlatCamera()
        self.history = {name: deque(maxlen=HISTORY) for name in (*PASSES, "panel", "frame")}
        self.timings: dict[str, float] = {}
        self.vsync = True  # the window host applies it
        self.quit = False
        self.size = (1, 1)
        self._last_frame = time.perf_counter()
        self.frame_ms = 0.0
        self.gltf = None  # a whole glTF scene (viewer.scene_view.GltfView), when one is open

    def open_scene(self, path: Path, wait: bool = False, environment: str | None = None, **compress) -> None:
        """Open a whole glTF scene (every mesh, each primitive with its material); `compress`: the budget of missing
        .ngtc files (compress_seconds, compress_steps). A file that cannot be shown raises a ViewerError."""
        from .scene_view import GltfView

        if environment is not None:
            self.state.environment = environment
        self.gltf = GltfView(self, Path(path), **compress)
        self.gltf.attach()
        if wait:
            self.wait()

    # ------------------------------------------------------------------------------------- scene

    def open(self, material: Path | None, ngtc: Path | None = None, mesh: Path | None = None,
             wait: bool = False, environment: str | None = None, scene: bool | None = None) -> None:
        """Start loading a scene (lit by `environment`, a bundled name or .exr/.hdr, if given); `wait` blocks until
        everything (and its uploads) is done. A glTF `material` opens as a whole scene when `scene`, or by default
        when it has several materials or mesh nodes and no `mesh` or `ngtc` is given (`gltf_scene.is_scene`)."""
        from .gltf_scene import is_scene

        if material is not None and scene is not False and (scene or (mesh is None and ngtc is None
                                                                       and is_scene(material))):
            self.open_scene(material, wait, environment)
            return
        if environment is not None:
            self.state.environment = environment
        if is_library(material):  # a folder of materials: the gallery, and its first material in the normal view
            from .gallery import Library

            self.library = Library(self.ctx, material)
            first = self.library.first()
            material, ngtc = (first.source, first.ngtc) if first else (None, None)
            if any(e.ngtc for e in self.library.entries):
                self.state.mode_a = "neural"  # the gallery of what compresses worst: no need for every source
        self.scene.load_mesh(mesh or DEFAULT_MESH)
        if material is not None:
            self.scene.load_material(material)
        elif ngtc is not None:
            self.state.mode_a = "neural"
        if ngtc is not None:
            self.scene.load_ngtc(ngtc)
        if wait:
            self.wait()

    def wait(self, timeout: float = 600.0) -> None:
        """Finish every background job (and what the modes shown need), uploading their results."""
        self.scene.wait(self.shown_modes(), timeout)
        if self.gltf is not None:
            self.gltf.wait(self.shown_modes(), timeout)
        if self.library is not None:
            self.library.wait(self.state.mode_a, timeout)

    def shown_modes(self) -> set[str]:
        s = self.state
        return {s.mode_a, s.mode_b} if s.compare != "single" else {s.mode_a}

    def cycle_mode(self, mode: str, step: int) -> str:
        """The next (`step` 1) or previous (-1) mode that is loaded or can be."""
        choices = [m for m in self.scene.modes() if m in self.scene.sets or loaded_on_demand(m)]
        i = choices.index(mode) if mode in choices else 0
        return choices[(i + step) % len(choices)]

    @property
    def camera(self) -> OrbitCamera | FlatCamera:
        return self.flat_camera if self.state.flat else self.orbit

    def _frame_mesh(self, mesh: MeshData) -> None:
        self.orbit.frame(mesh.center, mesh.radius, self.size[0] / max(self.size[1], 1))

    def reframe(self) -> None:
        if self.state.flat:
            self.flat_camera.frame(np.zeros(3), 1.0)
        elif self.scene.mesh is not None:
            self._frame_mesh(self.gltf.data.mesh if self.gltf is not None else self.scene.mesh)

    def start_capture(self, frames: int | None = None, modes: list[str] | None = None, warmup: int = 2) -> None:
        """Time every loaded mode (or `modes`) over the next frames; see `viewer.captures`."""
        modes = modes or [m for m in self.scene.modes() if m in self.scene.sets]
        self.captures.start(modes, self.state, frames, warmup)

    def release(self) -> None:
        if self.gltf is not None:
            self.gltf.release()
        self.scene.release()
        if self.library is not None:
            self.library.release()
        self.renderer.release()
        self.environments.release()
        self.panel.release()

    # ------------------------------------------------------------------------------------- frame

    def frame(self, target: moderngl.Framebuffer, size: tuple[int, int], panel: bool | None = None) -> None:
        """Everything of one frame: jobs, input, the render callback, the panel, captures, screenshots."""
        now = time.perf_counter()
        self.frame_ms, self._last_frame = (now - self._last_frame) * 1e3, now
        self.size = size
        self.scene.poll()
        self.scene.ensure(self.shown_modes())
        if self.gltf is not None:
            self.gltf.poll(self.shown_modes())
        if self.captures.running is not None:
            self.captures.running.show(self.state)
        self.panel.begin(self, size, self.frame_ms / 1e3)
        self._set_mesh()
        show_panel = self.panel.visible if panel is None else panel
        self.renderer.offset_px = self.panel.width * self.panel.scale if show_panel else 0.0
        self.renderer.environment = self._environment()
        if self.library is not None:
            self.library.update(self)  # its loads, the G key, a click on the gallery
        if self.library is not None and self.library.gallery:
            self.timings = self.library.render(self, target, size)
        else:
            self.timings = self.renderer.render(target, size, self.state, self.scene.sets, self.camera)
        self.panel.draw(self, show_panel)
        with self.panel_query:
            self.panel.render(target)
        self.timings["panel"] = self.panel_query.elapsed / 1e6
        self._record_timings()
        if self.captures.running is not None:
            self._record_capture()
        self.captures.take_requested(target, size)

    def _environment(self):
        """The prefiltered maps of `state.environment` (made once each); a file that fails to load is logged in one
        line and the environment shown before stays."""
        if not self.state.ibl:
            return None
        maps = self.environments.get(self.state.environment)
        if maps is None:
            self.state.environment = self.environment_shown
            return self.environments.get(self.environment_shown)
        self.environment_shown = self.state.environment
        return maps

    def _set_mesh(self) -> None:
        """The flat quad or the mesh, into the renderer when it changed (the flat camera frames the quad)."""
        mesh = self.scene.quad if self.state.flat else self.scene.mesh
        if mesh is not None and self.renderer.mesh is not mesh:
            self.renderer.set_mesh(mesh)
            if mesh.flat:
                self.flat_camera.frame(mesh.center, mesh.radius)

    def _record_timings(self) -> None:
        for name, ms in self.timings.items():
            if ms < INVALID_QUERY_MS:
                self.history[name].append(ms)
        self.history["frame"].append(self.frame_ms)

    def _record_capture(self) -> None:
        finished = self.captures.record(self.timings, self.frame_ms)
        if finished is None:
            return
        self.state = finished.saved
        scene = self.scene
        paths = {"material": scene.material_path, "ngtc": scene.ngtc_path, "mesh": scene.mesh_path}
        header = {"renderer": self.ctx.info.get("GL_RENDERER"), "size": list(self.size), "vsync": self.vsync,
                  **{k: str(p) if p else None for k, p in paths.items()}}
        self.captures.save(finished, header, scene.sets)
