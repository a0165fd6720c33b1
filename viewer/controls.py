"""Keyboard and mouse: what each key does (`SHORTCUTS`, the F1 help) and the camera's mouse drags.

Input arrives through imgui's io (the window's glfw backend, or events a test injects headless); what the panel
takes (a text field, a drag on a slider) does not reach the scene.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from imgui_bundle import imgui

from .renderer import VIEWS

if TYPE_CHECKING:
    from .app import Viewer

SHORTCUTS = (
    ("F1", "show / hide this help"), ("Tab", "show / hide the panel"),
    ("M / Shift+M", "next / previous mode A"), ("N / Shift+N", "next / previous mode B"),
    ("S", "split screen A | B on / off"), ("D", "difference |A - B| on / off"),
    ("Left / Right", "move the split divider"), ("C / Shift+C", "next / previous channel view"),
    ("] / [", "force a coarser / finer mip (below 0: automatic)"), ("= / -", "LOD bias +/- 0.25"),
    ("0", "automatic mip, no bias"), ("F", "flat view (1:1 texels) / mesh"), ("R", "reframe the camera"),
    ("V", "vsync on / off"), ("P", "screenshot"), ("K", "capture timings of every loaded mode"),
    ("G", "library: the gallery / the chosen material (click a sphere to choose it)"),
    ("Esc", "quit"), ("mouse", "left drag: orbit (flat view: pan), right/middle drag: pan, wheel: zoom"),
    ("click", "glTF scene: select the material of the mesh under the cursor"),
)
CLICK_SLOP_PX = 4  # a left press and release moving less than this is a click (picking), not an orbit
SPLIT_STEP = 0.02
LOD_BIAS_STEP, LOD_BIAS_MAX = 0.25, 8.0


def handle_input(viewer: Viewer) -> None:
    io = imgui.get_io()
    if not io.want_capture_mouse:
        handle_mouse(viewer)
    if not io.want_capture_keyboard:
        handle_keys(viewer, io.key_shift)


def handle_mouse(viewer: Viewer) -> None:
    io, camera = imgui.get_io(), viewer.camera
    delta = io.mouse_delta
    if imgui.is_mouse_down(0) and (delta.x or delta.y):
        camera.orbit(delta.x, delta.y)
    if (imgui.is_mouse_down(1) or imgui.is_mouse_down(2)) and (delta.x or delta.y):
        camera.pan(delta.x, delta.y, int(io.display_size.y))
    if io.mouse_wheel:
        camera.zoom(io.mouse_wheel)
    if (viewer.gltf is not None and not viewer.state.flat and imgui.is_mouse_released(0)
            and io.mouse_drag_max_distance_sqr[0] < CLICK_SLOP_PX**2):
        scale = io.display_framebuffer_scale  # window points to framebuffer pixels
        viewer.gltf.pick(io.mouse_pos.x * scale.x, io.mouse_pos.y * scale.y)


def handle_keys(viewer: Viewer, shift: bool) -> None:
    key, pressed, s, panel = imgui.Key, imgui.is_key_pressed, viewer.state, viewer.panel
    step = -1 if shift else 1
    if pressed(key.f1, False):
        panel.help_visible = not panel.help_visible
    if pressed(key.tab, False):
        panel.visible = not panel.visible
    if pressed(key.m, False):
        s.mode_a = viewer.cycle_mode(s.mode_a, step)
    if pressed(key.n, False):
        s.mode_b = viewer.cycle_mode(s.mode_b, step)
    if pressed(key.s, False):
        s.compare = "single" if s.compare == "split" else "split"
    if pressed(key.d, False):
        s.compare = "single" if s.compare == "difference" else "difference"
    if pressed(key.left_arrow):
        s.split = max(0.0, s.split - SPLIT_STEP)
    if pressed(key.right_arrow):
        s.split = min(1.0, s.split + SPLIT_STEP)
    if pressed(key.c, False):
        s.view = VIEWS[(VIEWS.index(s.view) + step) % len(VIEWS)]
    if pressed(key.right_bracket):
        s.force_mip = min(s.force_mip + 1, viewer.scene.mips() - 1)
    if pressed(key.left_bracket):
        s.force_mip = max(s.force_mip - 1, -1)
    if pressed(key.equal):
        s.lod_bias = min(s.lod_bias + LOD_BIAS_STEP, LOD_BIAS_MAX)
    if pressed(key.minus):
        s.lod_bias = max(s.lod_bias - LOD_BIAS_STEP, -LOD_BIAS_MAX)
    if pressed(key._0, False):
        s.force_mip, s.lod_bias = -1, 0.0
    if pressed(key.f, False):
        s.flat = not s.flat
    if pressed(key.r, False):
        viewer.reframe()
    if pressed(key.v, False):
        viewer.vsync = not viewer.vsync
    if pressed(key.p, False) or pressed(key.f12, False):
        viewer.captures.request_screenshot()
    if pressed(key.k, False) and viewer.captures.running is None:
        viewer.start_capture()
    if pressed(key.escape, False):
        viewer.quit = True
