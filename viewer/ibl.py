"""Image-based lighting: an environment's prefiltered maps, made on the GPU once per environment and cached.

    envs = Environments(ctx, log)
    maps = envs.get("studio")         # a bundled name or an .exr/.hdr path; None (and one logged line) on failure
    maps.bind(program)                # the ibl.glsl uniforms of pbr.frag / background.frag

Specular: a 512x256 equirectangular map whose mip i is the environment convolved with GGX at roughness
i / (LEVELS - 1) (ibl_prefilter.comp); diffuse: a 32x16 irradiance map (ibl_irradiance.comp); the split sum's
BRDF table is made once per context (ibl_brdf.comp).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import moderngl
import numpy as np

from .environment import load_environment, resolve
from .errors import ViewerError
from .glsl import compile_compute
from .log import Log

SPECULAR_SIZE = (512, 256)
LEVELS = 6  # 512 .. 16 texels wide: roughness 0, 0.2 .. 1
IRRADIANCE_SIZE = (32, 16)
IRRADIANCE_SOURCE_WIDTH = 64  # the source mip the irradiance sums over
BRDF_SIZE = 64
SAMPLES = 64
# texture units clear of the material (0..7), the feedback cache (8) and the decoder (14, 15)
UNITS = {"u_env_specular": 11, "u_env_irradiance": 12, "u_brdf_lut": 13}
GROUP = 8


@dataclass
class EnvironmentMaps:
    name: str
    specular: moderngl.Texture
    irradiance: moderngl.Texture
    brdf: moderngl.Texture
    prefilter_ms: float  # measured with glFinish (llvmpipe's timer queries end before it computes)

    def bind(self, program: moderngl.Program, rotation_deg: float = 0.0, intensity: float = 1.0) -> None:
        for name, unit in UNITS.items():
            if name in program:
                getattr(self, {"u_env_specular": "specular", "u_env_irradiance": "irradiance"}.get(name, "brdf")
                        ).use(unit)
                program[name].value = unit
        for name, value in (("u_env_levels", float(LEVELS)), ("u_env_rotation", math.radians(rotation_deg)),
                            ("u_env_intensity", float(intensity))):
            if name in program:
                program[name].value = value

    def release(self) -> None:
        self.specular.release()
        self.irradiance.release()


def _dispatch(shader: moderngl.ComputeShader, size: tuple[int, int]) -> None:
    shader.run(-(-size[0] // GROUP), -(-size[1] // GROUP), 1)


def _float_texture(ctx: moderngl.Context, size: tuple[int, int], components: int, mips: bool) -> moderngl.Texture:
    tex = ctx.texture(size, components, dtype="f2")
    if mips:
        tex.build_mipmaps(0, LEVELS - 1)
        tex.filter = (moderngl.LINEAR_MIPMAP_LINEAR, moderngl.LINEAR)
    else:
        tex.filter = (moderngl.LINEAR, moderngl.LINEAR)
    tex.repeat_x, tex.repeat_y = True, False  # equirectangular: u wraps, v stops at the poles
    return tex


def brdf_lut(ctx: moderngl.Context) -> moderngl.Texture:
    tex = ctx.texture((BRDF_SIZE, BRDF_SIZE), 2, dtype="f2")
    tex.filter = (moderngl.LINEAR, moderngl.LINEAR)
    tex.repeat_x = tex.repeat_y = False
    shader = compile_compute(ctx, "ibl_brdf.comp")
    tex.bind_to_image(0, read=False, write=True)
    _dispatch(shader, tex.size)
    shader.release()
    return tex


def prefilter(ctx: moderngl.Context, pixels: np.ndarray, name: str, brdf: moderngl.Texture) -> EnvironmentMaps:
    """Upload an equirectangular HDR image and make its specular and irradiance maps."""
    start = time.perf_counter()
    h, w = pixels.shape[:2]
    source = ctx.texture((w, h), 3, np.ascontiguousarray(pixels, np.float32).tobytes(), dtype="f4")
    source.build_mipmaps()
    source.filter = (moderngl.LINEAR_MIPMAP_LINEAR, moderngl.LINEAR)
    source.repeat_x, source.repeat_y = True, False
    source.use(0)
    specular = _float_texture(ctx, SPECULAR_SIZE, 4, mips=True)
    shader = compile_compute(ctx, "ibl_prefilter.comp")
    shader["u_source"].value = 0
    shader["u_samples"].value = SAMPLES
    for level in range(LEVELS):
        shader["u_roughness"].value = level / (LEVELS - 1)
        specular.bind_to_image(0, read=False, write=True, level=level)
        _dispatch(shader, (max(SPECULAR_SIZE[0] >> level, 1), max(SPECULAR_SIZE[1] >> level, 1)))
    irradiance = _float_texture(ctx, IRRADIANCE_SIZE, 4, mips=False)
    conv = compile_compute(ctx, "ibl_irradiance.comp")
    conv["u_source"].value = 0
    conv["u_lod"].value = max(0, int(math.log2(max(w // IRRADIANCE_SOURCE_WIDTH, 1))))
    irradiance.bind_to_image(0, read=False, write=True)
    _dispatch(conv, IRRADIANCE_SIZE)
    ctx.memory_barrier()
    ctx.finish()
    for obj in (shader, conv, source):
        obj.release()
    return EnvironmentMaps(name, specular, irradiance, brdf, (time.perf_counter() - start) * 1e3)


class Environments:
    """Prefiltered maps per environment (bundled name or path), made on first use and kept."""

    def __init__(self, ctx: moderngl.Context, log: Log):
        self.ctx = ctx
        self.log = log
        self.maps: dict[str, EnvironmentMaps] = {}
        self.failed: set[str] = set()  # reported once, not retried every frame
        self._brdf: moderngl.Texture | None = None

    def load(self, key: str, pixels: np.ndarray | None = None) -> EnvironmentMaps:
        """The maps of `key` (a bundled name or a file; `pixels` given: those, under that name). Raises ViewerError."""
        if key not in self.maps:
            if pixels is None:
                pixels = load_environment(resolve(key))
            if self._brdf is None:
                self._brdf = brdf_lut(self.ctx)
            self.maps[key] = prefilter(self.ctx, pixels, Path(key).stem, self._brdf)
            self.log.note(f"environment {Path(key).name}: prefiltered in {self.maps[key].prefilter_ms:.0f} ms")
        return self.maps[key]

    def get(self, key: str) -> EnvironmentMaps | None:
        """The maps of `key`, or None after logging why not (once per key)."""
        if key in self.failed:
            return None
        try:
            return self.load(key)
        except ViewerError as e:
            self.failed.add(key)
            self.log.error(str(e))
            return None

    def release(self) -> None:
        for maps in self.maps.values():
            maps.release()
        self.maps.clear()
        if self._brdf is not None:
            self._brdf.release()
            self._brdf = None
