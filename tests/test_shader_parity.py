"""The GLSL decoder (shaders/ngtc_decode.glsl) against the PyTorch one (models.decoder), texel for texel.

Real material crops are fitted briefly (quality is irrelevant, the decoders must agree), stored, and read
back from the stored bytes; every texel of every mip is decoded by both. Headless: an EGL context with
OpenGL 4.3 (Mesa llvmpipe is enough); skipped with the reason when there is none.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import msgspec
import numpy as np
import pytest
import torch

moderngl = pytest.importorskip("moderngl")

from models import ngtc_file  # noqa: E402
from models.compression_model import CompressionModel  # noqa: E402
from models.decoder import NeuralTexture  # noqa: E402
from models.fit import FitConfig, fit  # noqa: E402
from models.layout import MapInfo  # noqa: E402
from models.material import load_material  # noqa: E402
from models.ngtc_file import CompressedTexture  # noqa: E402
from models.presets import PRESETS, preset  # noqa: E402
from models.spec import MAX_HIDDEN  # noqa: E402
from viewer.glsl import ShaderError, compile_program, preprocess  # noqa: E402
from viewer.neural_gl import (  # noqa: E402
    SOFTWARE_LOOP_LIMIT,
    NgtcGLError,
    check_limits,
    decode_loop_iterations,
    decode_mip_gl,
    decode_to_textures,
    is_software_renderer,
    read_texture_mip,
    upload_ngtc,
)

ROOT = Path(__file__).parents[1]
TOL = 1 / 255  # the brief: one 8-bit step; float32 decoders agree to ~1e-6
# bpp2.4: a 2-channel G0 (one RGBA8UI texel, mostly padding) with pyramids; "coarse" (the former bpp2.4):
# RGBA8UI + RGBA16UI grids; "rgba32" (the former bpp8): RGBA32UI + RGBA16UI; "multi": several RGBA8UI texels per
# cell (20 and 40 channels) on a non-square, non-power-of-two crop; "silu": the SiLU synthesizer on fine cells;
# "pyramid": coarse mips read the grids' prefiltered pyramids (6 channels: a half-filled RGBA32F texel), cut short
# at 96x80 (G0 48x40 halves 3 times, G1 24x20 twice: the deepest mips read the last level); "box": the pyramids of
# the codes (files written before the prefilter), down to 1x1 at 128x128; "bits": 2-bit G0 (12 channels, 4 codes
# a component of one RGBA8UI texel) and 8-bit G1 (6 channels, 2 a component of RGBA16UI) with prefiltered pyramids;
# "bits1": 1-bit G0 (16 channels, 8 a component of RGBA8UI) and 2-bit G1 with the codes' pyramids.
PRESETS = {**PRESETS, "coarse": preset("coarse", 8, 4, 16, 16), "multi": preset("multi", 20, 4, 40, 16),
           "rgba32": preset("rgba32", 28, 4, 16, 8), "silu": preset("silu", 12, 2, 16, 4, activation="silu"),
           "pyramid": preset("pyramid", 6, 2, 8, 4, activation="silu", grid_pyramid=True),
           "box": preset("box", 6, 2, 8, 4, activation="silu", grid_pyramid=True, pyramid_prefilter=False),
           "bits": preset("bits", 12, 2, 6, 4, activation="silu", grid_pyramid=True, g0_bits=2, g1_bits=8),
           "bits1": preset("bits1", 16, 2, 8, 8, grid_pyramid=True, pyramid_prefilter=False, g0_bits=1, g1_bits=2)}
CASES = [("bpp2.4", 128, 128), ("coarse", 128, 128), ("rgba32", 128, 128), ("multi", 96, 80), ("silu", 96, 80),
         ("box", 128, 128), ("pyramid", 96, 80), ("bits", 96, 80), ("bits1", 128, 128), ("bpp12", 96, 80)]

@pytest.fixture(scope="module")
def ctx(egl):  # conftest's egl: skips, saying what is missing, without a headless OpenGL 4.3 context
    context = moderngl.create_standalone_context(backend="egl", require=430)
    yield context
    context.release()


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny batches: one thread is ~100x faster than two fighting over a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@functools.cache
def tiles():
    return load_material(ROOT / "assets/tiles")


@functools.cache
def stored(preset: str, width: int, height: int) -> CompressedTexture:
    """A crop, fitted briefly, stored and read back: both decoders see exactly the file's bytes."""
    material = tiles().crop(0, 0, width, height)
    model = fit(material.mip_chain(), FitConfig(PRESETS[preset], steps=12, seconds=None, batch=1024))
    ct = model.compress(width, height, len(material.mip_chain()), material.layout())
    return ngtc_file.from_bytes(ngtc_file.to_bytes(ct))


@functools.cache
def torch_mips(preset: str, width: int, height: int) -> list[np.ndarray]:
    ct = stored(preset, width, height)
    return [NeuralTexture(ct, "cpu").decode_mip(m) for m in range(ct.mips)]


@pytest.fixture(scope="module", params=CASES, ids=[f"{p}-{w}x{h}" for p, w, h in CASES])
def case(request, ctx):
    ngl = upload_ngtc(ctx, stored(*request.param))
    yield request.param[0], ngl, torch_mips(*request.param)
    ngl.release()


def max_diffs(ngl, torch_mips, **kw) -> list[float]:
    return [float(np.abs(decode_mip_gl(ngl, m, **kw) - ref).max()) for m, ref in enumerate(torch_mips)]


def test_glsl_matches_torch_every_mip(case):
    preset, ngl, torch_mips = case
    diffs = max_diffs(ngl, torch_mips)
    print(f"{preset} {ngl.width}x{ngl.height}: max |GLSL - torch| per mip {[f'{d:.1e}' for d in diffs]}")
    assert len(diffs) == ngl.mips
    assert max(diffs) <= TOL, diffs
    assert max(diffs) < 1e-4, "agreement is expected to float32 rounding, not merely one 8-bit step"


def test_decode_on_load_matches_torch(ctx, case):
    preset, ngl, torch_mips = case
    textures = decode_to_textures(ctx, ngl)
    try:
        assert len(textures) == -(-ngl.channels // 4)
        diffs = []
        for m, ref in enumerate(torch_mips):
            baked = np.concatenate([read_texture_mip(t, m) for t in textures], axis=-1)
            assert not baked[..., ngl.channels:].any(), "padding channels are zero"
            diffs.append(float(np.abs(baked[..., :ngl.channels] - np.round(ref * 255) / 255).max()))
        print(f"{preset} {ngl.width}x{ngl.height}: max |RGBA8 - round(torch)| per mip (in 1/255) "
              f"{[round(d * 255, 3) for d in diffs]}")
        assert max(diffs) <= TOL + 1e-6, diffs  # a value at a rounding boundary may round the other way
    finally:
        for t in textures:
            t.release()


@pytest.mark.parametrize("break_it", ["position rule", "one weight"])
def test_parity_check_catches_a_wrong_decoder(ctx, break_it):
    """The comparison above is not vacuous: a texel-corner position rule, or one changed weight, fails it."""
    ct, ref = stored(*CASES[0]), torch_mips(*CASES[0])[:2]
    if break_it == "position rule":
        ngl, overrides = upload_ngtc(ctx, ct), {"NGTC_GRID_OFFSET": "0.0"}  # pos = uv * size, no -0.5
    else:
        weights = {k: v.copy() for k, v in ct.weights.items()}
        weights["input.weight"][0, 0] += np.float16(2.0)  # a G0 feature's weight into hidden unit 0
        ngl, overrides = upload_ngtc(ctx, dataclasses.replace(ct, weights=weights)), None
    try:
        diffs = max_diffs(ngl, ref, overrides=overrides)
        print(f"{break_it}: max |GLSL - torch| at mips 0, 1: {[round(d, 4) for d in diffs]}")
        assert min(diffs) > 5 * TOL
    finally:
        ngl.release()


def test_parity_check_reads_the_pyramids(ctx):
    """The pyramid cases are not vacuous: a decoder that strides over the grids (no pyramid levels) instead
    matches at mip 0 and fails from mip 1 on, where G0's 2-texel cells read their prefiltered first level."""
    ct, ref = stored("pyramid", 96, 80), torch_mips("pyramid", 96, 80)
    ngl = upload_ngtc(ctx, ct)
    try:  # G0 48 x 40: the prefiltered grid and 3 halvings
        assert len(ngl.pyramids) == 2 and ngl.defines["NGTC_G0_LEVELS"] == "4"
        diffs = max_diffs(ngl, ref[:4], overrides={"NGTC_G0_LEVELS": "0", "NGTC_G1_LEVELS": "0"})
        print(f"pyramid ignored: max |GLSL - torch| at mips 0-3: {[round(d, 4) for d in diffs]}")
        assert diffs[0] < 1e-4 and min(diffs[1:]) > 5 * TOL
        # the codes instead of their prefiltered level at the mip of each grid's cell (G0 mip 1, G1 mip 2)
        diffs = max_diffs(ngl, ref[:4], overrides={"NGTC_PYRAMID_PREFILTER": "0"})
        print(f"prefilter ignored: max |GLSL - torch| at mips 0-3: {[round(d, 4) for d in diffs]}")
        assert max(diffs[0], diffs[3]) < 1e-4 and min(diffs[1:3]) > 3 * TOL
    finally:
        ngl.release()


FRAGMENT_TEST = """#version 430
#include "ngtc_decode.glsl"
uniform vec2 size;
uniform float mip;
out vec4 color;
void main() {
    float c[NGTC_CHANNELS];
    ngtc_decode(gl_FragCoord.xy / size, mip, c);  // gl_FragCoord is the texel centre: uv = (x + 0.5) / w
    color = vec4(c[0], c[1], c[2], c[3]);
}
"""
FULLSCREEN = """#version 430
void main() {  // one triangle covering the viewport
    gl_Position = vec4(vec2(gl_VertexID & 1, gl_VertexID >> 1) * 4.0 - 1.0, 0.0, 1.0);
}
"""


def test_decoder_in_a_fragment_shader(ctx, tmp_path):
    """The per-pixel path (the viewer's on-sample mode): same decoder, in a fragment shader."""
    (tmp_path / "test.frag").write_text(FRAGMENT_TEST)
    (tmp_path / "test.vert").write_text(FULLSCREEN)
    ngl = upload_ngtc(ctx, stored(*CASES[0]))
    prog = compile_program(ctx, vertex="test.vert", fragment="test.frag", defines=ngl.defines, shader_dir=tmp_path)
    mip, ref = 1, torch_mips(*CASES[0])[1]
    target = ctx.texture((ref.shape[1], ref.shape[0]), 4, dtype="f4")
    fbo = ctx.framebuffer([target])
    try:
        fbo.use()
        ngl.bind(prog)
        prog["size"], prog["mip"] = (ref.shape[1], ref.shape[0]), float(mip)
        ctx.vertex_array(prog, []).render(moderngl.TRIANGLES, vertices=3)
        out = np.frombuffer(fbo.read(components=4, dtype="f4"), np.float32).reshape(ref.shape[0], ref.shape[1], 4)
        diff = float(np.abs(out - ref[..., :4]).max())
        print(f"fragment shader, mip {mip}: max |GLSL - torch| {diff:.1e}")
        assert diff < 1e-4
    finally:
        for obj in (fbo, target, prog):
            obj.release()
        ngl.release()


def test_compile_error_shows_numbered_source(ctx):
    ngl = upload_ngtc(ctx, stored(*CASES[0]))
    with pytest.raises(ShaderError) as err:
        decode_mip_gl(ngl, 0, overrides={"NGTC_GRID_OFFSET": "0.5 +"})  # a syntax error inside the decoder
    ngl.release()
    message = str(err.value)
    assert "ngtc_bake.comp" in message and "error" in message.lower()
    # the offending line, numbered in the final source and traced to its file and line
    line = next(row for row in message.splitlines() if row.startswith(">>"))
    assert "ngtc_decode.glsl:" in line and "NGTC_GRID_OFFSET" in line, message


def test_preprocessor_includes_once_and_defines_after_version(tmp_path):
    (tmp_path / "main.comp").write_text('#version 430\n#include "a.glsl"\n#include "a.glsl"\nvoid main() {}\n')
    (tmp_path / "a.glsl").write_text("float a() { return X; }\n")
    src = preprocess("main.comp", {"X": 1.0, "N": 3}, tmp_path)
    assert src.text.splitlines() == ["#version 430", "#define X 1.0", "#define N 3",
                                     "float a() { return X; }", "void main() {}"]
    assert src.origins[3] == ("a.glsl", 1)
    (tmp_path / "a.glsl").write_text('#include "main.comp"\n')  # a cycle: already included, skipped
    assert preprocess("main.comp", shader_dir=tmp_path).text.count("#version") == 1
    (tmp_path / "b.comp").write_text("void main() {}\n")
    with pytest.raises(ShaderError, match="first line must be #version"):
        preprocess("b.comp", shader_dir=tmp_path)
    with pytest.raises(ShaderError, match="cannot read shader"):
        preprocess("missing.comp", shader_dir=tmp_path)


def test_network_over_the_decoders_limits_is_refused(ctx):
    """A network beyond the GLSL decoder's bounds (made in memory: the format refuses to store one) is refused
    by the upload, in one line naming it."""
    ct = random_net(32, 4)
    shape = msgspec.structs.replace(ct.shape, hidden_dim=MAX_HIDDEN + 1)
    big = dataclasses.replace(ct, shape=shape, info=ngtc_file.Info(material="big"))
    with pytest.raises(NgtcGLError, match=f"^big: hidden width {MAX_HIDDEN + 1} exceeds"):
        upload_ngtc(ctx, big)


def test_weights_in_a_storage_buffer_decode_alike(ctx):
    """Weights that fit a uniform block go there by default; the storage-buffer path gives the same texels."""
    ct, ref = stored(*CASES[2]), torch_mips(*CASES[2])
    default = upload_ngtc(ctx, ct)
    assert default.weights_block == "ubo" and default.defines["NGTC_WEIGHTS_UBO"] == "1"
    default.release()
    ngl = upload_ngtc(ctx, ct, weights_block="ssbo")
    try:
        assert "NGTC_WEIGHTS_UBO" not in ngl.defines
        diffs = max_diffs(ngl, ref)
        print(f"weights in an SSBO: max |GLSL - torch| per mip {[f'{d:.1e}' for d in diffs]}")
        assert max(diffs) < 1e-4, diffs
    finally:
        ngl.release()


def random_net(hidden: int, blocks: int) -> CompressedTexture:
    """An untrained 8-channel network of this shape, stored and read back (parity needs no training)."""
    model = CompressionModel(8, preset("net", 16, 4, 16, 16, hidden_dim=hidden, num_residual_blocks=blocks).shape,
                             encoder_channels=None)
    model.init_grids(32, 32)
    layout = [MapInfo("basecolor", 3, "srgb", "b.png", 8, 0), MapInfo("normal", 2, "normal", "n.png", 8, 3),
              MapInfo("roughness", 1, "linear", "r.png", 8, 5), MapInfo("metallic", 1, "linear", "m.png", 8, 6),
              MapInfo("ao", 1, "linear", "a.png", 8, 7)]
    return ngtc_file.from_bytes(ngtc_file.to_bytes(model.compress(32, 32, 6, layout)))


def test_weights_too_big_for_a_uniform_block_use_a_storage_buffer(ctx):
    """Hidden 64 with 4 residual blocks: ~100 KB of float32 weights, over a 64 KB uniform block."""
    ct = random_net(64, 4)
    ngl = upload_ngtc(ctx, ct)
    try:
        assert ngl.weights_block == "ssbo" and ngl.weights.size > int(ctx.info["GL_MAX_UNIFORM_BLOCK_SIZE"])
        ref = NeuralTexture(ct, "cpu").decode_mip(0)
        assert float(np.abs(decode_mip_gl(ngl, 0) - ref).max()) < 1e-4
        with pytest.raises(ValueError, match="weights_block must be"):
            upload_ngtc(ctx, ct, weights_block="texture")
    finally:
        ngl.release()


def test_software_loop_limit(ctx):
    """llvmpipe ends a shader's loops after 65535 iterations in all: hidden 64 with 13 residual blocks stays
    under it and decodes exactly; with 14 it would decode garbage, so the upload is refused, in one line."""
    if not is_software_renderer(ctx):
        pytest.skip("a hardware GPU unrolls the decoder's loops")
    ok, over = random_net(64, 13), random_net(64, 14)
    assert decode_loop_iterations(ok) <= SOFTWARE_LOOP_LIMIT < decode_loop_iterations(over)
    ngl = upload_ngtc(ctx, ok)
    try:
        ref = NeuralTexture(ok, "cpu").decode_mip(0)
        assert float(np.abs(decode_mip_gl(ngl, 0) - ref).max()) < 1e-4
    finally:
        ngl.release()
    with pytest.raises(NgtcGLError, match="65535") as err:
        upload_ngtc(ctx, over)
    assert "\n" not in str(err.value)
    # Unrolled, the loop limit does not apply: the same net passes the checks and uploads with its trip counts
    # left to the compiler (compiling it is not done here: llvmpipe takes minutes) ...
    check_limits(over, "x", ctx, unroll=True)
    unrolled = upload_ngtc(ctx, over, unroll=True)
    try:
        assert "NGTC_NO_UNROLL" not in unrolled.defines
    finally:
        unrolled.release()
    # ... while the limits that unrolling cannot lift still apply (a check_limits that waved unrolled nets
    # through entirely passed the bare call above)
    wide = dataclasses.replace(over, shape=msgspec.structs.replace(over.shape, hidden_dim=2 * MAX_HIDDEN))
    with pytest.raises(NgtcGLError, match=f"hidden width {2 * MAX_HIDDEN} exceeds the GLSL decoder's limit"):
        check_limits(wide, "x", ctx, unroll=True)
    with pytest.raises(NgtcGLError, match="65535"):
        check_limits(over, "x", ctx, unroll=False)


def test_unrolled_decoder_matches_torch(ctx):
    """GPUs get the MLP unrolled (constant weight offsets, per-texel arrays in registers); software renderers
    run it as loops. The unrolled variant decodes the same texels at every mip (~5 s to compile on llvmpipe)."""
    ct, ref = stored(*CASES[0]), torch_mips(*CASES[0])
    ngl = upload_ngtc(ctx, ct, unroll=True)
    try:
        assert "NGTC_NO_UNROLL" not in ngl.defines and ngl.weights_block == "ubo"
        diffs = max_diffs(ngl, ref)
        print(f"unrolled: max |GLSL - torch| per mip {[f'{d:.1e}' for d in diffs]}")
        assert len(diffs) == ngl.mips and max(diffs) < 1e-4, diffs
    finally:
        ngl.release()
