// material.glsl: one way to sample a material, whatever holds it (viewer/materials_gl.py, TextureSet).
//
//   float mat_lod(vec2 uv);                       // mip level from derivatives (+ bias, or forced)
//   MatSample mat_fetch(vec2 uv, float lod);      // every texture (or the neural decoder) read once
//   float mat_channel(MatSample s, int slot);     // one logical channel: a texture component or a constant
//
// Textures: up to MAT_MAX_TEX RGBA textures at units 0.. (full mip chains); mat_src[slot] = (texture,
// component), texture -1 = the constant mat_const[slot]. With NGTC_ON_SAMPLE the textures are replaced by
// ngtc_decode (shaders/ngtc_decode.glsl): texture i holds channels 4i .. 4i+3, as in decode-on-load. With
// MAT_ACCUMULATED the textures are screen-sized, one value per pixel: the mean of the texels stochastic
// filtering picked there over still frames (viewer/accumulation.py), read at the pixel, not at uv. With
// MAT_FEEDBACK the neural material decoded on feedback: a tile cache, mat_tex the always-resident last mips
// (shaders/feedback_sample.glsl).

#define MAT_MAX_TEX 8
#define MAT_SLOTS 14
// Slots (same order as viewer/materials_gl.py SLOTS).
#define SLOT_BASE_R 0
#define SLOT_BASE_G 1
#define SLOT_BASE_B 2
#define SLOT_NORMAL_X 3
#define SLOT_NORMAL_Y 4
#define SLOT_ROUGHNESS 5
#define SLOT_METALLIC 6
#define SLOT_AO 7
#define SLOT_HEIGHT 8
#define SLOT_OPACITY 9
#define SLOT_EMISSIVE_R 10
#define SLOT_EMISSIVE_G 11
#define SLOT_EMISSIVE_B 12
#define SLOT_SPECULAR 13

uniform ivec2 mat_src[MAT_SLOTS];
uniform float mat_const[MAT_SLOTS];
uniform vec2 mat_size;          // mip 0 size in texels
uniform int mat_mips;
uniform int mat_force_mip;      // -1: automatic
uniform float mat_lod_bias;
uniform int mat_frame;          // stochastic filtering: the frame's index in its sequence of picks

#ifdef NGTC_ON_SAMPLE
#include "ngtc_decode.glsl"
#define MAT_TEXTURES ((NGTC_CHANNELS + 3) / 4)
#else
layout(binding = 0) uniform sampler2D mat_tex[MAT_MAX_TEX];
uniform int mat_tex_count;
#define MAT_TEXTURES MAT_MAX_TEX
#endif
#ifdef MAT_FEEDBACK
#include "feedback_sample.glsl"
#endif

struct MatSample {
    vec4 t[MAT_TEXTURES];
};

// Like the hardware: log2 of the longer screen-space footprint axis, in texels of mip 0.
float mat_lod(vec2 uv) {
    vec2 dx = dFdx(uv * mat_size);
    vec2 dy = dFdy(uv * mat_size);
    float lod = 0.5 * log2(max(max(dot(dx, dx), dot(dy, dy)), 1e-20));
    if (mat_force_mip >= 0) {
        lod = float(mat_force_mip);
    }
    return clamp(lod + mat_lod_bias, 0.0, float(mat_mips - 1));
}

#ifdef NGTC_ON_SAMPLE
// The network was fitted at texel centres only (its positional encoding is not band-limited in between), so
// on-sample decoding decodes texel centres of a mip and filters them like the hardware would:
//   trilinear:  the 4 bilinear texels of both neighbouring mips (8 decodes per pixel), blended;
//   stochastic: one texel of one mip, picked with probability equal to its trilinear weight (1 decode per
//               pixel; unbiased, noisy: stochastic texture filtering, Pharr et al. 2024).
// The stochastic picks (mip, x, y) of frame n are the n-th point of a 3D Sobol' sequence, shifted per pixel by
// a random XOR: each frame is still uniform noise across pixels, but at one pixel the first 2^k frames put exactly
// one point in each 1/2^k of every axis (and the 2D projections are stratified), so the mean over still frames
// covers the 8 taps in proportion to their weights ~1/N fast, not 1/sqrt(N) as independent noise would.
uint mat_pcg(uint v) {  // a well-mixed hash (PCG, Jarzynski & Olano 2020)
    uint state = v * 747796405u + 2891336453u;
    uint word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
    return (word >> 22u) ^ word;
}

uint mat_sobol(uint index, int dim) {  // dimensions 0..2 of Sobol' (Joe-Kuo direction numbers), 32 bits
    if (dim == 0) {
        return bitfieldReverse(index);  // van der Corput
    }
    uint r = 0u, m = 1u, next = 3u;  // m_k, m_(k+1) of x + 1 (dim 1: m_(k+1) = 2 m_k ^ m_k) or x^2 + x + 1
    for (int k = 1; index != 0u; ++k, index >>= 1) {
        if ((index & 1u) != 0u) {
            r ^= m << (32 - k);
        }
        uint after = dim == 1 ? (next << 1) ^ next : (next << 1) ^ (m << 2) ^ m;
        m = next;
        next = after;
    }
    return r;
}

vec3 mat_picks(ivec2 pixel) {  // three numbers in [0, 1) for this pixel and frame
    uint shift = mat_pcg(uint(pixel.x) ^ mat_pcg(uint(pixel.y)));
    uint n = uint(mat_frame);
    uvec3 u = uvec3(mat_sobol(n, 0) ^ mat_pcg(shift), mat_sobol(n, 1) ^ mat_pcg(shift + 1u),
                    mat_sobol(n, 2) ^ mat_pcg(shift + 2u));
    return vec3(u >> 8u) * (1.0 / 16777216.0);
}

ivec2 mat_mip_size(int mip) {
    return max(ivec2(mat_size) >> mip, ivec2(1));
}

void mat_decode_texel(ivec2 xy, int mip, out float c[NGTC_CHANNELS]) {
    ivec2 size = mat_mip_size(mip);
    xy = xy - size * ivec2(floor(vec2(xy) / vec2(size)));  // wrap: materials tile
    ngtc_decode((vec2(xy) + 0.5) / vec2(size), float(mip), c);
}

void mat_decode_bilinear(vec2 uv, int mip, float weight, inout float acc[NGTC_CHANNELS]) {
    vec2 p = uv * vec2(mat_mip_size(mip)) - 0.5;
    ivec2 p0 = ivec2(floor(p));
    vec2 f = p - floor(p);
    float c[NGTC_CHANNELS];
    for (int k = 0; k < 4; ++k) {
        ivec2 o = ivec2(k & 1, k >> 1);
        float w = weight * (o.x == 1 ? f.x : 1.0 - f.x) * (o.y == 1 ? f.y : 1.0 - f.y);
        if (w > 0.0) {
            mat_decode_texel(p0 + o, mip, c);
            for (int i = 0; i < NGTC_CHANNELS; ++i) {
                acc[i] += w * c[i];
            }
        }
    }
}
#endif

MatSample mat_fetch(vec2 uv, float lod) {
    MatSample s;
#ifdef NGTC_ON_SAMPLE
    int lo = int(floor(lod));
    float f = lod - float(lo);
    int hi = min(lo + 1, mat_mips - 1);
    float c[NGTC_CHANNELS];
#if NGTC_STOCHASTIC
    vec3 u = mat_picks(ivec2(gl_FragCoord.xy));
    int mip = u.x < f ? hi : lo;
    vec2 p = uv * vec2(mat_mip_size(mip)) - 0.5;
    vec2 fp = p - floor(p);
    ivec2 pick = ivec2(u.y < fp.x ? 1 : 0, u.z < fp.y ? 1 : 0);
    mat_decode_texel(ivec2(floor(p)) + pick, mip, c);
#else
    for (int i = 0; i < NGTC_CHANNELS; ++i) {
        c[i] = 0.0;
    }
    mat_decode_bilinear(uv, lo, 1.0 - f, c);
    if (f > 0.0 && hi != lo) {
        mat_decode_bilinear(uv, hi, f, c);
    }
#endif
    for (int i = 0; i < MAT_TEXTURES; ++i) {
        s.t[i] = vec4(0.0);
    }
    for (int i = 0; i < NGTC_CHANNELS; ++i) {
        s.t[i / 4][i % 4] = c[i];
    }
#elif defined(MAT_FEEDBACK)
    for (int i = 0; i < MAT_MAX_TEX; ++i) {
        s.t[i] = vec4(0.0);
    }
    fb_fetch(uv, lod, s.t);
#else
    for (int i = 0; i < MAT_MAX_TEX; ++i) {
#ifdef MAT_ACCUMULATED
        s.t[i] = i < mat_tex_count ? texelFetch(mat_tex[i], ivec2(gl_FragCoord.xy), 0) : vec4(0.0);
#else
        s.t[i] = i < mat_tex_count ? textureLod(mat_tex[i], uv, lod) : vec4(0.0);
#endif
    }
#endif
    return s;
}

float mat_channel(MatSample s, int slot) {
    ivec2 src = mat_src[slot];
    return src.x < 0 ? mat_const[slot] : s.t[src.x][src.y];
}
