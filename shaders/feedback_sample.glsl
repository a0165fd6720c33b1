// feedback_sample.glsl: sampling a neural material decoded on feedback (viewer/feedback.py), for material.glsl.
//
//   void fb_fetch(vec2 uv, float lod, inout vec4 t[MAT_MAX_TEX]);  // channels 4g .. 4g+3 in t[g]
//
// Mips below FB_TAIL are cut into FB_TILE^2 tiles; fb_pages[page] is the cache slot of a tile or -1. A slot holds its
// tile at level 0 and the same region of the next mip at level 1, so one hardware trilinear read filters between
// the two mips. Every pixel records the tile of its finer mip in the fb_needed bit set, read back after the frame.
// A missing tile is replaced by the finest resident coarser mip; mips FB_TAIL and up are always resident in
// mat_tex (the tail, hardware trilinear too).

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

void fb_fetch(vec2 uv, float lod, inout vec4 t[MAT_MAX_TEX]) {
    int lo = int(floor(lod));
    for (int m = lo; m < FB_TAIL; ++m) {
        vec2 local;
        int page = fb_page(uv, m, local);
        if (m == lo) {
            fb_request(page);
        }
        int slot = fb_pages[page];
        if (slot >= 0) {
            vec2 at = (local + float(FB_BORDER)) / float(FB_TILE + 2 * FB_BORDER);
            for (int g = 0; g < FB_GROUPS; ++g) {  // the wanted mip: trilinear; a coarser one: its level 0
                t[g] = textureLod(fb_cache, vec3(at, float(slot * FB_GROUPS + g)), m == lo ? lod - float(lo) : 0.0);
            }
            return;
        }
    }
    for (int g = 0; g < FB_GROUPS; ++g) {
        t[g] = textureLod(mat_tex[g], uv, max(lod - float(FB_TAIL), 0.0));
    }
}
