#version 430
// ibl_brdf.comp: the split sum's environment BRDF, scale and bias to F0 by (n.v, roughness), with the same
// height-correlated Smith-GGX visibility as pbr.frag.
#include "ibl.glsl"
layout(local_size_x = 8, local_size_y = 8) in;
layout(rg16f, binding = 0) writeonly uniform image2D u_out;
const uint SAMPLES = 256u;

float v_smith(float ndv, float ndl, float a) {
    float a2 = a * a;
    float gv = ndl * sqrt(ndv * ndv * (1.0 - a2) + a2);
    float gl = ndv * sqrt(ndl * ndl * (1.0 - a2) + a2);
    return 0.5 / max(gv + gl, 1e-6);
}

void main() {
    ivec2 size = imageSize(u_out), p = ivec2(gl_GlobalInvocationID.xy);
    if (any(greaterThanEqual(p, size))) return;
    vec2 t = (vec2(p) + 0.5) / vec2(size);
    float ndv = t.x, a = max(t.y * t.y, 0.002), a2 = a * a;
    vec3 v = vec3(sqrt(1.0 - ndv * ndv), 0.0, ndv);
    vec2 ab = vec2(0.0);
    for (uint i = 0u; i < SAMPLES; ++i) {
        vec2 xi = vec2(float(i) / float(SAMPLES), float(bitfieldReverse(i)) * 2.3283064365386963e-10);
        float cos_t = sqrt((1.0 - xi.y) / (1.0 + (a2 - 1.0) * xi.y)), sin_t = sqrt(1.0 - cos_t * cos_t);
        float phi = 2.0 * IBL_PI * xi.x;
        vec3 h = vec3(sin_t * cos(phi), sin_t * sin(phi), cos_t);
        vec3 l = reflect(-v, h);
        float ndl = clamp(l.z, 0.0, 1.0), ndh = clamp(h.z, 0.0, 1.0), vdh = clamp(dot(v, h), 0.0, 1.0);
        if (ndl <= 0.0) continue;
        float g_vis = 4.0 * v_smith(ndv, ndl, a) * ndl * vdh / max(ndh, 1e-6);
        float fc = pow(1.0 - vdh, 5.0);
        ab += vec2(1.0 - fc, fc) * g_vis;
    }
    imageStore(u_out, p, vec4(ab / float(SAMPLES), 0.0, 0.0));
}
