// feedback_sample.glsl: sampling a neural material decoded on feedback (viewer/feedback.py), for material.glsl.
//
//   void fb_fetch(vec2 uv, float lod, inout vec4 t[MAT_MAX_TEX]);  // channels 4g .. 4g+3 in t[g]
//
// Mips below FB_TAIL are cut into FB_TILE^2 tiles; fb_pages[page] is the cache slot of a tile or -1. Every pixel
// records the tiles of the mips it reads in the fb_needed bit set, read back after the frame. A missing tile is
// replaced by the finest resident coarser mip; mips FB_TAIL and up are always resident in mat_tex (the tail, with
// hardware trilinear filtering). Inside a slot, hardware bilinear filtering (its border holds the neighbours'
// texels); two mips are blended as trilinear filtering does.

#if FB_EARLY
layout(early_fragment_tests) in;  // opaque: the depth pre-pass culls hidden pixels before they record tiles
#endif

layout(binding = FB_CACHE_UNIT) uniform sampler2DArray fb_cache;
layout(std430, binding = FB_PAGES_BINDING) readonly buffer FbPages {
    int fb_pages[];
};
layout(std430, binding = FB_NEEDED_BINDING) buffer FbNeeded {
    uint fb_needed[];
};
uniform int fb_offsets[FB_TAIL + 1];  // first page of each tiled mip
#define FB_MIN_WEIGHT (0.5 / 255.0)

// The page of uv's tile at `mip`, and uv's texel position inside that tile.
int fb_page(vec2 uv, int mip, out vec2 local) {
    ivec2 size = max(ivec2(mat_size) >> mip, ivec2(1));
    vec2 p = fract(uv) * vec2(size);
    ivec2 tile = min(ivec2(p) / FB_TILE, (size - 1) / FB_TILE);
    local = p - vec2(tile * FB_TILE);
    return fb_offsets[mip] + tile.y * ((size.x + FB_TILE - 1) / FB_TILE) + tile.x;
}

void fb_request(int page) {
    uint bit = 1u << uint(page & 31);
    if ((fb_needed[page >> 5] & bit) == 0u) {  // most pixels find their bit set: no atomic
        atomicOr(fb_needed[page >> 5], bit);
    }
}

void fb_add(vec2 uv, int mip, float weight, bool request, inout vec4 t[MAT_MAX_TEX]) {
    for (int m = mip; m < FB_TAIL; ++m) {
        vec2 local;
        int page = fb_page(uv, m, local);
        if (request && m == mip) {
            fb_request(page);
        }
        int slot = fb_pages[page];
        if (slot >= 0) {
            vec2 at = (local + float(FB_BORDER)) / float(FB_TILE + 2 * FB_BORDER);
            for (int g = 0; g < FB_GROUPS; ++g) {
                t[g] += weight * textureLod(fb_cache, vec3(at, float(slot * FB_GROUPS + g)), 0.0);
            }
            return;
        }
    }
    for (int g = 0; g < FB_GROUPS; ++g) {
        t[g] += weight * textureLod(mat_tex[g], uv, 0.0);
    }
}

void fb_fetch(vec2 uv, float lod, inout vec4 t[MAT_MAX_TEX]) {
    if (lod >= float(FB_TAIL)) {
        for (int g = 0; g < FB_GROUPS; ++g) {
            t[g] = textureLod(mat_tex[g], uv, lod - float(FB_TAIL));
        }
        return;
    }
    int lo = int(floor(lod));
    float f = lod - float(lo);
    // A weight under half an 8-bit step changes nothing shown: neither read nor request that mip's tiles (a 1:1
    // view computes a LOD a rounding error above 0, which would request all of mip 1).
    f = f < FB_MIN_WEIGHT ? 0.0 : f > 1.0 - FB_MIN_WEIGHT ? 1.0 : f;
    if (f < 1.0) {
        fb_add(uv, lo, 1.0 - f, true, t);
    }
    if (f > 0.0) {
        fb_add(uv, lo + 1, f, true, t);
    }
}
