"""The gallery's drawing: every material of the library on one sphere mesh, one draw per cell into its own viewport
(the PBR pass of `viewer.renderer`, depth pre-pass included), with its name and PSNR under it (imgui).

All cells share the sphere's buffers and the mode's program; a cell binds its texture set and draws. The spheres
turn together with the viewer's orbit camera (left drag)."""

from __future__ import annotations

import math

import moderngl
from imgui_bundle import imgui

from .camera import OrbitCamera
from .gallery_cell import Cell
from .renderer import Renderer, ViewState

LABEL_PX = 20  # the band under each sphere for its label
GAP_PX = 6
EMPTY = (0.07, 0.075, 0.085)  # a cell whose set is not there (yet): a darker square


def grid(n: int, area: tuple[int, int]) -> tuple[int, int, int]:
    """(columns, rows, cell side in pixels) fitting `n` square cells in `area` as large as they can be."""
    w, h = area
    best = (1, n, 0)
    for cols in range(1, n + 1):
        rows = -(-n // cols)
        side = int(min(w / cols, h / rows))
        if side > best[2]:
            best = (cols, rows, side)
    return best


class GalleryRenderer(Renderer):
    def __init__(self, ctx: moderngl.Context):
        super().__init__(ctx)
        self.camera = OrbitCamera()
        self.rects: list[tuple[Cell, tuple[int, int, int, int]]] = []  # GL viewports (x, y from the bottom, w, h)
        self.height = 1

    def layout(self, cells: list[Cell], size: tuple[int, int]) -> None:
        left = int(min(max(self.offset_px, 0.0), size[0] - 1))
        w, h = size[0] - left, size[1]
        cols, rows, side = grid(max(len(cells), 1), (w, h))
        x0, y0 = left + (w - cols * side) // 2, (h - rows * side) // 2  # centred; y0 from the top
        self.rects, self.height = [], size[1]
        for i, cell in enumerate(cells):
            col, row = i % cols, i // cols
            top = y0 + row * side
            self.rects.append((cell, (x0 + col * side, size[1] - top - side, side, side)))

    def cell_at(self, x: float, y_top: float) -> Cell | None:
        """The cell under a point in framebuffer pixels (y from the top)."""
        y = self.height - y_top
        return next((c for c, (rx, ry, rw, rh) in self.rects if rx <= x < rx + rw and ry <= y < ry + rh), None)

    def draw(self, target: moderngl.Framebuffer, size: tuple[int, int], state: ViewState, orbit: OrbitCamera,
             cells: list[Cell], mode: str, scale: float = 1.0) -> dict[str, float]:
        """Every cell's sphere in `mode` into `target`, labels through imgui's foreground list; GPU ms per pass."""
        self.layout(cells, size)
        targets = self._ensure_targets(size)
        fbo = targets.fbos[0]
        with self.queries["A"]:
            fbo.use()
            fbo.viewport, fbo.scissor = (0, 0, *size), None
            fbo.clear(*state.background, 1.0, depth=1.0)
            self.ctx.disable(moderngl.BLEND)
            offset, self.offset_px = self.offset_px, 0.0  # each cell's picture is centred in its own viewport
            try:
                for cell, rect in self.rects:
                    self._cell(fbo, rect, state, orbit, cell.tset(mode))
            finally:
                self.offset_px = offset
        with self.queries["composite"]:  # a copy into the target (which may have no depth buffer)
            target.use()
            target.viewport = (0, 0, *size)
            self.ctx.disable(moderngl.DEPTH_TEST | moderngl.BLEND | moderngl.CULL_FACE)
            targets.color[0].use(0)
            self.composite["u_compare"].value = 0  # single
            self.fullscreen.render(moderngl.TRIANGLES, vertices=3)
        self.frame_index += 1
        self._labels(mode, scale)
        return {"A": self.queries["A"].elapsed / 1e6, "composite": self.queries["composite"].elapsed / 1e6}

    def _cell(self, fbo: moderngl.Framebuffer, rect: tuple[int, int, int, int], state: ViewState,
              orbit: OrbitCamera, tset) -> None:
        x, y, w, h = rect
        inner = (x + GAP_PX // 2, y + LABEL_PX, max(w - GAP_PX, 1), max(h - LABEL_PX - GAP_PX // 2, 1))
        if tset is None or self.mesh is None:
            fbo.scissor = inner
            fbo.clear(*EMPTY, 1.0, depth=1.0)
            fbo.scissor = None
            return
        cam = self.camera
        cam.yaw, cam.pitch, cam.fov_y = orbit.yaw, orbit.pitch, orbit.fov_y
        cam.frame(self.mesh.center, self.mesh.radius, inner[2] / inner[3])
        fbo.viewport = inner
        prepass = self.depth_prepass and (tset.opaque or state.view != "shaded")
        self._draw(fbo, inner[2:], inner, state, tset, cam, self.program_for(tset), prepass, self.frame_index)
        if tset.feedback is not None:
            tset.feedback.update()  # decode on feedback: this cell's missing tiles, for the next frames

    def _labels(self, mode: str, scale: float) -> None:
        """Each cell's name and PSNR in `mode` (or why it is empty) under its sphere."""
        draw = imgui.get_foreground_draw_list()
        for cell, (x, y, w, _) in self.rects:
            psnr = cell.psnr(mode)
            if cell.tset(mode) is None:
                what = "loading..." if cell.loading else "not in this mode" if cell.needs(mode) is None else "waiting"
            else:
                what = "lossless" if psnr is not None and math.isinf(psnr) else f"{psnr:.2f} dB" if psnr else ""
            room = max(w - 2 * GAP_PX, 8) / scale
            name, cut = cell.entry.name, ""
            while len(name) > 1 and imgui.calc_text_size(f"{name}{cut}  {what}").x > room:
                name, cut = name[:-1], ".."  # too long: the name is cut, the PSNR stays
            text = f"{name}{cut}  {what}"
            left = (x + w / 2) / scale - imgui.calc_text_size(text).x / 2  # centred under the sphere
            top = (self.height - y - LABEL_PX + 3) / scale
            draw.add_text(imgui.ImVec2(left, top), imgui.get_color_u32(imgui.ImVec4(0.9, 0.9, 0.9, 1.0)), text)
