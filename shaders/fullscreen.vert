#version 430
// fullscreen.vert: one triangle covering the viewport; uv in [0, 1] over the screen.
// FULLSCREEN_Z: its depth (background.frag draws at the far plane, 1, where the mesh left nothing).
#ifndef FULLSCREEN_Z
#define FULLSCREEN_Z 0.0
#endif
out vec2 v_uv;

void main() {
    vec2 p = vec2(float((gl_VertexID << 1) & 2), float(gl_VertexID & 2));
    v_uv = p;
    gl_Position = vec4(p * 2.0 - 1.0, FULLSCREEN_Z, 1.0);
}
