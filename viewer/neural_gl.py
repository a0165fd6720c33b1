"""A `.ngtc` file on the GPU: grid textures, weight buffer and the decoder's `#define`s, in one call.

    ngl = upload_ngtc(ctx, "material.ngtc")          # or a CompressedTexture
    prog = compile_program(ctx, vertex=..., fragment=..., defines=ngl.defines)  # includes ngtc_decode.glsl
    ngl.bind(prog)                                   # before rendering with it
    maps = decode_to_textures(ctx, ngl)              # decode-on-load: RGBA8 mip chains, hardware filtering

GPU layout (documented in shaders/ngtc_decode.glsl):
- grids: one RGBA8UI, RGBA16UI or RGBA32UI texture each (codes of the grid's bits packed into each component,
  whichever wastes least), (W_g * T) x H_g with T texels per grid cell, codes in the file's order (channel k at
  bit k * bits);
- grid pyramids (`DecoderShape.grid_pyramid`): levels 1.. of each grid as the mip levels of one RGBA16F
  texture, 4 channels a texel, the half floats `models.grid_pyramid.levels_from_codes` computes for the
  PyTorch decoder too;
- weights: fp16 widened to float32, in `DecoderShape.weight_shapes` order, in a uniform buffer (std140 vec4[]) when
  they fit one, else an SSBO (std430 float[]): a GPU reads uniform-buffer values at the constant offsets of
  the unrolled MLP straight from its constant cache;
- decode-on-load: one RGBA8 texture per group of 4 channels, every mip level written by the decoder at
  that mip (a compute pass with imageStore: moderngl framebuffers cannot attach a mip level).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import moderngl
import numpy as np

from models import grid_pyramid, ngtc_file
from models.ngtc_file import CompressedTexture
from models.spec import (
    ACTIVATIONS,
    MAX_BLOCKS,
    MAX_CHANNELS,
    MAX_GRID_CHANNELS,
    MAX_HIDDEN,
    MAX_PE_LEVELS,
    glsl_defines,
    mip_size,
    quant_step,
)

from .glsl import compile_compute

GRID_DTYPES = {8: "u1", 16: "u2", 32: "u4"}  # bits per component -> moderngl dtype (RGBA8/16/32UI)

DEFAULT_G0_UNIT, DEFAULT_G1_UNIT = 14, 15  # high texture units: the viewer's own maps use the low ones
PYRAMID_UNITS = (9, 10)  # the grids' pyramids (DecoderShape.grid_pyramid); 8 is the feedback cache, 11-13 IBL
DEFAULT_WEIGHTS_BINDING = 6
BAKE_OUT_BINDING = 7
BAKE_GROUP = 8  # local_size of ngtc_bake.comp
SOFTWARE_RENDERERS = ("llvmpipe", "softpipe", "swiftshader", "microsoft basic render")
# llvmpipe (gallivm) counts the loop iterations of a shader invocation, all loops together, and ends every
# loop once 65535 have run: a network needing more decodes to garbage there, silently (measured: hidden 64
# with 13 residual blocks decodes exactly, with 14 it does not).
SOFTWARE_LOOP_LIMIT = 65535


class NgtcGLError(ValueError):
    """A `.ngtc` file the GLSL decoder or this GPU cannot handle; the message names the file."""


@dataclass
class NeuralGL:
    """A compressed texture's GPU resources and the `#define`s a shader needs to decode it."""

    ctx: moderngl.Context
    compressed: CompressedTexture
    name: str
    g0: moderngl.Texture
    g1: moderngl.Texture
    weights: moderngl.Buffer
    defines: dict[str, str]
    units: tuple[int, int] = (DEFAULT_G0_UNIT, DEFAULT_G1_UNIT)
    weights_binding: int = DEFAULT_WEIGHTS_BINDING
    weights_block: str = "ssbo"  # "ubo" or "ssbo": where ngtc_decode.glsl reads the weights
    pyramids: tuple[moderngl.Texture, ...] = ()  # G0's and G1's with grid_pyramid, else none
    _programs: dict = field(default_factory=dict, repr=False)  # compiled bake shaders, by variant

    @property
    def width(self) -> int:
        return self.compressed.width

    @property
    def height(self) -> int:
        return self.compressed.height

    @property
    def mips(self) -> int:
        return self.compressed.mips

    @property
    def channels(self) -> int:
        return self.compressed.out_channels

    @property
    def gpu_bytes(self) -> int:
        """Bytes of GPU memory the decoder reads: both grid textures (and pyramids) and the weight buffer."""
        levels = pyramid_levels(self.compressed) if self.pyramids else ()
        pyramids = sum(texture_bytes(t, n) for t, n in zip(self.pyramids, levels, strict=True))
        return texture_bytes(self.g0) + texture_bytes(self.g1) + pyramids + self.weights.size

    def bind(self, program: moderngl.Program | moderngl.ComputeShader | None = None) -> None:
        """Bind the grids and weights where the decoder expects them (its layout bindings).

        Sampler uniforms are also set on `program` when given, in case a driver ignores the bindings.
        """
        textures = [(self.g0, self.units[0], "ngtc_g0"), (self.g1, self.units[1], "ngtc_g1")]
        if self.pyramids:
            textures += zip(self.pyramids, PYRAMID_UNITS, ("ngtc_g0_pyramid", "ngtc_g1_pyramid"), strict=True)
        for tex, unit, name in textures:
            tex.use(location=unit)
            if program is not None and name in program:
                program[name] = unit
        if self.weights_block == "ubo":
            self.weights.bind_to_uniform_block(self.weights_binding)
        else:
            self.weights.bind_to_storage_buffer(self.weights_binding)

    def release(self) -> None:
        for obj in (self.g0, self.g1, *self.pyramids, self.weights, *self._programs.values()):
            obj.release()
        self._programs.clear()


def texture_bytes(tex: moderngl.Texture, mips: int = 1) -> int:
    """Memory of a 2D texture with `mips` levels (moderngl does not report it)."""
    per_texel = tex.components * int(tex.dtype[1:])
    return sum(math.prod(mip_size(tex.width, tex.height, m)) for m in range(mips)) * per_texel


def decode_loop_iterations(ct: CompressedTexture) -> int:
    """Loop iterations of one texel decode in ngtc_decode.glsl with its loops not unrolled (all loops, the
    outer ones counted too): grid reads, positional encoding and the MLP."""
    s = ct.shape
    hidden, blocks, ins = s.hidden_dim, s.num_residual_blocks, s.in_dim
    grids = 0
    for channels, bits in zip((s.g0_channels, s.g1_channels), s.grid_bits, strict=True):
        codes, texels = grid_format(channels, bits)
        loops = texels * (1 + 4 * codes)
        if s.grid_pyramid:  # read from its codes or, past its cell, from a pyramid level: the longer loop
            loops = max(loops, grid_pyramid.pyramid_texels(channels) * (1 + 4))
        if s.pyramid_prefilter:  # or filtered from its codes: 4 rows of 4 codes a channel
            loops = max(loops, texels * (1 + 4 * codes * (1 + 4)))
        grids += loops
    mlp = hidden * (1 + ins) + blocks * (1 + hidden * (1 + hidden) + hidden) + ct.out_channels * (1 + hidden)
    return grids + s.positional_encoding_levels + mlp


def check_limits(ct: CompressedTexture, name: str, ctx: moderngl.Context | None = None,
                 unroll: bool = True) -> None:
    """Raise NgtcGLError if the shader (or, given ctx, this GPU, with loops unrolled or not) cannot decode
    `ct`."""
    # A file that loaded is within these bounds (models.spec, checked on load); a CompressedTexture made in
    # memory may not be.
    s = ct.shape
    limits = [("channels", ct.out_channels, MAX_CHANNELS), ("g0 channels", s.g0_channels, MAX_GRID_CHANNELS),
              ("g1 channels", s.g1_channels, MAX_GRID_CHANNELS), ("hidden width", s.hidden_dim, MAX_HIDDEN),
              ("residual blocks", s.num_residual_blocks, MAX_BLOCKS),
              ("positional-encoding levels", s.positional_encoding_levels, MAX_PE_LEVELS)]
    for what, value, limit in limits:
        if value > limit:
            raise NgtcGLError(f"{name}: {what} {value} exceeds the GLSL decoder's limit of {limit}")
    if s.activation not in ACTIVATIONS:
        raise NgtcGLError(f"{name}: activation {s.activation!r} is not supported by the GLSL decoder")
    if ctx is None:
        return
    max_size = int(ctx.info["GL_MAX_TEXTURE_SIZE"])
    for g, (grid, bits), levels in zip(("g0", "g1"), ct.coded_grids, pyramid_levels(ct), strict=True):
        sizes = [(grid.shape[1] * grid_format(grid.shape[2], bits)[1], grid.shape[0])]
        if levels:  # the pyramid texture's first level: half the cells, 4 channels a texel
            sizes.append((grid.shape[1] // 2 * grid_pyramid.pyramid_texels(grid.shape[2]), grid.shape[0] // 2))
        for w, h in sizes:
            if max(w, h) > max_size:
                raise NgtcGLError(f"{name}: grid {g} needs a {w}x{h} texture; this GPU allows {max_size}")
    if max(ct.width, ct.height) > max_size:
        raise NgtcGLError(f"{name}: {ct.width}x{ct.height} exceeds this GPU's texture size limit {max_size}")
    iterations = decode_loop_iterations(ct)
    if not unroll and is_software_renderer(ctx) and iterations > SOFTWARE_LOOP_LIMIT:
        raise NgtcGLError(f"{name}: its network runs {iterations} shader loop iterations a texel; this software "
                          f"renderer ({ctx.info.get('GL_RENDERER')}) stops a shader at {SOFTWARE_LOOP_LIMIT}")


def grid_format(grid_channels: int, bits: int) -> tuple[int, int]:
    """(codes per component, texels per cell) for a grid of `bits`-bit codes: least padding, then fewest texels
    (fetches)."""
    def cost(codes: int) -> tuple[int, int]:
        texels = -(-grid_channels // (4 * codes))
        return texels * 4 * codes - grid_channels, texels

    codes = min((n // bits for n in GRID_DTYPES), key=lambda n: (cost(n), -n))
    return codes, cost(codes)[1]


def grid_dtype(grid_channels: int, bits: int) -> str:
    """The moderngl dtype of a grid's texture (`grid_format`)."""
    return GRID_DTYPES[grid_format(grid_channels, bits)[0] * bits]


def pack_grid(codes: np.ndarray, bits: int) -> np.ndarray:
    """(H_g, W_g, C_g) `bits`-bit codes -> (H_g, W_g * T, 4) unsigned texels (see module doc)."""
    h, w, c = codes.shape
    per_comp, t = grid_format(c, bits)
    dtype = np.dtype(f"<{grid_dtype(c, bits)}")
    padded = np.zeros((h, w, t * 4 * per_comp), dtype)
    padded[..., :c] = codes
    shifts = (bits * np.arange(per_comp)).astype(dtype)
    return np.bitwise_or.reduce(padded.reshape(h, w * t, 4, per_comp) << shifts, axis=-1).astype(dtype)


def pyramid_levels(ct: CompressedTexture) -> tuple[int, int]:
    """Pyramid textures' levels for G0 and G1 (models.grid_pyramid.depth: a prefiltered pyramid's level 1 is
    computed from the codes, not stored); none without grid_pyramid."""
    if not ct.shape.grid_pyramid:
        return 0, 0
    return grid_pyramid.depth(*ct.g0.shape[:2]), grid_pyramid.depth(*ct.g1.shape[:2])


def pack_pyramid_level(values: np.ndarray) -> np.ndarray:
    """(H_l, W_l, C) float16 -> (H_l, W_l * ceil(C / 4), 4): 4 channels a texel, zero-padded."""
    h, w, c = values.shape
    padded = np.zeros((h, w, grid_pyramid.pyramid_texels(c) * 4), np.float16)
    padded[..., :c] = values
    return padded.reshape(h, -1, 4)


def upload_pyramid(ctx: moderngl.Context, codes: np.ndarray, prefilter: bool, bits: int) -> moderngl.Texture:
    """A grid's pyramid levels 1.. (2.. prefiltered) as the levels of one RGBA16F texture (a 1x1 placeholder when
    it has none)."""
    levels = [pack_pyramid_level(v) for v in grid_pyramid.levels_from_codes(codes, prefilter, bits)[int(prefilter):]]
    if not levels:
        return ctx.texture((1, 1), 4, dtype="f2")
    tex = ctx.texture((levels[0].shape[1], levels[0].shape[0]), 4, levels[0].tobytes(), dtype="f2")
    tex.build_mipmaps(0, len(levels) - 1)  # allocates the levels (sizes halve exactly); overwritten below
    for k, level in enumerate(levels[1:], start=1):
        tex.write(level.tobytes(), level=k)
    tex.filter = (moderngl.NEAREST_MIPMAP_NEAREST, moderngl.NEAREST)  # read with texelFetch
    return tex


def weight_offsets(ct: CompressedTexture) -> dict[str, int]:
    """Float offset of every weight tensor in the weight buffer (the order of `DecoderShape.weight_shapes`)."""
    offsets, at = {}, 0
    for k, shape in ct.shape.weight_shapes(ct.out_channels).items():
        offsets[k] = at
        at += math.prod(shape)
    offsets["<end>"] = at
    return offsets


def pack_weights(ct: CompressedTexture) -> np.ndarray:
    """All synthesizer weights as one float32 array: fp16 widened exactly, row-major (out, in)."""
    shapes = ct.shape.weight_shapes(ct.out_channels)
    return np.concatenate([ct.weights[k].astype(np.float32).reshape(-1) for k in shapes])


def decode_flops(ct: CompressedTexture) -> int:
    """Arithmetic of one texel decode: 2 x the synthesizer's multiply-adds (grid reads and encoding aside)."""
    return ct.shape.decode_flops(ct.out_channels)


def is_software_renderer(ctx: moderngl.Context) -> bool:
    renderer = str(ctx.info.get("GL_RENDERER", "")).lower()
    return any(name in renderer for name in SOFTWARE_RENDERERS)


def default_weights_block(ctx: moderngl.Context, nbytes: int) -> str:
    """Where the decoder reads its weights unless told: a storage buffer on a GPU (an H200 decoded 2.6x faster from one
    than from a uniform block), a uniform block on a software renderer where they fit (llvmpipe: 2.4x faster);
    docs/benchmarks.md, "On an H200"."""
    if is_software_renderer(ctx) and nbytes <= int(ctx.info["GL_MAX_UNIFORM_BLOCK_SIZE"]):
        return "ubo"
    return "ssbo"


def decoder_defines(ct: CompressedTexture, units: tuple[int, int] = (DEFAULT_G0_UNIT, DEFAULT_G1_UNIT),
                    weights_binding: int = DEFAULT_WEIGHTS_BINDING, unroll: bool = True,
                    weights_block: str = "ssbo") -> dict[str, str]:
    """The `#define`s ngtc_decode.glsl needs, from the file's metadata and models.spec."""
    s, off = ct.shape, weight_offsets(ct)
    g0, g1 = grid_format(s.g0_channels, s.g0_bits), grid_format(s.g1_channels, s.g1_bits)
    hidden, blocks = s.hidden_dim, s.num_residual_blocks
    block_stride = hidden * hidden + hidden  # blocks.i.linear.weight then .bias, block after block
    assert not blocks or off["output.weight"] - off["blocks.0.linear.weight"] == blocks * block_stride
    values = {
        "NGTC_CHANNELS": ct.out_channels,
        "NGTC_G0_CHANNELS": s.g0_channels, "NGTC_G1_CHANNELS": s.g1_channels,
        "NGTC_G0_CODES": g0[0], "NGTC_G0_TEXELS": g0[1], "NGTC_G1_CODES": g1[0], "NGTC_G1_TEXELS": g1[1],
        "NGTC_HIDDEN": hidden, "NGTC_BLOCKS": blocks,
        "NGTC_PE_LEVELS": s.positional_encoding_levels,
        "NGTC_G0_CORNERS": int(s.g0_sampling == "corners"),
        "NGTC_SILU": int(s.activation == "silu"),
        "NGTC_IN_DIM": s.in_dim,
        "NGTC_G0_BITS": s.g0_bits, "NGTC_G1_BITS": s.g1_bits,
        "NGTC_G0_STEP": f"{quant_step(s.g0_bits):.9g}", "NGTC_G1_STEP": f"{quant_step(s.g1_bits):.9g}",
        "NGTC_OFF_INPUT_W": off["input.weight"], "NGTC_OFF_INPUT_B": off["input.bias"],
        "NGTC_OFF_BLOCKS": off["blocks.0.linear.weight"] if blocks else off["output.weight"],
        "NGTC_BLOCK_STRIDE": block_stride,
        "NGTC_OFF_OUTPUT_W": off["output.weight"], "NGTC_OFF_OUTPUT_B": off["output.bias"],
        "NGTC_G0_UNIT": units[0], "NGTC_G1_UNIT": units[1], "NGTC_WEIGHTS_BINDING": weights_binding,
        "NGTC_GRID_PYRAMID": int(s.grid_pyramid),
    }
    if s.grid_pyramid:
        levels = [grid_pyramid.levels(*g.shape[:2], s.pyramid_prefilter) for g in (ct.g0, ct.g1)]  # with level 1
        values.update(NGTC_G0_LOG2_CELL=s.g0_cell.bit_length() - 1, NGTC_G1_LOG2_CELL=s.g1_cell.bit_length() - 1,
                      NGTC_PYRAMID_PREFILTER=int(s.pyramid_prefilter), NGTC_G0_LEVELS=levels[0],
                      NGTC_G1_LEVELS=levels[1],
                      NGTC_G0_PYRAMID_UNIT=PYRAMID_UNITS[0], NGTC_G1_PYRAMID_UNIT=PYRAMID_UNITS[1])
    if not unroll:
        values["NGTC_NO_UNROLL"] = 1
    if weights_block == "ubo":
        values["NGTC_WEIGHTS_UBO"] = 1
        values["NGTC_WEIGHTS_VEC4"] = -(-off["<end>"] // 4)
    return {**{k: str(v) for k, v in values.items()}, **glsl_defines()}


def upload_ngtc(ctx: moderngl.Context, source: CompressedTexture | str | Path,
                units: tuple[int, int] = (DEFAULT_G0_UNIT, DEFAULT_G1_UNIT),
                weights_binding: int = DEFAULT_WEIGHTS_BINDING, unroll: bool | None = None,
                weights_block: str | None = None) -> NeuralGL:
    """Upload a `.ngtc` file (path) or CompressedTexture: grid textures, weight buffer and defines.

    `unroll`: let the compiler unroll the MLP loops; default: yes, except on software renderers.
    `weights_block`: "ubo" or "ssbo"; default: $NGTC_WEIGHTS_BLOCK if set, else `default_weights_block`.
    """
    if isinstance(source, CompressedTexture):
        ct, name = source, source.name
    else:
        ct, name = ngtc_file.load(source), str(source)
    if unroll is None:
        unroll = not is_software_renderer(ctx)
    check_limits(ct, name, ctx, unroll)
    packed = pack_weights(ct)
    packed = np.concatenate([packed, np.zeros(-len(packed) % 4, np.float32)])  # whole vec4s for std140
    if weights_block is None:  # NGTC_WEIGHTS_BLOCK: a benchmark's override (scripts/device/gpu_bench.sh)
        weights_block = os.environ.get("NGTC_WEIGHTS_BLOCK") or default_weights_block(ctx, packed.nbytes)
    if weights_block not in ("ubo", "ssbo"):
        raise ValueError(f"weights_block must be 'ubo' or 'ssbo', not {weights_block!r}")
    grids = []
    for codes, bits in ct.coded_grids:
        texels = pack_grid(codes, bits)
        dtype = grid_dtype(codes.shape[2], bits)
        tex = ctx.texture((texels.shape[1], texels.shape[0]), 4, texels.tobytes(), dtype=dtype)
        tex.filter = (moderngl.NEAREST, moderngl.NEAREST)  # integer textures cannot be filtered
        grids.append(tex)
    pyramids = tuple(upload_pyramid(ctx, codes, ct.shape.pyramid_prefilter, bits)
                     for codes, bits in ct.coded_grids) \
        if ct.shape.grid_pyramid else ()
    weights = ctx.buffer(packed.tobytes())
    defines = decoder_defines(ct, units, weights_binding, unroll, weights_block)
    return NeuralGL(ctx, ct, name, grids[0], grids[1], weights, defines, units, weights_binding, weights_block,
                    pyramids)


# ---------------------------------------------------------------------------------------- decode on load


def _bake_program(ngl: NeuralGL, to_buffer: bool, overrides: dict[str, str] | None) -> moderngl.ComputeShader:
    key = (to_buffer, tuple(sorted((overrides or {}).items())))
    if key not in ngl._programs:
        defines = {**ngl.defines, **(overrides or {})}
        if to_buffer:
            defines.update(NGTC_BAKE_TO_BUFFER=1, NGTC_OUT_BINDING=BAKE_OUT_BINDING)
        ngl._programs[key] = compile_compute(ngl.ctx, "ngtc_bake.comp", defines)
    return ngl._programs[key]


def _run_bake(ngl: NeuralGL, program: moderngl.ComputeShader, mip: int) -> None:
    w, h = mip_size(ngl.width, ngl.height, mip)
    ngl.bind(program)
    program["ngtc_mip_size"] = (w, h)
    program["ngtc_mip"] = float(mip)
    program.run(-(-w // BAKE_GROUP), -(-h // BAKE_GROUP))


def decode_to_textures(ctx: moderngl.Context, ngl: NeuralGL, first_mip: int = 0) -> list[moderngl.Texture]:
    """Decode every mip from `first_mip` on with the GLSL decoder into RGBA8 mip chains (channels 4i .. 4i+3 in
    texture i; level k = mip first_mip + k: the feedback mode's always-resident tail).

    Each level is the decoder's output at that mip, not a downsampled mip 0, exactly like the PyTorch
    decoder's `decode_mip`. Textures repeat and filter trilinearly. Row 0 is v = 0 (numpy order).
    """
    textures = []
    for _ in range(-(-ngl.channels // 4)):
        tex = ctx.texture(mip_size(ngl.width, ngl.height, first_mip), 4, dtype="f1")
        tex.build_mipmaps(0, ngl.mips - 1 - first_mip)  # allocates the levels; the decoder overwrites them all
        tex.filter = (moderngl.LINEAR_MIPMAP_LINEAR, moderngl.LINEAR)
        textures.append(tex)
    program = _bake_program(ngl, to_buffer=False, overrides=None)
    for m in range(first_mip, ngl.mips):
        for i, tex in enumerate(textures):
            tex.bind_to_image(i, read=False, write=True, level=m - first_mip)
        _run_bake(ngl, program, m)
    ctx.memory_barrier()
    return textures


def decode_mip_gl(ngl: NeuralGL, mip: int, overrides: dict[str, str] | None = None) -> np.ndarray:
    """Every texel of `mip` decoded in GLSL, (H_m, W_m, C) float32 (no 8-bit rounding), for tests.

    `overrides` replaces decoder `#define`s (e.g. NGTC_GRID_OFFSET) to check that tests catch a change.
    """
    if not 0 <= mip < ngl.mips:
        raise ValueError(f"mip {mip} out of range 0..{ngl.mips - 1}")
    w, h = mip_size(ngl.width, ngl.height, mip)
    out = ngl.ctx.buffer(reserve=w * h * ngl.channels * 4)
    try:
        out.bind_to_storage_buffer(BAKE_OUT_BINDING)
        _run_bake(ngl, _bake_program(ngl, to_buffer=True, overrides=overrides), mip)
        ngl.ctx.memory_barrier()
        return np.frombuffer(out.read(), np.float32).reshape(h, w, ngl.channels).copy()
    finally:
        out.release()


def read_texture_mip(tex: moderngl.Texture, mip: int) -> np.ndarray:
    """Level `mip` of an RGBA8 texture as float32 (H_m, W_m, 4) in [0, 1]."""
    w, h = mip_size(tex.width, tex.height, mip)
    return np.frombuffer(tex.read(level=mip), np.uint8).reshape(h, w, 4).astype(np.float32) / 255.0


def read_decoded_chain(textures: list[moderngl.Texture], channels: int, mips: int) -> list[np.ndarray]:
    """What `decode_to_textures` wrote, read back: (H_m, W_m, channels) float32 per mip, unorm8 values / 255."""
    return [np.concatenate([read_texture_mip(t, m) for t in textures], -1)[..., :channels] for m in range(mips)]
