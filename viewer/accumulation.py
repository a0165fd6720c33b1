"""Frames of a noisy mode averaged while nothing changes: stochastic filtering converges to the trilinear image.

Stochastic on-sample filtering decodes one texel of one mip per pixel, picked with its trilinear weight (frame n
of a still view picks with the n-th point of a low-discrepancy sequence: `mat_picks` in shaders/material.glsl):
unbiased, but noisy. While the view and its settings stay the same, each new frame is blended into float
textures holding the running mean, mean = mean (1 - 1/n) + frame / n (blending with the constant alpha 1/n); any
change starts it again at n = 1. What is averaged is up to the renderer (`Renderer.mean_pass`): the texels picked,
shaded once averaged (the trilinear image in the limit: trilinear shades the weighted mean of the 8 texels), or
whole shaded frames.
"""

from __future__ import annotations

import ctypes
from collections.abc import Hashable

import moderngl
import numpy as np

from .gl_upload import RawGL

GL_CONSTANT_ALPHA = 0x8003
GL_ONE_MINUS_CONSTANT_ALPHA = 0x8004


def snapshot(*objects: object) -> tuple:
    """The fields of `objects` (dataclasses: the view state, a camera) as one comparable value."""
    return tuple(tuple((k, v.tolist() if isinstance(v, np.ndarray) else v) for k, v in vars(o).items())
                 for o in objects)


def _blend_color(alpha: float) -> None:
    gl = RawGL.lib()
    gl.glBlendColor.argtypes = [ctypes.c_float] * 4
    gl.glBlendColor(0.0, 0.0, 0.0, alpha)


class Accumulation:
    """The running mean of one pass's frames: `count` RGBA32F textures of `size`, with a depth buffer so that the
    mesh can be drawn into them."""

    def __init__(self, ctx: moderngl.Context, size: tuple[int, int], count: int = 1):
        self.ctx, self.size, self.count = ctx, size, count
        self.textures = [ctx.texture(size, 4, dtype="f4") for _ in range(count)]
        for tex in self.textures:
            tex.filter = (moderngl.NEAREST, moderngl.NEAREST)
        self.depth = ctx.depth_renderbuffer(size)
        self.fbo = ctx.framebuffer(self.textures, self.depth)
        self.key: Hashable = None
        self.frames = 0

    def upcoming(self, key: Hashable) -> int:
        """The frame count the next `begin(key)` makes."""
        return self.frames + 1 if self.key is not None and key == self.key else 1

    def begin(self, key: Hashable) -> int:
        """Frame n of the mean, n = 1 when `key` (what the frames depend on) changed: whatever is drawn into `fbo`
        until `end` is blended in with the weight 1/n. Returns n."""
        self.frames, self.key = self.upcoming(key), key
        self.fbo.use()
        self.fbo.viewport = (0, 0, *self.size)
        if self.frames == 1:
            self.fbo.clear()  # a new texture's contents are undefined: NaN x 0 is still NaN
        self.ctx.enable(moderngl.BLEND)
        self.ctx.blend_func = (GL_CONSTANT_ALPHA, GL_ONE_MINUS_CONSTANT_ALPHA)
        _blend_color(1.0 / self.frames)
        return self.frames

    def end(self) -> None:
        self.ctx.blend_func = moderngl.DEFAULT_BLENDING
        self.ctx.disable(moderngl.BLEND)

    def add(self, key: Hashable, frame: moderngl.Texture, copy: moderngl.VertexArray) -> moderngl.Texture:
        """Blend `frame` into the mean (of a one-texture accumulation). `copy` draws texture unit 0 to the viewport
        as it is. Returns the mean."""
        self.begin(key)
        frame.use(0)
        copy.render(moderngl.TRIANGLES, vertices=3)
        self.end()
        return self.textures[0]

    def restart(self) -> None:
        """The next frame starts the mean again (what the key does not say changed: the mesh)."""
        self.key = None

    def release(self) -> None:
        for obj in (self.fbo, self.depth, *self.textures):
            obj.release()
