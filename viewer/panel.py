"""The viewer's user interface: the imgui side panel (status, scene, compare, facts, GPU timings, lighting, log),
the F1 help window, and the keys and mouse (`viewer.controls`, read through imgui's io).

`Panel` owns the imgui and implot contexts and their OpenGL 3 backend (and glfw's, in a window); it reads the
viewer and calls its actions. Modes come from the scene (`Scene.modes`, labels from `viewer.modes`), so a new mode
shows up here without a change.
"""

from __future__ import annotations

import ctypes
from pathlib import Path
from typing import TYPE_CHECKING

import moderngl
import numpy as np
from imgui_bundle import imgui, implot

from .captures import INVALID_QUERY_MS
from .controls import SHORTCUTS, handle_input
from .library_picker import library_section
from .modes import PRESET_SEP, mode_label
from .panel_env import environment_section
from .panel_scene import scene_section
from .renderer import COLORMAPS, COMPARES, PASSES, TONEMAPS, VIEWS

if TYPE_CHECKING:
    from .app import Viewer

PANEL_WIDTH = 350
ERROR_COLOR = (1.0, 0.35, 0.3, 1.0)


def human_bytes(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 2**10:.1f} KiB"


class Panel:
    def __init__(self, window=None):
        self.window = window
        self.imgui_context = imgui.create_context()
        imgui.set_current_context(self.imgui_context)  # create_context keeps another viewer's current
        self.implot_context = implot.create_context()
        implot.set_current_context(self.implot_context)
        imgui.get_io().set_ini_filename("")
        if window is not None:
            imgui.backends.glfw_init_for_opengl(ctypes.cast(window, ctypes.c_void_p).value, True)
        imgui.backends.opengl3_init("#version 430")
        self.visible = True
        self.help_visible = False
        self.width = 0.0  # as last drawn (0 when collapsed): the picture is centred right of it
        self.path_input = ""

    # ------------------------------------------------------------------------------------- frame

    def make_current(self) -> None:
        imgui.set_current_context(self.imgui_context)
        implot.set_current_context(self.implot_context)

    def begin(self, viewer: Viewer, size: tuple[int, int], seconds: float) -> None:
        """Start imgui's frame (headless, the display size and frame time come from the host), then handle the
        input (headless: only events a test injects, io.add_key_event)."""
        self.make_current()
        imgui.backends.opengl3_new_frame()
        if self.window is not None:
            imgui.backends.glfw_new_frame()
        else:
            io = imgui.get_io()
            io.display_size = imgui.ImVec2(*size)
            io.delta_time = max(seconds, 1e-4)
        imgui.new_frame()
        handle_input(viewer)

    @property
    def scale(self) -> float:
        """Framebuffer pixels per imgui unit (a window on a high-DPI screen has more than 1)."""
        return imgui.get_io().display_framebuffer_scale.x if self.window is not None else 1.0

    def draw(self, viewer: Viewer, visible: bool) -> None:
        if visible:
            self.draw_panel(viewer)
        if self.help_visible:
            self.draw_help()
        imgui.render()

    def render(self, target: moderngl.Framebuffer) -> None:
        target.use()
        imgui.backends.opengl3_render_draw_data(imgui.get_draw_data())

    def release(self) -> None:
        self.make_current()
        imgui.backends.opengl3_shutdown()
        if self.window is not None:
            imgui.backends.glfw_shutdown()
        implot.destroy_context(self.implot_context)
        imgui.destroy_context(self.imgui_context)

    # ------------------------------------------------------------------------------------- panel

    def draw_panel(self, v: Viewer) -> None:
        w, h = imgui.get_io().display_size
        imgui.set_next_window_pos(imgui.ImVec2(0, 0), imgui.Cond_.first_use_ever)
        width = min(PANEL_WIDTH, max(220.0, w * 0.4))
        imgui.set_next_window_size(imgui.ImVec2(width, h), imgui.Cond_.first_use_ever)
        # A side panel: as tall as the window whenever it is resized; its width stays the user's.
        imgui.set_next_window_size_constraints(imgui.ImVec2(min(200.0, w), h), imgui.ImVec2(max(200.0, w * 0.8), h))
        imgui.set_next_window_bg_alpha(0.92)
        visible, _ = imgui.begin("NGTC viewer  (F1: help)")
        self.width = imgui.get_window_width() if not imgui.is_window_collapsed() else 0.0
        if visible:
            self._status(v)
            sections = (("Scene", self._scene, True), ("Compare", self._compare, True), ("Facts", self._facts, True),
                        ("GPU timings", self._timings, True), ("Environment", environment_section, True),
                        ("Lighting", self._lighting, False))
            if v.gltf is not None:  # a whole glTF scene: its materials (the selected one is `v.scene`)
                sections = (("glTF scene", scene_section, True), *sections)
            if v.library is not None:  # `ngtc view LIBRARY_DIR`: the picker and the gallery first
                sections = (("Library", library_section, True), *sections)
            for title, section, is_open in sections:
                if imgui.collapsing_header(title, imgui.TreeNodeFlags_.default_open if is_open else 0):
                    section(v)
            if v.log.messages and imgui.collapsing_header("Log"):
                for message in v.log.messages:
                    imgui.text_disabled(message)
        imgui.end()

    def _status(self, v: Viewer) -> None:
        for job in v.scene.jobs:
            fraction = job.fraction()
            imgui.text(f"{job.label}..." if fraction is None else f"{job.label}: encoding")
            overlay = f"{job.elapsed:.1f} s" if fraction is None else f"{fraction:.0%}, {job.elapsed:.1f} s"
            imgui.progress_bar(-1.0 * imgui.get_time() if fraction is None else fraction, imgui.ImVec2(-1, 0),
                               overlay)
        cap = v.captures.running
        if cap is not None:
            imgui.text(f"capturing {cap.current()[0]}")
            imgui.progress_bar(cap.fraction, imgui.ImVec2(-1, 0))
        if v.log.errors:
            imgui.push_text_wrap_pos(0.0)
            for message in v.log.errors:
                imgui.text_colored(imgui.ImVec4(*ERROR_COLOR), f"error: {message}")
            imgui.pop_text_wrap_pos()
            if imgui.small_button("dismiss errors (and retry failed modes)"):
                v.log.errors.clear()
                v.scene.failed.clear()

    def _scene(self, v: Viewer) -> None:
        scene, m = v.scene, v.scene.material
        imgui.text(f"material: {m.name} {m.width}x{m.height}" if m else "material: none")
        imgui.text(f".ngtc: {scene.ngtc_path.name}" if scene.ngtc_path else ".ngtc: none")
        imgui.text(f"mesh: {scene.mesh.name}" if scene.mesh else "mesh: none")
        imgui.set_next_item_width(-1)
        _, self.path_input = imgui.input_text_with_hint("##path", "path to a material, .ngtc or mesh",
                                                       self.path_input)
        path = Path(self.path_input.strip()) if self.path_input.strip() else None
        actions = (("load material", scene.load_material), ("load .ngtc", scene.load_ngtc),
                   ("add .ngtc", scene.add_ngtc), ("load mesh", scene.load_mesh))
        for i, (label, action) in enumerate(actions):
            if i:
                imgui.same_line()
            if imgui.button(label) and path is not None:
                action(path)
            if i == 2 and imgui.is_item_hovered():
                imgui.set_tooltip("another .ngtc of this material (e.g. another preset) as extra neural modes")
        keys = scene.preset_keys()
        if keys:
            imgui.push_text_wrap_pos(0.0)
            imgui.text_disabled(f"more presets (modes neural{PRESET_SEP}...): {', '.join(keys)}")
            imgui.pop_text_wrap_pos()
        _, v.state.flat = imgui.checkbox("flat view, 1:1 texels (F)", v.state.flat)
        imgui.same_line()
        if imgui.button("reframe"):
            v.reframe()
        if v.state.flat:
            imgui.text_disabled(f"zoom {v.flat_camera.scale:.3g} pixels per texel (wheel; reframe: 1:1)")

    def _mode_combo(self, v: Viewer, label: str, current: str) -> str:
        modes, sets = v.scene.modes(), v.scene.sets
        items = [sets[m].label if m in sets else f"{mode_label(m)}  (not loaded)" for m in modes]
        _, i = imgui.combo(label, modes.index(current) if current in modes else 0, items)
        return modes[i]

    def _compare(self, v: Viewer) -> None:
        s = v.state
        s.mode_a = self._mode_combo(v, "mode A", s.mode_a)
        for i, name in enumerate(COMPARES):
            if i:
                imgui.same_line()
            if imgui.radio_button(name, s.compare == name):
                s.compare = name
        if s.compare != "single":
            s.mode_b = self._mode_combo(v, "mode B", s.mode_b)
        if s.compare == "split":
            _, s.split = imgui.slider_float("split", s.split, 0.0, 1.0, "%.2f")
        if s.compare == "difference":
            _, s.gain = imgui.slider_float("gain", s.gain, 1.0, 64.0, "%.1f", imgui.SliderFlags_.logarithmic)
            _, c = imgui.combo("color map", COLORMAPS.index(s.colormap), list(COLORMAPS))
            s.colormap = COLORMAPS[c]
        _, view = imgui.combo("channel", VIEWS.index(s.view), list(VIEWS))
        s.view = VIEWS[view]
        forced = s.force_mip >= 0
        changed, forced = imgui.checkbox("force mip", forced)
        if changed:
            s.force_mip = 0 if forced else -1
        if forced:
            imgui.same_line()
            imgui.set_next_item_width(-1)
            _, s.force_mip = imgui.slider_int("##mip", s.force_mip, 0, v.scene.mips() - 1)
        _, s.lod_bias = imgui.slider_float("LOD bias", s.lod_bias, -4.0, 8.0, "%.2f")
        for name, frames in v.renderer.accumulated.items():  # stochastic filtering: the mean of still frames
            imgui.text_disabled(f"mode {name}: {frames} frames accumulated (any change starts again)")
        for mode in v.shown_modes():  # decode on feedback: what the tile cache did last frame
            cache = getattr(v.scene.sets.get(mode), "feedback", None)
            if cache is not None:
                imgui.text_disabled(f"{mode}: {cache.summary()}")

    def _facts(self, v: Viewer) -> None:
        flags = (imgui.TableFlags_.borders_inner_h | imgui.TableFlags_.row_bg | imgui.TableFlags_.sizing_fixed_fit
                 | imgui.TableFlags_.scroll_x)  # long mode names: scroll sideways, not cut off
        sets, report = v.scene.sets, v.scene.report
        loaded = [m for m in v.scene.modes() if m in sets]
        style = imgui.get_style()
        row = imgui.get_text_line_height() + 2 * style.cell_padding.y
        height = (len(loaded) + 1) * row + style.scrollbar_size + 2 * style.cell_padding.y
        if not imgui.begin_table("facts", 4, flags, imgui.ImVec2(0, height)):
            return
        imgui.table_setup_scroll_freeze(1, 1)
        for title in ("mode", "bpp", "on GPU", "PSNR mip 0 1"):
            imgui.table_setup_column(title)
        imgui.table_headers_row()
        for mode in loaded:
            tset = sets[mode]
            psnr = report.get(mode) or tset.psnr
            imgui.table_next_row()
            imgui.table_next_column()
            imgui.text(mode)
            imgui.table_next_column()
            imgui.text(f"{tset.bits_per_texel:.2f}" if tset.bits_per_texel else "-")
            imgui.table_next_column()
            imgui.text(human_bytes(tset.gpu_bytes))
            imgui.table_next_column()
            imgui.text(" ".join(f"{p:.1f}" for p in psnr[:2]) if psnr else "ref" if mode == "reference" else "-")
            if imgui.is_item_hovered():
                where = "report.json" if mode in report else "the stored file / computed on load"
                per_mip = "  ".join(f"{k}: {p:.2f}" for k, p in enumerate(psnr or []))
                imgui.set_tooltip("\n".join([tset.label, *tset.notes, f"PSNR (dB) per mip, from {where}:",
                                              per_mip or "-"]))
        imgui.end_table()

    def _timings(self, v: Viewer) -> None:
        t, history = v.timings, v.history
        fps = 1e3 / np.mean(history["frame"]) if history["frame"] else 0.0
        imgui.text(" ".join(f"{k} {t[k]:.2f}" if t[k] < INVALID_QUERY_MS else f"{k} n/a"  # query had no result
                            for k in (*PASSES, "panel") if k in t) + " ms")
        imgui.text(f"frame {np.mean(history['frame'] or [0]):.1f} ms ({fps:.1f} FPS), {v.size[0]}x{v.size[1]}")
        if implot.begin_plot("##timings", imgui.ImVec2(-1, 130), implot.Flags_.no_title):
            implot.setup_axes("frame", "ms", implot.AxisFlags_.auto_fit, implot.AxisFlags_.auto_fit)
            implot.setup_legend(implot.Location_.north, implot.LegendFlags_.horizontal)
            for name in (*PASSES, "panel"):
                if history[name]:
                    implot.plot_line(name, np.asarray(history[name], np.float32))
            implot.end_plot()
        self._capture_buttons(v)

    def _capture_buttons(self, v: Viewer) -> None:
        captures = v.captures
        _, v.vsync = imgui.checkbox("vsync (V)", v.vsync)
        imgui.same_line()
        if imgui.button("screenshot (P)"):
            captures.request_screenshot()
        imgui.set_next_item_width(90)
        _, frames = imgui.input_int("frames", captures.frames, 10)
        captures.frames = max(1, min(frames, 10000))
        imgui.same_line()
        if imgui.button("capture (K)") and captures.running is None:
            v.start_capture()
        if captures.last:
            imgui.text_disabled(f"{captures.last[0].name} (+ .csv)")

    def _lighting(self, v: Viewer) -> None:
        s = v.state
        _, t = imgui.combo("tone map", TONEMAPS.index(s.tonemap), list(TONEMAPS))
        s.tonemap = TONEMAPS[t]
        _, s.exposure = imgui.slider_float("exposure", s.exposure, 0.05, 8.0, "%.2f", imgui.SliderFlags_.logarithmic)
        _, s.light_yaw = imgui.slider_float("light yaw", s.light_yaw, -180.0, 180.0, "%.0f")
        _, s.light_pitch = imgui.slider_float("light pitch", s.light_pitch, -10.0, 90.0, "%.0f")
        _, s.light_intensity = imgui.slider_float("light", s.light_intensity, 0.0, 10.0, "%.2f")
        _, s.normal_strength = imgui.slider_float("normal strength", s.normal_strength, 0.0, 2.0, "%.2f")
        _, s.uv_scale = imgui.slider_float("UV tiling", s.uv_scale, 0.25, 8.0, "%.2f")

    # ------------------------------------------------------------------------------------- help

    def draw_help(self) -> None:
        io = imgui.get_io()
        imgui.set_next_window_pos(imgui.ImVec2(io.display_size.x / 2, io.display_size.y / 2), imgui.Cond_.always,
                                  imgui.ImVec2(0.5, 0.5))
        flags = imgui.WindowFlags_.always_auto_resize | imgui.WindowFlags_.no_collapse
        visible, opened = imgui.begin("Keyboard shortcuts", True, flags)
        if visible and imgui.begin_table("keys", 2, imgui.TableFlags_.row_bg):
            for keys, what in SHORTCUTS:
                imgui.table_next_row()
                imgui.table_next_column()
                imgui.text(keys)
                imgui.table_next_column()
                imgui.text(what)
            imgui.end_table()
        imgui.end()
        if opened is False:
            self.help_visible = False
