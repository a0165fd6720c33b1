"""Picking: which primitive of a glTF scene covers a pixel, from an ID render of that one pixel.

Each primitive is drawn (shaders/pick.frag) with its index + 1 into a 32-bit integer target, scissored to the pixel
asked for, and that pixel is read back: one small render on a click, nothing per frame. Cut-outs (alpha mask) are
not honoured: a click on a masked texel picks its primitive.
"""

from __future__ import annotations

import moderngl
import numpy as np

from .glsl import compile_program
from .renderer import Renderer, _write


class Picker:
    def __init__(self, ctx: moderngl.Context):
        self.ctx = ctx
        self.program = compile_program(ctx, vertex="pbr.vert", fragment="pick.frag")
        self.size: tuple[int, int] | None = None
        self.ids = self.depth = self.fbo = None

    def _targets(self, size: tuple[int, int]) -> moderngl.Framebuffer:
        if self.size != size:
            self._release_targets()
            self.ids = self.ctx.texture(size, 1, dtype="i4")
            self.depth = self.ctx.depth_renderbuffer(size)
            self.fbo = self.ctx.framebuffer([self.ids], self.depth)
            self.size = size
        return self.fbo

    def pick(self, renderer: Renderer, scene_draw, size: tuple[int, int], camera, x: int, y: int) -> int | None:
        """The primitive (index into `scene_draw.data.primitives`) at pixel (x, y), y from the bottom; None: none."""
        if not (0 <= x < size[0] and 0 <= y < size[1]) or renderer.mesh is None:
            return None
        fbo = self._targets(size)
        fbo.use()
        fbo.viewport = (0, 0, *size)
        fbo.scissor = (x, y, 1, 1)
        fbo.clear(0, 0, 0, 0, depth=1.0)
        self.ctx.enable(moderngl.DEPTH_TEST)
        self.ctx.disable(moderngl.BLEND | moderngl.CULL_FACE)
        _write(self.program, "u_view_proj", renderer._view_proj(size, camera, None))
        _write(self.program, "u_model", np.eye(4, dtype=np.float32))
        _write(self.program, "u_normal_matrix", np.eye(3, dtype=np.float32))
        vao = renderer._vao(self.program)
        for i, prim in enumerate(scene_draw.data.primitives):
            self.program["u_pick_id"].value = i
            vao.render(moderngl.TRIANGLES, vertices=prim.count * 3, first=prim.first * 3)
        value = int(np.frombuffer(fbo.read(viewport=(x, y, 1, 1), components=1, dtype="i4"), np.int32)[0])
        fbo.scissor = None
        self.ctx.disable(moderngl.DEPTH_TEST)
        return value - 1 if value > 0 else None

    def _release_targets(self) -> None:
        for obj in (self.fbo, self.ids, self.depth):
            if obj is not None:
                obj.release()

    def release(self) -> None:
        self._release_targets()
        self.program.release()
