#version 430
// pick.frag: which primitive covers a pixel (viewer/picking.py): its index + 1 into an integer target (0: none).
uniform int u_pick_id;
out int pick_out;

void main() {
    pick_out = u_pick_id + 1;
}
