#version 430
// ibl_irradiance.comp: the cosine convolution of the environment, by summing every texel of one of its small
// mips (u_lod) weighted by n.l and its solid angle, normalized so a uniform environment maps to itself.
#include "ibl.glsl"
layout(local_size_x = 8, local_size_y = 8) in;
layout(rgba16f, binding = 0) writeonly uniform image2D u_out;
uniform sampler2D u_source;
uniform int u_lod;

void main() {
    ivec2 size = imageSize(u_out), p = ivec2(gl_GlobalInvocationID.xy);
    if (any(greaterThanEqual(p, size))) return;
    vec3 n = env_dir((vec2(p) + 0.5) / vec2(size));
    ivec2 src = textureSize(u_source, u_lod);
    vec3 sum = vec3(0.0);
    float weight = 0.0;
    for (int y = 0; y < src.y; ++y) {
        float sin_t = sin((float(y) + 0.5) / float(src.y) * IBL_PI);  // solid angle per texel of this row
        for (int x = 0; x < src.x; ++x) {
            vec2 uv = (vec2(x, y) + 0.5) / vec2(src);
            float w = max(dot(n, env_dir(uv)), 0.0) * sin_t;
            sum += texelFetch(u_source, ivec2(x, y), u_lod).rgb * w;
            weight += w;
        }
    }
    // sum over the hemisphere of L cos dw, divided by pi = the sum of cos dw: exitant radiance of albedo 1
    imageStore(u_out, p, vec4(sum / max(weight, 1e-6), 1.0));
}
