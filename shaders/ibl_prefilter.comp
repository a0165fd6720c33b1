#version 430
// ibl_prefilter.comp: one mip of the specular map, the environment convolved with GGX at u_roughness (n = v = r,
// Karis' split sum), by importance sampling with the source's mips (filtered importance sampling: each sample
// reads the mip whose texel covers its solid angle). Roughness 0 is a plain resample.
#include "ibl.glsl"
layout(local_size_x = 8, local_size_y = 8) in;
layout(rgba16f, binding = 0) writeonly uniform image2D u_out;
uniform sampler2D u_source;
uniform float u_roughness;
uniform int u_samples;

vec2 hammersley(uint i, uint n) {
    return vec2(float(i) / float(n), float(bitfieldReverse(i)) * 2.3283064365386963e-10);
}

void main() {
    ivec2 size = imageSize(u_out), p = ivec2(gl_GlobalInvocationID.xy);
    if (any(greaterThanEqual(p, size))) return;
    vec3 n = env_dir((vec2(p) + 0.5) / vec2(size));
    if (u_roughness <= 0.0) {
        imageStore(u_out, p, vec4(textureLod(u_source, env_uv(n), 0.0).rgb, 1.0));
        return;
    }
    vec3 up = abs(n.y) < 0.999 ? vec3(0.0, 1.0, 0.0) : vec3(1.0, 0.0, 0.0);
    vec3 tx = normalize(cross(up, n)), ty = cross(n, tx);
    float a = u_roughness * u_roughness, a2 = a * a;
    vec2 src = vec2(textureSize(u_source, 0));
    float texel_sa = 4.0 * IBL_PI / (src.x * src.y);
    vec3 sum = vec3(0.0);
    float weight = 0.0;
    for (uint i = 0u; i < uint(u_samples); ++i) {
        vec2 xi = hammersley(i, uint(u_samples));
        float cos_t = sqrt((1.0 - xi.y) / (1.0 + (a2 - 1.0) * xi.y)), sin_t = sqrt(1.0 - cos_t * cos_t);
        float phi = 2.0 * IBL_PI * xi.x;
        vec3 h = tx * (sin_t * cos(phi)) + ty * (sin_t * sin(phi)) + n * cos_t;
        vec3 l = reflect(-n, h);
        float ndl = dot(n, l);
        if (ndl <= 0.0) continue;
        float d = a2 / (IBL_PI * pow(cos_t * cos_t * (a2 - 1.0) + 1.0, 2.0));
        float sample_sa = 1.0 / (float(u_samples) * d * 0.25 + 1e-6);  // pdf = D n.h / (4 v.h) = D / 4 here
        float lod = max(0.5 * log2(sample_sa / texel_sa) + 1.0, 0.0);
        sum += textureLod(u_source, env_uv(l), lod).rgb * ndl;
        weight += ndl;
    }
    imageStore(u_out, p, vec4(sum / max(weight, 1e-6), 1.0));
}
