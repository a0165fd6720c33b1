// ngtc_decode.glsl: THE GLSL decoder of .ngtc neural textures. Include it with an include line (resolved
// by viewer/glsl.py); never copy it. It reimplements models/grid_sampler.py (GridSampler) and
// models/texture_synthesizer.py (TextureSynthesizer) step for step; tests/test_shader_parity.py checks
// every texel of every mip against models.decoder.NeuralTexture.
//
//   void ngtc_decode(vec2 uv, float mip, out float channels[NGTC_CHANNELS]);
//
// channels: every channel of the texel at texture coordinate uv (wraps: materials tile) and mip level
// `mip` (a plain MLP input, like in PyTorch), in the material's channel order, clamped to [0, 1].
//
// Needs GLSL 4.30 (SSBO, explicit bindings). All shape constants are #defines generated from the file's
// metadata by viewer/neural_gl.py (NeuralGL.defines), quantization constants from models.spec:
//   NGTC_CHANNELS, NGTC_G0_CHANNELS, NGTC_G1_CHANNELS, NGTC_G0_TEXELS, NGTC_G1_TEXELS, NGTC_G0_CODES,
//   NGTC_G1_CODES, NGTC_G0_BITS, NGTC_G1_BITS, NGTC_G0_STEP, NGTC_G1_STEP, NGTC_SILU, NGTC_HIDDEN, NGTC_BLOCKS,
//   NGTC_PE_LEVELS, NGTC_IN_DIM, NGTC_QUANT_MIN, NGTC_OFF_INPUT_W, NGTC_OFF_INPUT_B, NGTC_OFF_BLOCKS,
//   NGTC_BLOCK_STRIDE, NGTC_OFF_OUTPUT_W, NGTC_OFF_OUTPUT_B, NGTC_G0_UNIT, NGTC_G1_UNIT,
//   NGTC_WEIGHTS_BINDING; optional: NGTC_WEIGHTS_UBO with NGTC_WEIGHTS_VEC4, NGTC_NO_UNROLL, NGTC_GRID_OFFSET
//   (all below).
//   NGTC_GRID_PYRAMID with NGTC_G0_LOG2_CELL, NGTC_G1_LOG2_CELL, NGTC_G0_LEVELS, NGTC_G1_LEVELS,
//   NGTC_PYRAMID_PREFILTER, NGTC_G0_PYRAMID_UNIT, NGTC_G1_PYRAMID_UNIT (below).
// Declares: samplers ngtc_g0/ngtc_g1 (and ngtc_g0_pyramid/ngtc_g1_pyramid), the NgtcWeights block, and with
// NGTC_NO_UNROLL uniform ngtc_no_unroll.
//
// GPU data (uploaded by viewer/neural_gl.py):
//   ngtc_g0, ngtc_g1: 4-component unsigned integer textures of B = NGTC_Gi_BITS-bit grid codes, N =
//     NGTC_Gi_CODES codes per component (RGBA8UI, RGBA16UI or RGBA32UI: 8 / B, 16 / B or 32 / B; the one that
//     wastes least), T = NGTC_Gi_TEXELS texels per grid cell side by side: cell (x, y) is texels x*T ..
//     x*T+T-1 of row y. Channel k is in texel k / (4N), component (k % 4N) / N, bits B * (k % N) and up (the
//     file's order: channel k at bit k * B of the cell's bytes, read as a little-endian integer). Unused codes
//     are 0. Feature value = code * NGTC_Gi_STEP + NGTC_QUANT_MIN.
//   ngtc_g0_pyramid, ngtc_g1_pyramid (NGTC_GRID_PYRAMID 1): levels 1 .. NGTC_Gi_LEVELS of each grid's box-filtered
//     pyramid (models/grid_pyramid.py) as texture levels 0 .. NGTC_Gi_LEVELS - 1 of an RGBA16F texture, the
//     half floats models.grid_pyramid.levels_from_codes computes; ceil(channels / 4) texels per cell side by side,
//     channel k in texel k / 4, component k % 4. Mip m reads level 0 (the grid of codes) below log2(cell), else
//     level min(floor(m) - log2(cell) + NGTC_PYRAMID_PREFILTER, levels). With the prefilter, level 1 is the
//     grid's codes filtered by [1, 6, 1] / 8, computed from the codes where it is read (stored, it would be a
//     float copy of the grid), and the texture holds levels 2 .. NGTC_Gi_LEVELS.
//   NgtcWeights: the fp16 weights widened to float32, row-major (out, in) matrices: input.weight,
//     input.bias, then per block i: blocks.i.linear.weight, .bias, then output.weight, .bias. With
//     NGTC_WEIGHTS_UBO a uniform block of NGTC_WEIGHTS_VEC4 vec4s (std140: 4 floats a vec4; at the unrolled
//     loops' constant offsets a GPU reads them from its constant cache), else a std430 float[] SSBO.

// Test hook: the grid position rule is pos = uv * grid_size - NGTC_GRID_OFFSET (texel centres, as in
// grid_sampler.py). The parity test overrides it to prove a wrong rule is caught.
#ifndef NGTC_GRID_OFFSET
#define NGTC_GRID_OFFSET 0.5
#endif

#ifndef NGTC_GRID_PYRAMID
#define NGTC_GRID_PYRAMID 0
#endif
#ifndef NGTC_PYRAMID_PREFILTER
#define NGTC_PYRAMID_PREFILTER 0
#endif

// NGTC_NO_UNROLL (set by viewer/neural_gl.py on software renderers): loop trip counts come from a uniform
// that is always 0, so the compiler cannot unroll the MLP (llvmpipe takes ~20 s to compile it unrolled).
// GPUs keep the constant bounds: unrolled loops keep the per-texel arrays in registers.
#ifdef NGTC_NO_UNROLL
uniform int ngtc_no_unroll;
#define NGTC_N(n) ((n) + ngtc_no_unroll)
#else
#define NGTC_N(n) (n)
#endif

// NGTC_G0_CORNERS 1: G0 is read as its four cells' features times their bilinear weights, side by side
// (grid_sampler.corners); 0: bilinear like G1.
#define NGTC_G0_FEATURES (NGTC_G0_CHANNELS * (NGTC_G0_CORNERS != 0 ? 4 : 1))
#define NGTC_FEATURES (NGTC_G0_FEATURES + NGTC_G1_CHANNELS)
#define NGTC_TWO_PI 6.28318530717958647692

layout(binding = NGTC_G0_UNIT) uniform usampler2D ngtc_g0;
layout(binding = NGTC_G1_UNIT) uniform usampler2D ngtc_g1;
#if NGTC_GRID_PYRAMID
layout(binding = NGTC_G0_PYRAMID_UNIT) uniform sampler2D ngtc_g0_pyramid;
layout(binding = NGTC_G1_PYRAMID_UNIT) uniform sampler2D ngtc_g1_pyramid;
#endif
#ifdef NGTC_WEIGHTS_UBO
layout(std140, binding = NGTC_WEIGHTS_BINDING) uniform NgtcWeights {
    vec4 ngtc_weights4[NGTC_WEIGHTS_VEC4];
};
#define NGTC_W(i) ngtc_weights4[(i) >> 2][(i) & 3]
#else
layout(std430, binding = NGTC_WEIGHTS_BINDING) readonly buffer NgtcWeights {
    float ngtc_weights[];
};
#define NGTC_W(i) ngtc_weights[i]
#endif

// Integer modulo that wraps negatives too (GLSL's % is undefined for them): torch's `x % w`.
ivec2 ngtc_wrap(ivec2 i, ivec2 n) {
    return i - n * ivec2(floor(vec2(i) / vec2(n)));
}

// Code `index` of a component holding `bits`-bit codes, as its feature value.
float ngtc_dequant(uint word, uint index, int bits, float step) {
    uint code = (word >> (uint(bits) * index)) & ((1u << uint(bits)) - 1u);
    return float(code) * step + NGTC_QUANT_MIN;
}

// The four cells around uv on a grid of `cells` cells (wrap addressing), and their bilinear weights.
void ngtc_taps(vec2 uv, ivec2 cells, out ivec2 i0, out ivec2 i1, out vec2 f) {
    vec2 pos = uv * vec2(cells) - NGTC_GRID_OFFSET;
    vec2 p0 = floor(pos);
    f = pos - p0;
    i0 = ngtc_wrap(ivec2(p0), cells);
    i1 = ngtc_wrap(ivec2(p0) + 1, cells);
}

// One channel's four cell values into x: side by side times their weights (corners), or lerped (bilinear).
void ngtc_put(bool corners, int channels, int base, int ch, vec2 f, float v00, float v10, float v01, float v11,
              inout float x[NGTC_IN_DIM]) {
    if (corners) {
        vec2 g = 1.0 - f;  // corner weights, as in torch
        x[base + ch] = v00 * (g.x * g.y);
        x[base + channels + ch] = v10 * (f.x * g.y);
        x[base + 2 * channels + ch] = v01 * (g.x * f.y);
        x[base + 3 * channels + ch] = v11 * (f.x * f.y);
    } else {  // same expression order as torch: lerp along x on both rows, then along y
        float top = v00 * (1.0 - f.x) + v10 * f.x;
        float bottom = v01 * (1.0 - f.x) + v11 * f.x;
        x[base + ch] = top * (1.0 - f.y) + bottom * f.y;
    }
}

// grid_sampler.bilinear (or .corners) with wrap addressing, for `channels` channels written to x[base ..].
void ngtc_read_grid(usampler2D grid, int channels, int texels, int codes, int bits, float step, bool corners,
                    int base, vec2 uv, inout float x[NGTC_IN_DIM]) {
    ivec2 i0, i1;
    vec2 f;
    ngtc_taps(uv, textureSize(grid, 0) / ivec2(texels, 1), i0, i1, f);
    for (int t = 0; t < texels; ++t) {
        uvec4 c00 = texelFetch(grid, ivec2(i0.x * texels + t, i0.y), 0);
        uvec4 c10 = texelFetch(grid, ivec2(i1.x * texels + t, i0.y), 0);
        uvec4 c01 = texelFetch(grid, ivec2(i0.x * texels + t, i1.y), 0);
        uvec4 c11 = texelFetch(grid, ivec2(i1.x * texels + t, i1.y), 0);
        for (int k = 0; k < 4 * codes && t * 4 * codes + k < channels; ++k) {
            int comp = k / codes;
            uint index = uint(k % codes);
            ngtc_put(corners, channels, base, t * 4 * codes + k, f, ngtc_dequant(c00[comp], index, bits, step),
                     ngtc_dequant(c10[comp], index, bits, step), ngtc_dequant(c01[comp], index, bits, step),
                     ngtc_dequant(c11[comp], index, bits, step), x);
        }
    }
}

#if NGTC_GRID_PYRAMID
// The same read on the prefiltered grid (level 1 with NGTC_PYRAMID_PREFILTER): each tap's value is its cell's
// codes filtered by [1, 6, 1] / 8 along rows and columns (models.grid_pyramid.prefiltered), from the 4 x 4
// cells around the taps (wrap addressing), filtered along rows first.
float ngtc_code(usampler2D grid, ivec2 cell, ivec2 cells, int texels, int t, int comp, uint index, int bits,
                float step) {
    ivec2 i = ngtc_wrap(cell, cells);
    return ngtc_dequant(texelFetch(grid, ivec2(i.x * texels + t, i.y), 0)[comp], index, bits, step);
}

void ngtc_read_prefiltered(usampler2D grid, int channels, int texels, int codes, int bits, float step,
                           bool corners, int base, vec2 uv, inout float x[NGTC_IN_DIM]) {
    ivec2 cells = textureSize(grid, 0) / ivec2(texels, 1);
    ivec2 i0, i1;
    vec2 f;
    ngtc_taps(uv, cells, i0, i1, f);
    for (int t = 0; t < texels; ++t) {
        for (int k = 0; k < 4 * codes && t * 4 * codes + k < channels; ++k) {
            int comp = k / codes;
            uint index = uint(k % codes);
            float v00 = 0.0, v10 = 0.0, v01 = 0.0, v11 = 0.0;
            for (int r = 0; r < 4; ++r) {  // rows i0.y - 1 .. i0.y + 2
                ivec2 c = ivec2(i0.x, i0.y + r - 1);
                float a0 = ngtc_code(grid, c + ivec2(-1, 0), cells, texels, t, comp, index, bits, step);
                float a1 = ngtc_code(grid, c, cells, texels, t, comp, index, bits, step);
                float a2 = ngtc_code(grid, c + ivec2(1, 0), cells, texels, t, comp, index, bits, step);
                float a3 = ngtc_code(grid, c + ivec2(2, 0), cells, texels, t, comp, index, bits, step);
                float h0 = (a0 + a1 * 6.0 + a2) * 0.125;  // the row filtered at column i0.x, then i1.x
                float h1 = (a1 + a2 * 6.0 + a3) * 0.125;
                float w0 = r == 1 ? 0.75 : (r == 3 ? 0.0 : 0.125);  // row r's weight for the taps in row i0.y
                float w1 = r == 2 ? 0.75 : (r == 0 ? 0.0 : 0.125);  // and in row i1.y
                v00 += h0 * w0;
                v10 += h1 * w0;
                v01 += h0 * w1;
                v11 += h1 * w1;
            }
            ngtc_put(corners, channels, base, t * 4 * codes + k, f, v00, v10, v01, v11, x);
        }
    }
}

// The read on texture level `tex_level` of a grid's pyramid texture, when mip is past its cell.
void ngtc_read_pyramid(sampler2D pyramid, int tex_level, int channels, bool corners, int base, vec2 uv,
                       inout float x[NGTC_IN_DIM]) {
    int texels = (channels + 3) / 4;
    ivec2 i0, i1;
    vec2 f;
    ngtc_taps(uv, textureSize(pyramid, tex_level) / ivec2(texels, 1), i0, i1, f);
    for (int t = 0; t < texels; ++t) {
        vec4 c00 = texelFetch(pyramid, ivec2(i0.x * texels + t, i0.y), tex_level);
        vec4 c10 = texelFetch(pyramid, ivec2(i1.x * texels + t, i0.y), tex_level);
        vec4 c01 = texelFetch(pyramid, ivec2(i0.x * texels + t, i1.y), tex_level);
        vec4 c11 = texelFetch(pyramid, ivec2(i1.x * texels + t, i1.y), tex_level);
        for (int k = 0; k < 4 && 4 * t + k < channels; ++k) {
            ngtc_put(corners, channels, base, 4 * t + k, f, c00[k], c10[k], c01[k], c11[k], x);
        }
    }
}

int ngtc_level(float mip, int log2_cell, int levels) {  // models.grid_pyramid.level
    int past = int(floor(mip)) - log2_cell;
    return past < 0 ? 0 : min(past + NGTC_PYRAMID_PREFILTER, levels);
}
#endif

// PositionalEncoding: [sin u, cos u, sin v, cos v], each NGTC_PE_LEVELS wide; the phase is reduced with
// x - trunc(x) (torch.frac) before scaling by 2 pi, so float32 stays exact at high octaves.
void ngtc_encode(vec2 uv, inout float x[NGTC_IN_DIM]) {
    for (int i = 0; i < NGTC_PE_LEVELS; ++i) {
        vec2 p = uv * float(1 << i);
        vec2 phase = (p - trunc(p)) * NGTC_TWO_PI;
        x[NGTC_FEATURES + i] = sin(phase.x);
        x[NGTC_FEATURES + NGTC_PE_LEVELS + i] = cos(phase.x);
        x[NGTC_FEATURES + 2 * NGTC_PE_LEVELS + i] = sin(phase.y);
        x[NGTC_FEATURES + 3 * NGTC_PE_LEVELS + i] = cos(phase.y);
    }
}

float ngtc_act(float a) {  // the synthesizer's activation: torch.relu, or nn.functional.silu (a * sigmoid(a))
#if NGTC_SILU
    return a / (1.0 + exp(-a));
#else
    return max(a, 0.0);
#endif
}

void ngtc_decode(vec2 uv, float mip, out float channels[NGTC_CHANNELS]) {
    float x[NGTC_IN_DIM];
#if NGTC_GRID_PYRAMID
    // texture level of a pyramid level: level 1 of a prefiltered one is computed from the codes, not stored
    int l0 = ngtc_level(mip, NGTC_G0_LOG2_CELL, NGTC_G0_LEVELS) - NGTC_PYRAMID_PREFILTER;
    int l1 = ngtc_level(mip, NGTC_G1_LOG2_CELL, NGTC_G1_LEVELS) - NGTC_PYRAMID_PREFILTER;
    if (l0 > 0) {
        ngtc_read_pyramid(ngtc_g0_pyramid, l0 - 1, NGTC_G0_CHANNELS, NGTC_G0_CORNERS != 0, 0, uv, x);
    } else if (l0 == 0 && NGTC_PYRAMID_PREFILTER != 0) {
        ngtc_read_prefiltered(ngtc_g0, NGTC_G0_CHANNELS, NGTC_G0_TEXELS, NGTC_G0_CODES, NGTC_G0_BITS, NGTC_G0_STEP,
                              NGTC_G0_CORNERS != 0, 0, uv, x);
    } else
#endif
    ngtc_read_grid(ngtc_g0, NGTC_G0_CHANNELS, NGTC_G0_TEXELS, NGTC_G0_CODES, NGTC_G0_BITS, NGTC_G0_STEP,
                   NGTC_G0_CORNERS != 0, 0, uv, x);
#if NGTC_GRID_PYRAMID
    if (l1 > 0) {
        ngtc_read_pyramid(ngtc_g1_pyramid, l1 - 1, NGTC_G1_CHANNELS, false, NGTC_G0_FEATURES, uv, x);
    } else if (l1 == 0 && NGTC_PYRAMID_PREFILTER != 0) {
        ngtc_read_prefiltered(ngtc_g1, NGTC_G1_CHANNELS, NGTC_G1_TEXELS, NGTC_G1_CODES, NGTC_G1_BITS, NGTC_G1_STEP,
                              false, NGTC_G0_FEATURES, uv, x);
    } else
#endif
    ngtc_read_grid(ngtc_g1, NGTC_G1_CHANNELS, NGTC_G1_TEXELS, NGTC_G1_CODES, NGTC_G1_BITS, NGTC_G1_STEP, false,
                   NGTC_G0_FEATURES, uv, x);
    ngtc_encode(uv, x);
    x[NGTC_IN_DIM - 1] = mip;

    float h[NGTC_HIDDEN];
    for (int j = 0; j < NGTC_N(NGTC_HIDDEN); ++j) {
        float acc = 0.0;
        for (int k = 0; k < NGTC_N(NGTC_IN_DIM); ++k) {
            acc += NGTC_W(NGTC_OFF_INPUT_W + j * NGTC_IN_DIM + k) * x[k];
        }
        h[j] = ngtc_act(acc + NGTC_W(NGTC_OFF_INPUT_B + j));
    }
    for (int b = 0; b < NGTC_N(NGTC_BLOCKS); ++b) {  // ResidualBlock: h + act(W h + b)
        int w = NGTC_OFF_BLOCKS + b * NGTC_BLOCK_STRIDE;
        float r[NGTC_HIDDEN];
        for (int j = 0; j < NGTC_N(NGTC_HIDDEN); ++j) {
            float acc = 0.0;
            for (int k = 0; k < NGTC_N(NGTC_HIDDEN); ++k) {
                acc += NGTC_W(w + j * NGTC_HIDDEN + k) * h[k];
            }
            r[j] = ngtc_act(acc + NGTC_W(w + NGTC_HIDDEN * NGTC_HIDDEN + j));
        }
        for (int j = 0; j < NGTC_N(NGTC_HIDDEN); ++j) {
            h[j] += r[j];
        }
    }
    for (int c = 0; c < NGTC_N(NGTC_CHANNELS); ++c) {
        float acc = 0.0;
        for (int k = 0; k < NGTC_N(NGTC_HIDDEN); ++k) {
            acc += NGTC_W(NGTC_OFF_OUTPUT_W + c * NGTC_HIDDEN + k) * h[k];
        }
        channels[c] = clamp(acc + NGTC_W(NGTC_OFF_OUTPUT_B + c), 0.0, 1.0);  // NeuralTexture clamps
    }
}
