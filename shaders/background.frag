#version 430
// background.frag: the environment behind the object (drawn at the far plane after it: only uncovered pixels
// shade), sharp or blurred by reading a rougher level of the prefiltered map.
#define IBL_LOOKUPS 1
#include "ibl.glsl"
in vec2 v_uv;
uniform mat4 u_inv_view_proj;
uniform vec3 u_eye;
uniform float u_blur;  // 0 sharp .. 1 the roughest level
uniform float u_exposure;
uniform int u_tonemap;
out vec4 frag_color;

#include "tonemap.glsl"

void main() {
    vec4 far = u_inv_view_proj * vec4(v_uv * 2.0 - 1.0, 1.0, 1.0);
    vec3 d = normalize(far.xyz / far.w - u_eye);
    vec3 c = textureLod(u_env_specular, env_lookup_uv(d), u_blur * (u_env_levels - 1.0)).rgb * u_env_intensity;
    frag_color = vec4(to_display(c * u_exposure), 1.0);
}
