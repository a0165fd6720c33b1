"""The texture uploads moderngl does not offer: every mip level of a chain with its own data, and ASTC images.

Through the few raw GL entry points they need (`RawGL`, loaded with ctypes). GLVND's libOpenGL dispatches to
whatever context is current, GLX (glfw) or EGL (headless). Texture row 0 is v = 0 (numpy order).
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Sequence

import moderngl
import numpy as np

GL_TEXTURE_2D = 0x0DE1
GL_TEXTURE0 = 0x84C0
GL_RGBA8 = 0x8058
GL_RGBA = 0x1908
GL_UNSIGNED_BYTE = 0x1401
GL_TEXTURE_BASE_LEVEL = 0x813C
GL_TEXTURE_MAX_LEVEL = 0x813D
GL_UNPACK_ALIGNMENT = 0x0CF5
GL_PIXEL_UNPACK_BUFFER = 0x88EC
ASTC_FORMATS = {(4, 4): 0x93B0, (5, 4): 0x93B1, (5, 5): 0x93B2, (6, 5): 0x93B3, (6, 6): 0x93B4, (8, 5): 0x93B5,
                (8, 6): 0x93B6, (8, 8): 0x93B7, (10, 5): 0x93B8, (10, 6): 0x93B9, (10, 8): 0x93BA,
                (10, 10): 0x93BB, (12, 10): 0x93BC, (12, 12): 0x93BD}


class GLUploadError(ValueError):
    """A texture that cannot be uploaded (one line)."""


class RawGL:
    """The few GL entry points moderngl does not offer (explicit mip data, compressed images)."""

    _lib: ctypes.CDLL | None = None

    @classmethod
    def lib(cls) -> ctypes.CDLL:
        if cls._lib is None:
            for name in ("libOpenGL.so.0", "libGL.so.1", ctypes.util.find_library("GL") or "", "opengl32"):
                try:
                    lib = ctypes.CDLL(name)
                    lib.glCompressedTexImage2D  # noqa: B018 - probe the symbol
                    cls._lib = lib
                    break
                except (OSError, AttributeError):
                    continue
            else:
                raise GLUploadError("cannot load the OpenGL library for texture uploads")
            u, i, p = ctypes.c_uint, ctypes.c_int, ctypes.c_void_p
            lib.glTexImage2D.argtypes = [u, i, i, i, i, i, u, u, p]
            lib.glCompressedTexImage2D.argtypes = [u, i, u, i, i, i, i, p]
            lib.glTexParameteri.argtypes = [u, u, i]
            lib.glBindTexture.argtypes = [u, u]
            lib.glActiveTexture.argtypes = [u]
            lib.glPixelStorei.argtypes = [u, i]
            lib.glBindBuffer.argtypes = [u, u]
            lib.glGetError.restype = u
        return cls._lib


def _bind_for_upload(tex: moderngl.Texture) -> ctypes.CDLL:
    gl = RawGL.lib()
    gl.glGetError()  # clear stale errors
    gl.glActiveTexture(GL_TEXTURE0)
    gl.glBindTexture(GL_TEXTURE_2D, tex.glo)
    gl.glBindBuffer(GL_PIXEL_UNPACK_BUFFER, 0)
    gl.glPixelStorei(GL_UNPACK_ALIGNMENT, 1)
    return gl


def _finish_chain(tex: moderngl.Texture, gl: ctypes.CDLL, levels: int, what: str) -> None:
    gl.glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_BASE_LEVEL, 0)
    gl.glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MAX_LEVEL, levels - 1)
    err = gl.glGetError()
    if err:
        raise GLUploadError(f"{what}: OpenGL error 0x{err:04X} while uploading")
    tex.filter = (moderngl.LINEAR_MIPMAP_LINEAR, moderngl.LINEAR)
    tex.repeat_x = tex.repeat_y = True


def upload_rgba8_chain(ctx: moderngl.Context, levels: Sequence[np.ndarray], what: str = "texture") -> moderngl.Texture:
    """An RGBA8 texture whose every mip level is the given (H_k, W_k, 4) uint8 array (row 0 = v = 0)."""
    h, w = levels[0].shape[:2]
    tex = ctx.texture((w, h), 4, np.ascontiguousarray(levels[0]).tobytes())
    gl = _bind_for_upload(tex)
    for k, level in enumerate(levels[1:], 1):
        data = np.ascontiguousarray(level, np.uint8)
        gl.glTexImage2D(GL_TEXTURE_2D, k, GL_RGBA8, data.shape[1], data.shape[0], 0, GL_RGBA, GL_UNSIGNED_BYTE,
                        data.ctypes.data)
    _finish_chain(tex, gl, len(levels), what)
    return tex


def upload_astc_chain(ctx: moderngl.Context, images: Sequence[tuple[bytes, tuple[int, int], tuple[int, int]]],
                      what: str = "ASTC texture") -> moderngl.Texture:
    """A texture from ASTC images (blocks, (bx, by), (w, h)) of mip 0, 1, ... uploaded as compressed data."""
    (_, block, (w, h)) = images[0]
    if block not in ASTC_FORMATS:
        raise GLUploadError(f"{what}: no GL format for ASTC {block[0]}x{block[1]}")
    tex = ctx.texture((w, h), 4)  # moderngl owns the name; the levels are redefined as compressed below
    gl = _bind_for_upload(tex)
    for k, (blocks, blk, (lw, lh)) in enumerate(images):
        if blk != block:
            raise GLUploadError(f"{what}: mip {k} is {blk[0]}x{blk[1]}, mip 0 is {block[0]}x{block[1]}")
        buf = ctypes.create_string_buffer(blocks, len(blocks))
        gl.glCompressedTexImage2D(GL_TEXTURE_2D, k, ASTC_FORMATS[block], lw, lh, 0, len(blocks), buf)
    _finish_chain(tex, gl, len(images), what)
    return tex


def chain_bytes(width: int, height: int, levels: int, bytes_per_texel: int = 4) -> int:
    return sum(max(1, width >> k) * max(1, height >> k) for k in range(levels)) * bytes_per_texel
