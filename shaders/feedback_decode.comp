#version 430
// Decode on feedback: whole cache tiles decoded by the one decoder (viewer/feedback.py, TileCache.update).
// Job j (workgroup z) = (mip, tile x, tile y, slot). Level 0 of a slot: texel p of its (FB_TILE + 2 FB_BORDER)^2
// square is texel (tile * FB_TILE - FB_BORDER + p) of the mip, wrapped (materials tile), so hardware filtering
// inside the slot reads the neighbouring tiles' texels at its edges; level 1 (fb_level 1): the same region of
// the next mip, half the size (FB_BORDER is even: both levels start on a texel of their mip), so that the
// hardware filters trilinearly between the two. Layer slot * FB_GROUPS + g holds channels 4g .. 4g+3, as decode
// on load (ngtc_bake.comp) writes them; a texel is decoded at its centre exactly as there.

layout(local_size_x = 8, local_size_y = 8) in;

#include "ngtc_decode.glsl"

#define FB_GROUPS ((NGTC_CHANNELS + 3) / 4)

uniform ivec2 fb_size;  // mip 0, texels
uniform int fb_level;   // 0: the tile's mip, 1: the next mip

layout(std430, binding = FB_JOBS_BINDING) readonly buffer FbJobs {
    ivec4 fb_jobs[];
};
layout(rgba8, binding = 0) writeonly uniform image2DArray fb_cache;

void main() {
    ivec4 job = fb_jobs[gl_WorkGroupID.z];
    ivec2 p = ivec2(gl_GlobalInvocationID.xy);
    int tile = FB_TILE >> fb_level, border = FB_BORDER >> fb_level;
    if (any(greaterThanEqual(p, ivec2(tile + 2 * border)))) {
        return;
    }
    int mip = job.x + fb_level;
    ivec2 size = max(fb_size >> mip, ivec2(1));
    ivec2 xy = job.yz * tile - border + p;
    xy -= size * ivec2(floor(vec2(xy) / vec2(size)));
    float c[NGTC_CHANNELS];
    ngtc_decode((vec2(xy) + 0.5) / vec2(size), float(mip), c);
    for (int g = 0; g < FB_GROUPS; ++g) {
        vec4 v = vec4(0.0);
        for (int i = 0; i < 4 && 4 * g + i < NGTC_CHANNELS; ++i) {
            v[i] = c[4 * g + i];
        }
        imageStore(fb_cache, ivec3(p, job.w * FB_GROUPS + g), v);
    }
}
