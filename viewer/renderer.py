"""The one render callback: mode A (and B) through the PBR pass into offscreen targets, then the composite.

    renderer = Renderer(ctx)
    renderer.set_mesh(mesh)
    timings_ms = renderer.render(target_fbo, (w, h), state, sets, camera)

Passes, each inside a GL timer query (`timings_ms`: "A", "B", "composite"):
- A: the scene with `sets[state.mode_a]`; in split mode only left of the divider (scissor);
- B: with `sets[state.mode_b]` (split: right of the divider; difference: everywhere); skipped for "single";
- composite: A, split A|B, or the difference |A - B| x gain through a color map, into `target`.
A and B draw depth first (shaders/depth.frag) when nothing is cut out, so that the material shader, which
may decode the neural texture per pixel, runs once per visible pixel. A pass in a noisy mode (stochastic
filtering) shows the mean of its frames since the view last changed (`mean_pass`, `viewer.accumulation`;
`accumulated`: frames per pass).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field

import moderngl
import numpy as np

from .accumulation import Accumulation, snapshot
from .environment import DEFAULT_ENVIRONMENT
from .glsl import compile_program
from .ibl import EnvironmentMaps
from .materials_gl import TextureSet
from .mesh import VERTEX_ATTRIBUTES, VERTEX_FORMAT, MeshData
from .modes import accumulates

VIEWS = ("shaded", "basecolor", "normal", "roughness", "metallic", "ao", "height", "opacity", "emissive",
         "specular", "mip level")
COMPARES = ("single", "split", "difference")
COLORMAPS = ("gray", "turbo", "heat")
TONEMAPS = ("aces", "reinhard", "none")
PASSES = ("A", "B", "composite")


@dataclass
class ViewState:
    """Everything the panel, the keyboard and `ngtc render` can change about the picture."""

    mode_a: str = "reference"
    mode_b: str = "neural"
    compare: str = "single"  # single | split | difference
    split: float = 0.5  # divider position, fraction of the width
    view: str = "shaded"
    force_mip: int = -1  # -1: automatic (from derivatives)
    lod_bias: float = 0.0
    gain: float = 4.0
    colormap: str = "turbo"
    tonemap: str = "aces"
    exposure: float = 1.0
    light_yaw: float = 35.0
    light_pitch: float = 40.0
    light_intensity: float = 2.5
    normal_strength: float = 1.0
    uv_scale: float = 1.0
    flat: bool = False  # the textured quad at 1:1 texels instead of the mesh
    background: tuple[float, float, float] = (0.11, 0.12, 0.14)
    sky: tuple[float, float, float] = (0.55, 0.6, 0.7)
    ground: tuple[float, float, float] = (0.18, 0.16, 0.14)
    ibl: bool = True  # image-based lighting from `environment`; off: the sky / ground hemisphere
    environment: str = DEFAULT_ENVIRONMENT  # a bundled name or an .exr/.hdr path (viewer.ibl)
    env_rotation: float = 0.0  # degrees about +y
    env_intensity: float = 1.0
    env_background: bool = False  # the environment behind the object instead of `background`
    env_blur: float = 0.0  # 0 sharp .. 1 the roughest prefiltered level
    light: bool = False  # the directional light, on top of the environment (always on without IBL)

    def light_dir(self) -> np.ndarray:
        yaw, pitch = math.radians(self.light_yaw), math.radians(self.light_pitch)
        return np.array([math.cos(pitch) * math.sin(yaw), math.sin(pitch), math.cos(pitch) * math.cos(yaw)],
                        np.float32)


@dataclass
class _Targets:
    size: tuple[int, int]
    color: list[moderngl.Texture]
    depth: moderngl.Renderbuffer
    fbos: list[moderngl.Framebuffer] = field(default_factory=list)

    def release(self) -> None:
        for obj in (*self.fbos, *self.color, self.depth):
            obj.release()


class Renderer:
    def __init__(self, ctx: moderngl.Context):
        self.ctx = ctx
        self.programs: dict[tuple, moderngl.Program] = {}
        self.composite = compile_program(ctx, vertex="fullscreen.vert", fragment="composite.frag")
        self.fullscreen = ctx.vertex_array(self.composite, [])
        self.depth_only = compile_program(ctx, vertex="pbr.vert", fragment="depth.frag")
        self.queries = {name: ctx.query(time=True) for name in PASSES}
        self.targets: _Targets | None = None
        self.mesh: MeshData | None = None
        self._vbo = self._ibo = None
        self._vaos: dict[int, moderngl.VertexArray] = {}
        self.frame_index = 0
        self.offset_px = 0.0  # shift the picture right by this much (the panel covers the left)
        self.depth_prepass = True  # see scene_pass
        self.accumulations: dict[str, Accumulation] = {}  # per pass
        self.accumulated: dict[str, int] = {}  # frames in the mean each pass showed last (accumulating passes)
        self.environment: EnvironmentMaps | None = None  # the viewer sets it; None: hemisphere lighting
        self.scene_draw = None  # a glTF scene (viewer.scene_draw.SceneDraw): drawn instead of the mesh, not flat
        self.background = compile_program(ctx, vertex="fullscreen.vert", fragment="background.frag",
                                          defines={"FULLSCREEN_Z": 1.0})
        self.background_vao = ctx.vertex_array(self.background, [])

    # ----------------------------------------------------------------------------------------- resources

    def program_for(self, tset: TextureSet, extra: dict[str, object] | None = None) -> moderngl.Program:
        """The PBR program variant for a texture set (neural on-sample sets compile the decoder in); `extra`
        defines on top (MAT_WRITE_SAMPLE: the texels fetched, not shaded)."""
        defines = {**tset.defines, **(extra or {})}
        key = tuple(sorted((k, str(v)) for k, v in defines.items()))
        if key not in self.programs:
            self.programs[key] = compile_program(self.ctx, vertex="pbr.vert", fragment="pbr.frag", defines=defines)
        return self.programs[key]

    def set_mesh(self, mesh: MeshData) -> None:
        for vao in self._vaos.values():
            vao.release()
        self._vaos.clear()
        for buf in (self._vbo, self._ibo):
            if buf is not None:
                buf.release()
        self._vbo = self.ctx.buffer(mesh.interleaved())
        self._ibo = self.ctx.buffer(np.ascontiguousarray(mesh.indices, np.uint32).tobytes())
        self.mesh = mesh
        for acc in self.accumulations.values():
            acc.restart()

    def _vao(self, program: moderngl.Program) -> moderngl.VertexArray:
        key = program.glo
        if key not in self._vaos:
            names = [n for n in VERTEX_ATTRIBUTES if n in program]
            fmt = " ".join(f if n in names else f"{int(f[0]) * 4}x"
                           for f, n in zip(VERTEX_FORMAT.split(), VERTEX_ATTRIBUTES, strict=True))
            self._vaos[key] = self.ctx.vertex_array(program, [(self._vbo, fmt, *names)], self._ibo, 4)
        return self._vaos[key]

    def _ensure_targets(self, size: tuple[int, int]) -> _Targets:
        if self.targets is None or self.targets.size != size:
            if self.targets is not None:
                self.targets.release()
            color = [self.ctx.texture(size, 4) for _ in range(2)]
            for tex in color:
                tex.filter = (moderngl.NEAREST, moderngl.NEAREST)
            depth = self.ctx.depth_renderbuffer(size)
            t = _Targets(size, color, depth)
            t.fbos = [self.ctx.framebuffer([tex], depth) for tex in color]
            self.targets = t
        return self.targets

    def release(self) -> None:
        for obj in (*self.programs.values(), *self._vaos.values(), self.fullscreen, self.composite,
                    self.depth_only, self._vbo, self._ibo, self.background_vao, self.background):
            if obj is not None:
                obj.release()
        if self.targets is not None:
            self.targets.release()
        for acc in self.accumulations.values():
            acc.release()
        self.programs.clear()
        self._vaos.clear()
        self.accumulations.clear()

    # ----------------------------------------------------------------------------------------- rendering

    def render(self, target: moderngl.Framebuffer, size: tuple[int, int], state: ViewState,
               sets: dict[str, TextureSet], camera) -> dict[str, float]:
        """Draw one frame into `target` (viewport `size`); returns GPU milliseconds per pass."""
        w, h = size
        targets = self._ensure_targets((w, h))
        left = min(max(self.offset_px, 0.0), w - 1)  # the split divides what the panel leaves visible
        split_px = int(round(left + state.split * (w - left)))
        timings = {}
        passes = [("A", state.mode_a, None)]
        if state.compare == "split":
            passes = [("A", state.mode_a, (0, 0, split_px, h)), ("B", state.mode_b, (split_px, 0, w - split_px, h))]
        elif state.compare == "difference":
            passes.append(("B", state.mode_b, None))
        shown = list(targets.color)
        self.accumulated = {}
        scene = self.scene_draw if self.mesh is not None and not self.mesh.flat else None
        for i, ((name, mode, scissor), fbo) in enumerate(zip(passes, targets.fbos, strict=False)):
            tset = sets.get(mode)
            with self.queries[name]:
                if scene is not None:  # every primitive with its material's set in `mode`
                    tset = scene.draw(self, fbo, (w, h), scissor, state, mode, camera)
                elif tset is not None and accumulates(mode):
                    shown[i] = self.mean_pass(name, i, scissor, state, tset, camera)
                else:
                    self.scene_pass(fbo, (w, h), scissor, state, tset, camera)
            timings[name] = self.queries[name].elapsed / 1e6
            if tset is not None and tset.feedback is not None:
                tset.feedback.update()  # decode on feedback: the tiles this pass missed, for the next frames
        with self.queries["composite"]:
            target.use()
            target.viewport = (0, 0, w, h)
            self.ctx.disable(moderngl.DEPTH_TEST | moderngl.BLEND | moderngl.CULL_FACE)
            shown[0].use(0)
            shown[1].use(1)
            prog = self.composite
            prog["u_compare"].value = COMPARES.index(state.compare)
            _set(prog, "u_split", float(split_px))
            _set(prog, "u_gain", float(state.gain))
            _set(prog, "u_colormap", COLORMAPS.index(state.colormap))
            self.fullscreen.render(moderngl.TRIANGLES, vertices=3)
        timings["composite"] = self.queries["composite"].elapsed / 1e6
        self.frame_index += 1
        return timings

    def mean_pass(self, name: str, index: int, scissor, state: ViewState, tset: TextureSet,
                  camera) -> moderngl.Texture:
        """Pass `name` (target `index`) in a noisy mode: the mean of its frames since anything they depend on last
        changed; returns the texture shown. Where each pixel shows one surface (no cut-outs, or a channel view),
        the texels picked are averaged and the mean shaded once: trilinear filtering shades the weighted mean of
        its 8 texels, so this converges to the trilinear image itself. A material with cut-outs averages shaded
        frames instead (what its holes show lies behind, which the depth pre-pass this needs would hide)."""
        size, targets = self.targets.size, self.targets
        key = (tset.mode, tset, self.offset_px, self.depth_prepass, snapshot(state, camera))
        if tset.opaque or state.view != "shaded":
            acc = self._accumulation(name, size, -(-tset.neural.channels // 4))  # MAT_TEXTURES
            frames = self.sample_pass(acc, scissor, state, tset, camera, key)
            self.scene_pass(targets.fbos[index], size, scissor, state, tset.as_accumulated(acc.textures), camera)
            shown = targets.color[index]
        else:
            acc = self._accumulation(name, size, 1)
            frames = acc.upcoming(key)
            self.scene_pass(targets.fbos[index], size, scissor, state, tset, camera, frame=frames - 1)
            self.composite["u_compare"].value = COMPARES.index("single")  # a copy of texture unit 0
            shown = acc.add(key, targets.color[index], self.fullscreen)
        self.accumulated[name] = frames
        return shown

    def _accumulation(self, name: str, size: tuple[int, int], count: int) -> Accumulation:
        acc = self.accumulations.get(name)
        if acc is None or (acc.size, acc.count) != (size, count):
            if acc is not None:
                acc.release()
            acc = self.accumulations[name] = Accumulation(self.ctx, size, count)
        return acc

    def sample_pass(self, acc: Accumulation, scissor, state: ViewState, tset: TextureSet, camera, key) -> int:
        """The texels `tset` (stochastic filtering) picks this frame, not shaded, blended into `acc`'s mean of them
        (started again when `key` changed; the frame's picks are the n-th of its sequence). Returns n."""
        frames = acc.begin(key)
        _color_writes(acc.fbo, False)
        acc.fbo.clear(depth=1.0)  # the depth alone: the mean stays
        _color_writes(acc.fbo, True)
        self._draw(acc.fbo, acc.size, scissor, state, tset, camera, self.program_for(tset, {"MAT_WRITE_SAMPLE": 1}),
                   True, frames - 1)  # one surface per pixel: each blends in once
        acc.end()
        return frames

    def scene_pass(self, fbo: moderngl.Framebuffer, size: tuple[int, int], scissor, state: ViewState,
                   tset: TextureSet | None, camera, shaded=None, frame: int | None = None) -> None:
        """The mesh in `tset`'s mode. Opaque materials (and channel views) get a depth pre-pass first, so the
        material shader runs once per visible pixel. `shaded`: a query (context manager) around that draw alone;
        `frame`: the stochastic picks' index (default: the frame count)."""
        fbo.use()
        fbo.viewport = (0, 0, *size)
        fbo.scissor = None
        bg = state.background if tset is not None else tuple(c * 0.5 for c in state.background)
        fbo.clear(*bg, 1.0, depth=1.0)
        if tset is None or self.mesh is None:
            return
        self.ctx.disable(moderngl.BLEND)
        # a cut-out texel (opacity < 0.5, shaded view) must not hide what lies behind it: no pre-pass then
        prepass = self.depth_prepass and (tset.opaque or state.view != "shaded")
        self._draw(fbo, size, scissor, state, tset, camera, self.program_for(tset), prepass,
                   self.frame_index if frame is None else frame, shaded)
        if state.env_background and self._lit(state) and not self.mesh.flat:
            self.background_pass(fbo, size, scissor, state, camera)

    def _lit(self, state: ViewState) -> EnvironmentMaps | None:
        """The environment lighting the picture, if any."""
        return self.environment if state.ibl and state.view == "shaded" else None

    def background_pass(self, fbo: moderngl.Framebuffer, size: tuple[int, int], scissor, state: ViewState,
                        camera) -> None:
        """The environment where the mesh left the far plane: after it, so only uncovered pixels shade."""
        fbo.scissor = scissor
        self.ctx.enable(moderngl.DEPTH_TEST)
        self.ctx.depth_func = "<="
        prog = self.background
        self.environment.bind(prog, state.env_rotation, state.env_intensity)
        _write(prog, "u_inv_view_proj", np.linalg.inv(self._view_proj(size, camera, None)))
        _set(prog, "u_eye", tuple(float(x) for x in camera.eye))
        _set(prog, "u_blur", state.env_blur)
        _set(prog, "u_exposure", state.exposure)
        _set(prog, "u_tonemap", TONEMAPS.index(state.tonemap))
        self.background_vao.render(moderngl.TRIANGLES, vertices=3)
        self.ctx.depth_func = "<"
        self.ctx.disable(moderngl.DEPTH_TEST)
        fbo.scissor = None

    def _view_proj(self, size: tuple[int, int], camera, tset: TextureSet | None) -> np.ndarray:
        aspect = size[0] / max(size[1], 1)
        view = camera.view()
        if self.mesh.flat:
            proj = camera.projection(aspect, size, (tset.width, tset.height))
        else:
            proj = camera.projection(aspect)
        shift = np.eye(4, dtype=np.float32)
        # Centre the picture in what the panel leaves visible: half the panel width, in whole pixels (a half
        # pixel would put the flat view's texel centres on pixel edges: no longer 1:1). Clip-space x += shift
        # * w is a shift in NDC; 2 NDC units are size[0] pixels.
        shift[3, 0] = 2.0 * math.floor(self.offset_px / 2) / max(size[0], 1)
        return view @ proj @ shift  # pyrr matrices are row-vector: v * view * proj

    def _draw(self, fbo: moderngl.Framebuffer, size: tuple[int, int], scissor, state: ViewState, tset: TextureSet,
              camera, prog: moderngl.Program, prepass: bool, frame: int, shaded=None) -> None:
        """The mesh with `prog` into `fbo` (bound), after a depth pre-pass when `prepass`."""
        fbo.scissor = scissor
        self.ctx.enable(moderngl.DEPTH_TEST)
        self.ctx.disable(moderngl.CULL_FACE)
        tset.bind(prog)
        view_proj = self.shading_uniforms(prog, size, state, tset, camera, frame)
        if prepass:
            _write(self.depth_only, "u_view_proj", view_proj)
            _write(self.depth_only, "u_model", np.eye(4, dtype=np.float32))
            _color_writes(fbo, False)
            self._vao(self.depth_only).render(moderngl.TRIANGLES)
            _color_writes(fbo, True)
            fbo.depth_mask = False
            self.ctx.depth_func = "<="
        with shaded if shaded is not None else contextlib.nullcontext():
            self._vao(prog).render(moderngl.TRIANGLES)
        fbo.depth_mask = True
        self.ctx.depth_func = "<"
        fbo.scissor = None
        self.ctx.disable(moderngl.DEPTH_TEST)

    def shading_uniforms(self, prog: moderngl.Program, size: tuple[int, int], state: ViewState, tset: TextureSet,
                         camera, frame: int) -> np.ndarray:
        """Everything but the material's own uniforms (camera, lighting, tone mapping); returns view x projection."""
        view_proj = self._view_proj(size, camera, tset)
        _write(prog, "u_view_proj", view_proj)
        _write(prog, "u_model", np.eye(4, dtype=np.float32))
        _write(prog, "u_normal_matrix", np.eye(3, dtype=np.float32))
        _set(prog, "u_uv_scale", (state.uv_scale, state.uv_scale) if not self.mesh.flat else (1.0, 1.0))
        _set(prog, "u_view", VIEWS.index(state.view))
        _set(prog, "u_eye", tuple(float(x) for x in camera.eye))
        _set(prog, "u_light_dir", tuple(float(x) for x in state.light_dir()))
        env = self._lit(state)
        _set(prog, "u_ibl", int(env is not None))
        if env is not None:
            env.bind(prog, state.env_rotation, state.env_intensity)
        _set(prog, "u_light_color", (state.light_intensity if state.light or env is None else 0.0,) * 3)
        _set(prog, "u_sky", state.sky)
        _set(prog, "u_ground", state.ground)
        _set(prog, "u_exposure", state.exposure)
        _set(prog, "u_tonemap", TONEMAPS.index(state.tonemap))
        _set(prog, "u_normal_strength", state.normal_strength)
        _set(prog, "mat_force_mip", min(state.force_mip, tset.mips - 1))
        _set(prog, "mat_lod_bias", state.lod_bias)
        _set(prog, "mat_frame", frame)
        return view_proj


def _color_writes(fbo: moderngl.Framebuffer, on: bool) -> None:
    """Colour writes on or off for every attachment (glClear honours it too)."""
    masks = tuple((on,) * 4 for _ in fbo.color_attachments)
    fbo.color_mask = masks if len(masks) > 1 else masks[0]


def _set(program: moderngl.Program, name: str, value) -> None:
    if name in program:
        program[name].value = value


def _write(program: moderngl.Program, name: str, data: np.ndarray) -> None:
    if name in program:
        program[name].write(np.ascontiguousarray(data, np.float32).tobytes())
