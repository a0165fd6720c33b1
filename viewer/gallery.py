"""A library open in the viewer (`ngtc view LIBRARY_DIR`): its materials, the gallery's order, and their loading.

Each material (`viewer.library_index.Entry`) gets a `Scene` of its own, a cell, loaded only when the gallery shows
it in a mode that needs it (the maps for reference and ASTC, the `.ngtc` for the neural modes), through the scene's
own loaders (`models.material` for the maps: one loading path), at most MAX_LOADING cells at a time, worst first.
A material that fails is reported once in one line (`log`) and leaves the gallery. Choosing one (picker or gallery)
loads it into the viewer's scene, the normal view. Drawing is `viewer.gallery_draw`; the panel section is
`viewer.library_picker`.
"""

from __future__ import annotations

import time
from pathlib import Path

import moderngl
from imgui_bundle import imgui

from .errors import ViewerError
from .gallery_cell import Cell
from .gallery_draw import GalleryRenderer
from .host import Host
from .jobs import Job
from .library_index import Entry, read_library
from .log import Log
from .mesh import MeshData, load_mesh
from .scene import DEFAULT_MESH, release_sets

MAX_LOADING = 2  # cells loading at once: a big library neither swamps the CPU nor fills memory in one go
SORTS = {"worst": "PSNR, worst first", "best": "PSNR, best first", "name": "name", "library": "library order"}
CLICK_PX = 4.0  # a press and release closer than this is a click (a longer drag orbits the spheres)


class Library:
    def __init__(self, ctx: moderngl.Context, path: Path | str, entries: list[Entry] | None = None):
        self.path = Path(path)
        self.entries = entries if entries is not None else read_library(self.path)
        self.cells = [Cell(e, ctx) for e in self.entries]
        self.log = Log()  # one line per material that cannot be shown
        for e in self.entries:
            if e.error:
                self.log.error(f"{e.name}: {e.error}")
        self.gallery = True  # the gallery, or the normal view of the chosen material
        self.sort = "worst"
        self.filter = ""
        self.chosen: str | None = None  # the material in the normal view
        self.mesh: MeshData | None = None
        self.mesh_job: Job | None = Job("sphere", lambda: load_mesh(DEFAULT_MESH), lambda mesh: None)
        self.renderer: GalleryRenderer | None = None  # made on the first gallery frame
        self._pressed: tuple[float, float] | None = None

    # ------------------------------------------------------------------------------------- order

    def shown(self, entry: Entry) -> bool:
        return self.filter.strip().lower() in entry.name.lower()

    def order(self, mode: str) -> list[Cell]:
        """The gallery's cells: the materials that can be shown, matching the filter, in the chosen order."""
        cells = [c for c in self.cells if not c.entry.error and self.shown(c.entry)]
        if self.sort == "name":
            return sorted(cells, key=lambda c: c.entry.name.lower())
        if self.sort in ("worst", "best"):
            sign = 1 if self.sort == "worst" else -1
            known = [c for c in cells if c.psnr(mode) is not None]
            return sorted(known, key=lambda c: sign * c.psnr(mode)) + [c for c in cells if c.psnr(mode) is None]
        return cells

    def first(self) -> Entry | None:
        return next((e for e in self.entries if not e.error), None)

    # ------------------------------------------------------------------------------------- loading

    def poll(self, mode: str) -> None:
        """Finish the cells' loads (a failure: one line, the cell leaves the gallery); while the gallery shows,
        start the next ones `mode` needs, in the gallery's order."""
        if self.mesh_job is not None and not self.mesh_job.thread.is_alive():
            if self.mesh_job.error is not None:
                raise ViewerError(f"{DEFAULT_MESH}: {self.mesh_job.error}")
            self.mesh, self.mesh_job = self.mesh_job.result, None
        for cell in self.cells:
            cell.scene.poll()
            for message in cell.log.errors[cell.reported:]:  # once each, naming the material
                self.log.error(f"{cell.entry.name}: {message}")
            cell.reported = len(cell.log.errors)
            if cell.load_failed() and not cell.entry.error:  # its maps or .ngtc: it leaves the gallery
                cell.entry.error = cell.log.errors[-1] if cell.log.errors else "failed to load"
        if not self.gallery:
            return
        loading = sum(c.loading for c in self.cells)
        for cell in self.order(mode):
            if loading >= MAX_LOADING:
                break
            loading += cell.request(mode)

    def busy(self) -> bool:
        return self.mesh_job is not None or any(c.loading for c in self.cells)

    def wait(self, mode: str, timeout: float = 600.0) -> None:
        """Load everything the gallery shows in `mode` (headless renders, tests)."""
        end = time.perf_counter() + timeout
        while True:
            self.poll(mode)
            jobs = [j for c in self.cells for j in c.scene.jobs] + ([self.mesh_job] if self.mesh_job else [])
            if not jobs:
                return
            for job in jobs:
                job.thread.join(max(0.0, end - time.perf_counter()))
            if time.perf_counter() > end:
                raise ViewerError(f"the library did not load in {timeout:.0f} s")

    def release(self) -> None:
        for cell in self.cells:
            cell.scene.release()
        if self.renderer is not None:
            self.renderer.release()

    # ------------------------------------------------------------------------------------- choosing

    def choose(self, viewer: Host, entry: Entry) -> None:
        """Show `entry` in the normal view: the viewer's scene loads it (its earlier material's sets go)."""
        scene = viewer.scene
        release_sets(scene.sets, list(scene.sets))
        scene.material = scene.fingerprint = scene.material_path = scene.ngtc_path = None
        scene.presets, scene.failed, scene.report = {}, set(), {}
        if entry.source:
            scene.load_material(entry.source)
        if entry.ngtc:
            scene.load_ngtc(entry.ngtc)
        if not entry.source and viewer.state.mode_a == "reference":
            viewer.state.mode_a = "neural"
        self.chosen, self.gallery = entry.name, False
        viewer.log.note(f"library: {entry.name}")

    # ------------------------------------------------------------------------------------- frame

    def update(self, viewer: Host) -> None:
        """Each frame, before drawing: the loads, the G key, a click on a gallery cell."""
        if viewer.scene.mesh is not None and self.mesh is None and viewer.scene.mesh_path == DEFAULT_MESH:
            self.mesh = viewer.scene.mesh  # the viewer's sphere: no need to wait for our own
        self.poll(viewer.state.mode_a)
        io = imgui.get_io()
        if not io.want_capture_keyboard and imgui.is_key_pressed(imgui.Key.g, False):
            self.gallery = not self.gallery
        if not self.gallery or self.renderer is None or io.want_capture_mouse:
            self._pressed = None
            return
        if imgui.is_mouse_clicked(0):
            self._pressed = (io.mouse_pos.x, io.mouse_pos.y)
        if imgui.is_mouse_released(0) and self._pressed is not None:
            dx, dy = io.mouse_pos.x - self._pressed[0], io.mouse_pos.y - self._pressed[1]
            self._pressed = None
            if dx * dx + dy * dy <= CLICK_PX**2:
                scale = viewer.panel.scale
                cell = self.renderer.cell_at(io.mouse_pos.x * scale, io.mouse_pos.y * scale)
                if cell is not None:
                    self.choose(viewer, cell.entry)

    def render(self, viewer: Host, target: moderngl.Framebuffer, size: tuple[int, int]) -> dict[str, float]:
        """The gallery into `target`; GPU milliseconds per pass."""
        if self.renderer is None:
            self.renderer = GalleryRenderer(viewer.ctx)
        if self.mesh is not None and self.renderer.mesh is not self.mesh:
            self.renderer.set_mesh(self.mesh)
        self.renderer.environment = viewer.renderer.environment
        self.renderer.offset_px = viewer.renderer.offset_px
        mode = viewer.state.mode_a
        return self.renderer.draw(target, size, viewer.state, viewer.orbit, self.order(mode), mode,
                                  viewer.panel.scale)
