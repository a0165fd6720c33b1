#version 430
// depth.frag: the depth pre-pass (viewer/renderer.py) writes depth only, so that pbr.frag, which may decode
// the neural texture per pixel, then runs once per visible pixel instead of once per overlapping fragment.
void main() {
}
