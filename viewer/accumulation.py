"""Frames of a noisy mode averaged while nothing changes: stochastic filtering converges to the trilinear image.

Stochastic on-sample filtering decodes one texel of one mip per pixel, picked with its trilinear weight and a new
random pattern each frame (`mat_frame`): unbiased, but noisy. While the view and its settings stay the same, each
new frame of the pass is blended into a float running mean, mean = mean (1 - 1/n) + frame / n (blending with the
constant alpha 1/n), which the composite shows instead of the frame; any change starts it again at n = 1.
"""

from __future__ import annotations

import ctypes
from collections.abc import Hashable

import moderngl
import numpy as np

from .materials_gl import _GL

GL_CONSTANT_ALPHA = 0x8003
GL_ONE_MINUS_CONSTANT_ALPHA = 0x8004


def snapshot(*objects: object) -> tuple:
    """The fields of `objects` (dataclasses: the view state, a camera) as one comparable value."""
    return tuple(tuple((k, v.tolist() if isinstance(v, np.ndarray) else v) for k, v in vars(o).items())
                 for o in objects)


def _blend_color(alpha: float) -> None:
    gl = _GL.lib()
    gl.glBlendColor.argtypes = [ctypes.c_float] * 4
    gl.glBlendColor(0.0, 0.0, 0.0, alpha)


class Accumulation:
    """The running mean of one pass's frames, in an RGBA32F texture of `size`."""

    def __init__(self, ctx: moderngl.Context, size: tuple[int, int]):
        self.ctx, self.size = ctx, size
        self.texture = ctx.texture(size, 4, dtype="f4")
        self.texture.filter = (moderngl.NEAREST, moderngl.NEAREST)
        self.fbo = ctx.framebuffer([self.texture])
        self.key: Hashable = None
        self.frames = 0

    def add(self, key: Hashable, frame: moderngl.Texture, copy: moderngl.VertexArray) -> moderngl.Texture:
        """Blend `frame` into the mean, which starts again when `key` (what the frame depends on) changed.
        `copy` draws texture unit 0 to the viewport as it is. Returns the mean."""
        self.frames = self.frames + 1 if self.key is not None and key == self.key else 1
        self.key = key
        self.fbo.use()
        self.fbo.viewport = (0, 0, *self.size)
        if self.frames == 1:
            self.fbo.clear()  # a new texture's contents are undefined: NaN x 0 is still NaN
        frame.use(0)
        self.ctx.enable(moderngl.BLEND)
        self.ctx.blend_func = (GL_CONSTANT_ALPHA, GL_ONE_MINUS_CONSTANT_ALPHA)
        _blend_color(1.0 / self.frames)
        copy.render(moderngl.TRIANGLES, vertices=3)
        self.ctx.blend_func = moderngl.DEFAULT_BLENDING
        self.ctx.disable(moderngl.BLEND)
        return self.texture

    def restart(self) -> None:
        """The next frame starts the mean again (what the key does not say changed: the mesh)."""
        self.key = None

    def release(self) -> None:
        self.fbo.release()
        self.texture.release()
