// tonemap.glsl: linear radiance to the display (u_tonemap: 0 ACES, Narkowicz fit; 1 Reinhard; 2 none; then sRGB).
// The including shader declares `uniform int u_tonemap`.

vec3 linear_to_srgb(vec3 c) {
    c = clamp(c, 0.0, 1.0);
    return mix(c * 12.92, 1.055 * pow(c, vec3(1.0 / 2.4)) - 0.055, step(0.0031308, c));
}

vec3 aces(vec3 x) {
    return clamp((x * (2.51 * x + 0.03)) / (x * (2.43 * x + 0.59) + 0.14), 0.0, 1.0);
}

vec3 to_display(vec3 color) {
    if (u_tonemap == 0) color = aces(color);
    else if (u_tonemap == 1) color = color / (1.0 + color);
    return linear_to_srgb(color);
}
