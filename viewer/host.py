"""What a view the viewer hosts (a glTF scene, a library's gallery) reads and sets of it: a Protocol that
`viewer.app.Viewer` meets, so that those views depend on this small surface, not on the viewer that opens them."""

from __future__ import annotations

from typing import Protocol

import moderngl

from .camera import FlatCamera, OrbitCamera
from .log import Log
from .renderer import Renderer, ViewState
from .scene import Scene


class HostPanel(Protocol):
    @property
    def scale(self) -> float: ...  # framebuffer pixels per unit of the panel's width


class Host(Protocol):
    ctx: moderngl.Context
    log: Log
    scene: Scene  # the material the panel shows: a view may set it (a glTF scene's selected material)
    state: ViewState
    renderer: Renderer
    orbit: OrbitCamera
    size: tuple[int, int]  # the window's framebuffer, pixels

    @property
    def panel(self) -> HostPanel: ...

    @property
    def camera(self) -> OrbitCamera | FlatCamera: ...
