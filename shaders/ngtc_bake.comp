#version 430
// Decode-on-load: runs ngtc_decode at the centre of every texel of one mip level (viewer/neural_gl.py).
//   default:              writes RGBA8 mip level images ngtc_out[g] = channels 4g .. 4g+3 (missing ones 0),
//                         one per group of 4 channels (NGTC_OUT_GROUPS), bound to image units 0 ..
//   NGTC_BAKE_TO_BUFFER:  writes float32 channels to an SSBO at binding NGTC_OUT_BINDING, row-major
//                         (H_m, W_m, NGTC_CHANNELS), for parity tests before any 8-bit rounding.
// Row y of a level is v = (y + 0.5) / H_m, as in models/grid_sampler.texel_uv.

layout(local_size_x = 8, local_size_y = 8) in;

#include "ngtc_decode.glsl"

uniform ivec2 ngtc_mip_size;
uniform float ngtc_mip;

#ifdef NGTC_BAKE_TO_BUFFER
layout(std430, binding = NGTC_OUT_BINDING) writeonly buffer NgtcOut {
    float ngtc_out[];
};
#else
#define NGTC_OUT_GROUPS ((NGTC_CHANNELS + 3) / 4)
layout(rgba8, binding = 0) writeonly uniform image2D ngtc_out[NGTC_OUT_GROUPS];
#endif

void main() {
    ivec2 xy = ivec2(gl_GlobalInvocationID.xy);
    if (any(greaterThanEqual(xy, ngtc_mip_size))) {
        return;
    }
    vec2 uv = (vec2(xy) + 0.5) / vec2(ngtc_mip_size);
    float c[NGTC_CHANNELS];
    ngtc_decode(uv, ngtc_mip, c);
#ifdef NGTC_BAKE_TO_BUFFER
    int base = (xy.y * ngtc_mip_size.x + xy.x) * NGTC_CHANNELS;
    for (int i = 0; i < NGTC_CHANNELS; ++i) {
        ngtc_out[base + i] = c[i];
    }
#else
    for (int g = 0; g < NGTC_OUT_GROUPS; ++g) {
        vec4 v = vec4(0.0);
        for (int i = 0; i < 4 && 4 * g + i < NGTC_CHANNELS; ++i) {
            v[i] = c[4 * g + i];
        }
        imageStore(ngtc_out[g], xy, v);
    }
#endif
}
