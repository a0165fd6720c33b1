#version 430
// pbr.vert: mesh vertices (viewer/mesh.py interleaved layout) to world space for pbr.frag.

in vec3 in_position;
in vec3 in_normal;
in vec2 in_uv;
in vec4 in_tangent;

uniform mat4 u_model;
uniform mat4 u_view_proj;
uniform mat3 u_normal_matrix;
uniform vec2 u_uv_scale;  // material tiling

out vec3 v_world;
out vec3 v_normal;
out vec4 v_tangent;
out vec2 v_uv;
invariant gl_Position;  // the depth pre-pass (depth.frag) must produce exactly these depths

void main() {
    vec4 world = u_model * vec4(in_position, 1.0);
    v_world = world.xyz;
    v_normal = u_normal_matrix * in_normal;
    v_tangent = vec4(mat3(u_model) * in_tangent.xyz, in_tangent.w);
    // Mesh UVs have v = 0 at the image bottom; textures here have row 0 (the image top) at v = 0.
    v_uv = vec2(in_uv.x, 1.0 - in_uv.y) * u_uv_scale;
    gl_Position = u_view_proj * world;
}
