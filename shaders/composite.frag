#version 430
// composite.frag: the final image from the renders of mode A and mode B (viewer/renderer.py).
//   u_compare 0: A only; 1: split screen, A left of u_split (pixels), B right, a 1-pixel divider;
//   2: difference |A - B| (largest channel) x u_gain through a color map (0 gray, 1 turbo, 2 heat).

in vec2 v_uv;

layout(binding = 0) uniform sampler2D u_a;
layout(binding = 1) uniform sampler2D u_b;
uniform int u_compare;
uniform float u_split;
uniform float u_gain;
uniform int u_colormap;

out vec4 frag_color;

vec3 turbo(float t) {
    t = clamp(t, 0.0, 1.0);
    const vec4 kr = vec4(0.13572138, 4.61539260, -42.66032258, 132.13108234);
    const vec4 kg = vec4(0.09140261, 2.19418839, 4.84296658, -14.18503333);
    const vec4 kb = vec4(0.10667330, 12.64194608, -60.58204836, 110.36276771);
    const vec2 kr2 = vec2(-152.94239396, 59.28637943);
    const vec2 kg2 = vec2(4.27729857, 2.82956604);
    const vec2 kb2 = vec2(-89.90310912, 27.34824973);
    vec4 v4 = vec4(1.0, t, t * t, t * t * t);
    vec2 v2 = v4.zw * v4.z;
    return vec3(dot(v4, kr) + dot(v2, kr2), dot(v4, kg) + dot(v2, kg2), dot(v4, kb) + dot(v2, kb2));
}

vec3 heat(float t) {
    t = clamp(t, 0.0, 1.0);
    return clamp(vec3(3.0 * t, 3.0 * t - 1.0, 3.0 * t - 2.0), 0.0, 1.0);
}

void main() {
    ivec2 p = ivec2(gl_FragCoord.xy);
    vec4 a = texelFetch(u_a, p, 0);
    if (u_compare == 1) {
        float x = gl_FragCoord.x;
        if (floor(x) == floor(u_split)) {
            frag_color = vec4(1.0, 1.0, 1.0, 1.0);
            return;
        }
        frag_color = x < u_split ? a : texelFetch(u_b, p, 0);
    } else if (u_compare == 2) {
        vec3 d = abs(a.rgb - texelFetch(u_b, p, 0).rgb);
        float t = max(d.r, max(d.g, d.b)) * u_gain;
        frag_color = vec4(u_colormap == 0 ? vec3(clamp(t, 0.0, 1.0)) : u_colormap == 1 ? turbo(t) : heat(t), 1.0);
    } else {
        frag_color = a;
    }
}
