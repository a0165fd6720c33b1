// ibl.glsl: equirectangular directions and image-based lighting lookups (viewer/ibl.py prefilters the maps).
// Convention: u = 0.5 looks down -z, u grows turning right (towards +x), v = 0 is straight up (+y); seen from
// inside, the image is the right way round. u_env_rotation (radians) turns the environment about +y.

const float IBL_PI = 3.14159265358979;

vec2 env_uv(vec3 d) {
    return vec2(atan(d.x, -d.z) / (2.0 * IBL_PI) + 0.5, acos(clamp(d.y, -1.0, 1.0)) / IBL_PI);
}

vec3 env_dir(vec2 uv) {
    float phi = (uv.x - 0.5) * 2.0 * IBL_PI, theta = uv.y * IBL_PI;
    return vec3(sin(phi) * sin(theta), cos(theta), -cos(phi) * sin(theta));
}

#ifdef IBL_LOOKUPS
uniform sampler2D u_env_specular;    // mip i: GGX-prefiltered at roughness i / (u_env_levels - 1)
uniform sampler2D u_env_irradiance;  // cosine-convolved: the radiance a white Lambertian surface reflects
uniform sampler2D u_brdf_lut;        // split-sum scale and bias by (n.v, roughness)
uniform float u_env_levels;
uniform float u_env_rotation;
uniform float u_env_intensity;

vec2 env_lookup_uv(vec3 d) {
    vec2 uv = env_uv(d);
    return vec2(uv.x - u_env_rotation / (2.0 * IBL_PI), uv.y);
}

vec3 ibl_specular(vec3 r, float roughness) {
    return textureLod(u_env_specular, env_lookup_uv(r), roughness * (u_env_levels - 1.0)).rgb * u_env_intensity;
}

vec3 ibl_irradiance(vec3 n) {
    return textureLod(u_env_irradiance, env_lookup_uv(n), 0.0).rgb * u_env_intensity;
}
#endif
