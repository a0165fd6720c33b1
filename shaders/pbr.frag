#version 430
// pbr.frag: metallic-roughness PBR of one material texture set (material.glsl), or one of its maps.
//
// Shaded: GGX distribution, height-correlated Smith visibility, Schlick Fresnel; base color sRGB -> linear;
// tangent-space normal map (OpenGL convention, Z reconstructed); roughness, metallic, AO, specular level,
// emissive, opacity as a 0.5 alpha cutoff. One directional light (optional: u_light_color 0) plus image-based
// lighting (ibl.glsl: prefiltered GGX specular, split sum, irradiance), or the old hemisphere ambient (sky /
// ground, diffuse and a roughness-dependent specular part with an analytic environment BRDF). Exposure,
// ACES (Narkowicz fit) or Reinhard tone mapping, sRGB output.
// Channel views show the stored values as they are (basecolor sRGB-encoded, normal as RGB).

#include "material.glsl"
#define IBL_LOOKUPS 1
#include "ibl.glsl"

in vec3 v_world;
in vec3 v_normal;
in vec4 v_tangent;
in vec2 v_uv;

uniform int u_view;            // 0 shaded, 1 basecolor, 2 normal, 3 roughness, 4 metallic, 5 ao, 6 height,
                               // 7 opacity, 8 emissive, 9 specular, 10 mip level
uniform vec3 u_eye;
uniform vec3 u_light_dir;      // towards the light
uniform vec3 u_light_color;    // radiance scale
uniform vec3 u_sky;
uniform vec3 u_ground;
uniform float u_exposure;
uniform int u_tonemap;         // 0 ACES, 1 Reinhard, 2 none
uniform float u_normal_strength;
uniform int u_ibl;              // 1: the environment (ibl.glsl) instead of the hemisphere
#ifdef SCENE_MATERIAL
// A glTF scene's material (viewer/scene_draw.py): its factors multiply the maps; alpha 0 opaque, 1 mask, 2 blend.
uniform vec4 u_base_factor;     // linear RGBA
uniform vec3 u_mr_factor;       // metallic, roughness, occlusion strength
uniform vec3 u_emissive_factor;
uniform int u_alpha_mode;
uniform float u_alpha_cutoff;
#endif

#include "tonemap.glsl"

#ifdef MAT_WRITE_SAMPLE
// The texels fetched, not shaded: stochastic filtering's picks, averaged over still frames before shading
// (viewer/accumulation.py), so that the mean converges to the trilinear texels' shading.
layout(location = 0) out vec4 mat_out[MAT_TEXTURES];
vec4 frag_color;
#else
out vec4 frag_color;
#endif

const float PI = 3.14159265358979;

vec3 srgb_to_linear(vec3 c) {
    return mix(c / 12.92, pow((c + 0.055) / 1.055, vec3(2.4)), step(0.04045, c));
}

vec3 turbo(float t) {  // polynomial fit of Google's Turbo colormap
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

float d_ggx(float ndh, float a) {
    float a2 = a * a;
    float d = ndh * ndh * (a2 - 1.0) + 1.0;
    return a2 / (PI * d * d);
}

float v_smith(float ndv, float ndl, float a) {  // height-correlated Smith-GGX visibility G / (4 n.l n.v)
    float a2 = a * a;
    float gv = ndl * sqrt(ndv * ndv * (1.0 - a2) + a2);
    float gl = ndv * sqrt(ndl * ndl * (1.0 - a2) + a2);
    return 0.5 / max(gv + gl, 1e-6);
}

vec3 f_schlick(vec3 f0, float vdh) {
    return f0 + (1.0 - f0) * pow(1.0 - vdh, 5.0);
}

vec2 env_brdf(float ndv, float roughness) {  // Karis' analytic fit of the split-sum BRDF
    const vec4 c0 = vec4(-1.0, -0.0275, -0.572, 0.022);
    const vec4 c1 = vec4(1.0, 0.0425, 1.04, -0.04);
    vec4 r = roughness * c0 + c1;
    float a004 = min(r.x * r.x, exp2(-9.28 * ndv)) * r.x + r.y;
    return vec2(-1.04, 1.04) * a004 + r.zw;
}

vec3 hemisphere(vec3 dir) {
    return mix(u_ground, u_sky, dir.y * 0.5 + 0.5);
}

void main() {
    float lod = mat_lod(v_uv);
    MatSample s = mat_fetch(v_uv, lod);
#ifdef MAT_WRITE_SAMPLE
    for (int i = 0; i < MAT_TEXTURES; ++i) {
        mat_out[i] = s.t[i];
    }
    return;
#endif
    vec3 base = vec3(mat_channel(s, SLOT_BASE_R), mat_channel(s, SLOT_BASE_G), mat_channel(s, SLOT_BASE_B));
    vec2 nxy = vec2(mat_channel(s, SLOT_NORMAL_X), mat_channel(s, SLOT_NORMAL_Y)) * 2.0 - 1.0;
    vec3 n_ts = vec3(nxy, sqrt(clamp(1.0 - dot(nxy, nxy), 0.0, 1.0)));
    float roughness = mat_channel(s, SLOT_ROUGHNESS);
    float metallic = mat_channel(s, SLOT_METALLIC);
    float ao = mat_channel(s, SLOT_AO);
    float opacity = mat_channel(s, SLOT_OPACITY);
    vec3 emissive = vec3(mat_channel(s, SLOT_EMISSIVE_R), mat_channel(s, SLOT_EMISSIVE_G),
                         mat_channel(s, SLOT_EMISSIVE_B));
    float specular = mat_channel(s, SLOT_SPECULAR);
#ifdef SCENE_MATERIAL
    metallic *= u_mr_factor.x;
    roughness *= u_mr_factor.y;
    ao = mix(1.0, ao, u_mr_factor.z);
    emissive *= u_emissive_factor;
    opacity *= u_base_factor.a;
#endif

    if (u_view != 0) {
        vec3 c;
        if (u_view == 1) c = base;
        else if (u_view == 2) c = n_ts * 0.5 + 0.5;
        else if (u_view == 3) c = vec3(roughness);
        else if (u_view == 4) c = vec3(metallic);
        else if (u_view == 5) c = vec3(ao);
        else if (u_view == 6) c = vec3(mat_channel(s, SLOT_HEIGHT));
        else if (u_view == 7) c = vec3(opacity);
        else if (u_view == 8) c = emissive;
        else if (u_view == 9) c = vec3(specular);
        else c = turbo(lod / max(float(mat_mips - 1), 1.0));
        frag_color = vec4(c, 1.0);
        return;
    }
#ifdef SCENE_MATERIAL
    if (u_alpha_mode == 1 && opacity < u_alpha_cutoff) {
        discard;
    }
#else
    if (opacity < 0.5) {
        discard;
    }
#endif

    vec3 ng = normalize(v_normal);
    if (!gl_FrontFacing) {
        ng = -ng;
    }
    vec3 t = v_tangent.xyz - ng * dot(ng, v_tangent.xyz);
    t = dot(t, t) > 1e-12 ? normalize(t) : vec3(1.0, 0.0, 0.0);
    vec3 b = cross(ng, t) * (v_tangent.w < 0.0 ? -1.0 : 1.0);
    n_ts.xy *= u_normal_strength;
    vec3 n = normalize(mat3(t, b, ng) * n_ts);

    vec3 albedo = srgb_to_linear(base);
#ifdef SCENE_MATERIAL
    albedo *= u_base_factor.rgb;
#endif
    vec3 v = normalize(u_eye - v_world);
    float ndv = clamp(abs(dot(n, v)), 1e-4, 1.0);
    float a = max(roughness * roughness, 0.002);  // perceptual roughness squared
    vec3 f0 = mix(vec3(0.08 * specular), albedo, metallic);
    vec3 diffuse_color = albedo * (1.0 - metallic);

    vec3 l = normalize(u_light_dir);
    vec3 h = normalize(l + v);
    float ndl = clamp(dot(n, l), 0.0, 1.0);
    float ndh = clamp(dot(n, h), 0.0, 1.0);
    float vdh = clamp(dot(v, h), 0.0, 1.0);
    vec3 f = f_schlick(f0, vdh);
    vec3 spec = d_ggx(ndh, a) * v_smith(ndv, ndl, a) * f;
    vec3 direct = ((1.0 - f) * diffuse_color / PI + spec) * u_light_color * ndl;

    vec3 r = reflect(-v, n);
    vec3 ambient;
    if (u_ibl == 1) {  // split sum; the diffuse lobe gets what the specular one leaves (a white furnace stays white)
        vec2 ab = textureLod(u_brdf_lut, vec2(ndv, roughness), 0.0).rg;
        vec3 spec_weight = f0 * ab.x + ab.y;
        ambient = (diffuse_color * (1.0 - spec_weight) * ibl_irradiance(n)
                   + ibl_specular(r, roughness) * spec_weight) * ao;
    } else {
        vec2 ab = env_brdf(ndv, roughness);
        vec3 spec_env = mix(hemisphere(r), hemisphere(n), roughness);
        ambient = (diffuse_color * hemisphere(n) + spec_env * (f0 * ab.x + ab.y)) * ao;
    }

#ifdef SCENE_MATERIAL
    float alpha = u_alpha_mode == 2 ? clamp(opacity, 0.0, 1.0) : 1.0;
#else
    float alpha = 1.0;
#endif
    frag_color = vec4(to_display((direct + ambient + emissive) * u_exposure), alpha);
}
