"""Drawing a glTF scene (`viewer.gltf_scene`): one draw per primitive, each with its material's set in the mode
shown, plus one depth pre-pass draw of every opaque primitive.

The renderer holds the scene's mesh (every primitive, world space, opaque first); a pass is
  1. the pre-pass: the opaque primitives' triangles, depth only, in one draw;
  2. each opaque primitive shaded at the pre-pass depths (depth test <=, no depth writes): once per visible pixel;
  3. each alpha-masked primitive (cut-outs discard, so no pre-pass), depth written;
  4. the environment background, where nothing was drawn;
  5. each blended primitive, back to front (by its centre's distance to the eye), no depth writes.
`draws` counts the draw calls of the last pass: primitives + 1 (the pre-pass). Stochastic filtering shows its
single frames here (the still-frame mean is the sphere's). A material missing in the mode (its `.ngtc` not yet
compressed, its ASTC not yet encoded) is drawn grey.
"""

from __future__ import annotations

import moderngl
import numpy as np

from .gltf_scene import MaterialFacts, Primitive
from .renderer import Renderer, ViewState, _color_writes, _set, _write
from .scene_materials import SceneMaterials

ALPHA_INDEX = {"OPAQUE": 0, "MASK": 1, "BLEND": 2}


class SceneDraw:
    def __init__(self, materials: SceneMaterials):
        self.materials = materials
        self.data = materials.data
        self.draws = 0  # draw calls of the last pass
        self.shaded_programs: set[int] = set()

    def draw(self, renderer: Renderer, fbo: moderngl.Framebuffer, size: tuple[int, int], scissor, state: ViewState,
             mode: str, camera) -> None:
        ctx = renderer.ctx
        fbo.use()
        fbo.viewport = (0, 0, *size)
        fbo.scissor = None
        fbo.clear(*state.background, 1.0, depth=1.0)
        fbo.scissor = scissor
        ctx.enable(moderngl.DEPTH_TEST)
        ctx.disable(moderngl.CULL_FACE | moderngl.BLEND)
        self.draws, self.shaded_programs = 0, set()
        prims = self.data.primitives
        first, count = self.data.opaque_range()
        if count and renderer.depth_prepass:
            view_proj = renderer._view_proj(size, camera, None)
            _write(renderer.depth_only, "u_view_proj", view_proj)
            _write(renderer.depth_only, "u_model", np.eye(4, dtype=np.float32))
            _color_writes(fbo, False)
            self._render(renderer, renderer.depth_only, first, count)
            _color_writes(fbo, True)
            fbo.depth_mask = False
            ctx.depth_func = "<="
        used = []
        for prim in (p for p in prims if p.alpha_mode == "OPAQUE"):
            used.append(self._shade(renderer, prim, size, state, mode, camera))
        fbo.depth_mask = True
        ctx.depth_func = "<"
        for prim in (p for p in prims if p.alpha_mode == "MASK"):
            used.append(self._shade(renderer, prim, size, state, mode, camera))
        if state.env_background and renderer._lit(state):
            renderer.background_pass(fbo, size, scissor, state, camera)
            fbo.scissor = scissor
            ctx.enable(moderngl.DEPTH_TEST)
        blended = [p for p in prims if p.alpha_mode == "BLEND"]
        if blended:
            eye = np.asarray(camera.eye, np.float64)
            blended.sort(key=lambda p: -float(np.linalg.norm(p.center - eye)))  # far to near
            fbo.depth_mask = False
            ctx.enable(moderngl.BLEND)
            ctx.blend_func = moderngl.SRC_ALPHA, moderngl.ONE_MINUS_SRC_ALPHA
            for prim in blended:
                used.append(self._shade(renderer, prim, size, state, mode, camera))
            ctx.disable(moderngl.BLEND)
            fbo.depth_mask = True
        fbo.scissor = None
        ctx.disable(moderngl.DEPTH_TEST)
        for tset in {id(t): t for t in used}.values():
            if tset.feedback is not None:
                tset.feedback.update()  # decode on feedback: each material's missing tiles, for the next frames

    def _shade(self, renderer: Renderer, prim: Primitive, size, state: ViewState, mode: str, camera):
        tset = self.materials.set_for(prim.material, mode)
        facts = self.data.materials[prim.material]
        prog = renderer.program_for(tset, {"SCENE_MATERIAL": 1})
        tset.bind(prog)
        renderer.shading_uniforms(prog, size, state, tset, camera, renderer.frame_index)
        _write(prog, "mat_const", gltf_constants(tset))
        material_uniforms(prog, facts, state)
        self._render(renderer, prog, prim.first, prim.count)
        return tset

    def _render(self, renderer: Renderer, prog: moderngl.Program, first: int, count: int) -> None:
        renderer._vao(prog).render(moderngl.TRIANGLES, vertices=count * 3, first=first * 3)
        self.draws += 1


def material_uniforms(prog: moderngl.Program, facts: MaterialFacts, state: ViewState) -> None:
    _set(prog, "u_base_factor", facts.base_factor)
    _set(prog, "u_mr_factor", (facts.metallic, facts.roughness, facts.occlusion))
    _set(prog, "u_emissive_factor", facts.emissive)
    _set(prog, "u_alpha_mode", ALPHA_INDEX[facts.alpha_mode])
    _set(prog, "u_alpha_cutoff", facts.cutoff)
    _set(prog, "u_normal_strength", state.normal_strength * facts.normal_scale)


def gltf_constants(tset) -> np.ndarray:
    """The set's constants, with glTF's value for maps the material lacks: an absent texture reads 1 (the factor
    alone), except normal (flat) and the maps glTF has not (height, specular: the viewer's defaults)."""
    from .materials_gl import SLOTS

    constants = np.array(tset.constants, np.float32)
    ones = {"basecolor", "roughness", "metallic", "ao", "opacity", "emissive"}
    for i, (name, _) in enumerate(SLOTS):
        if name in ones and name not in tset.maps and int(tset.sources[i][0]) < 0:
            constants[i] = 1.0
    return constants
