"""Image-based lighting (viewer/ibl.py, shaders/ibl*.glsl): a white furnace, a mirror sphere's reflection, HDR files."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

moderngl = pytest.importorskip("moderngl")
pytestmark = pytest.mark.usefixtures("egl")  # conftest: skip without headless OpenGL 4.3

SIZE = (192, 192)
ROOT = Path(__file__).resolve().parents[1]


def write_material(folder: Path, base: int, roughness: int, metallic: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    flat = np.zeros((64, 64, 3), np.uint8)
    flat[...] = (128, 128, 255)
    Image.fromarray(flat).save(folder / "normal.png")
    # a height map that varies (a material of constant maps alone is refused); shading does not read it
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)).save(folder / "height.png")
    for name, value in (("basecolor", base), ("roughness", roughness), ("metallic", metallic)):
        Image.fromarray(np.full((64, 64, 3) if name == "basecolor" else (64, 64), value, np.uint8)).save(
            folder / f"{name}.png")
    return folder


def rle_channel(values: np.ndarray) -> bytes:
    """One channel of a scanline in Radiance's run-length coding: runs of 3 or more, literals between."""
    out, i, n = bytearray(), 0, len(values)
    while i < n:
        run = 1
        while i + run < n and run < 127 and values[i + run] == values[i]:
            run += 1
        if run >= 3:
            out += bytes([128 + run, values[i]])
            i += run
            continue
        j = i
        while j < n and j - i < 128 and not (j + 2 < n and values[j] == values[j + 1] == values[j + 2]):
            j += 1
        out += bytes([j - i]) + bytes(values[i:j])
        i = j
    return bytes(out)


def write_hdr(path: Path, rgb: np.ndarray, rle: bool = False) -> Path:
    """A Radiance file, flat or run-length coded."""
    m = np.max(rgb, axis=-1)
    e = np.where(m > 1e-32, np.floor(np.log2(np.maximum(m, 1e-32))) + 1, -128)
    scale = np.where(m > 1e-32, 256.0 / np.exp2(e), 0.0)
    rgbe = np.concatenate([np.clip(rgb * scale[..., None], 0, 255), (e + 128)[..., None]], -1).astype(np.uint8)
    h, w = rgb.shape[:2]
    body = rgbe.tobytes() if not rle else b"".join(
        bytes([2, 2, w >> 8, w & 255]) + b"".join(rle_channel(row[:, c]) for c in range(4)) for row in rgbe)
    path.write_bytes(b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n" + f"-Y {h} +X {w}\n".encode() + body)
    return path


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    c = c / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


@pytest.fixture
def lit(tmp_path):
    """A headless viewer on the preview sphere looking straight down -z, no tone mapping."""
    from viewer.headless import Headless

    def make(material: Path, env: str, **state):
        h = Headless(SIZE)
        h.viewer.open(material, None, mesh, environment=env)
        h.wait()
        s = h.viewer.state
        s.tonemap, s.exposure = "none", 1.0
        for k, v in state.items():
            setattr(s, k, v)
        h.viewer.orbit.yaw = h.viewer.orbit.pitch = 0.0
        hosts.append(h)
        return h

    hosts = []
    mesh = write_sphere(tmp_path / "sphere.obj")
    yield make
    for h in hosts:
        h.release()


def test_furnace_white_rough_dielectric_reflects_the_uniform_environment(lit, tmp_path):
    radiance = 0.5
    env = write_hdr(tmp_path / "white.hdr", np.full((64, 128, 3), radiance, np.float32))
    h = lit(write_material(tmp_path / "white", 255, 255, 0), str(env))
    image = h.frame(panel=False)[..., :3].astype(np.float64)
    assert not h.viewer.log.errors, h.viewer.log.errors
    sphere = np.abs(image - image[0, 0]).sum(-1) > 3
    assert sphere.mean() > 0.2
    measured = srgb_to_linear(image[sphere])
    # the whole sphere, grazing angles included, within 3% of the environment's radiance
    assert np.abs(measured / radiance - 1).max() < 0.03, (measured.min(), measured.max())


def direction_env(w: int = 256, h: int = 128) -> np.ndarray:
    """Each texel encodes where it is: R = v (0 up .. 1 down), G/B = the azimuth u on a circle."""
    v, u = np.meshgrid((np.arange(h) + 0.5) / h, (np.arange(w) + 0.5) / w, indexing="ij")
    return np.stack([v, 0.5 + 0.4 * np.sin(2 * np.pi * u), 0.5 + 0.4 * np.cos(2 * np.pi * u)], -1).astype(np.float32)


def decode(pixel: np.ndarray) -> tuple[float, float]:
    """(u, v) of the environment texel a pixel shows."""
    r, g, b = srgb_to_linear(pixel[:3].astype(np.float64))
    return math.atan2((g - 0.5) / 0.4, (b - 0.5) / 0.4) / (2 * np.pi) % 1.0, float(r)


def turn(u_from: float, u_to: float) -> float:
    """The azimuth turned from one u to another, in (-0.5, 0.5] of a full turn."""
    return (u_to - u_from + 0.5) % 1.0 - 0.5


def write_sphere(path: Path, n: int = 96) -> Path:
    """A UV sphere of radius 1 (OBJ with normals and UVs): its normals are exact, unlike the preview mesh's grooves."""
    rows = []
    for i in range(n + 1):
        theta = math.pi * i / n
        for j in range(2 * n + 1):
            phi = 2 * math.pi * j / (2 * n)
            rows.append((math.sin(theta) * math.sin(phi), math.cos(theta), math.sin(theta) * math.cos(phi),
                         j / (2 * n), 1 - i / n))
    lines = [f"v {x:.6f} {y:.6f} {z:.6f}\nvn {x:.6f} {y:.6f} {z:.6f}\nvt {u:.6f} {v:.6f}" for x, y, z, u, v in rows]
    k = lambda i, j: i * (2 * n + 1) + j + 1  # noqa: E731
    for i in range(n):
        for j in range(2 * n):
            for a, b, c in ((k(i, j), k(i + 1, j), k(i + 1, j + 1)), (k(i, j), k(i + 1, j + 1), k(i, j + 1))):
                lines.append(f"f {a}/{a}/{a} {b}/{b}/{b} {c}/{c}/{c}")
    path.write_text("\n".join(lines) + "\n")
    return path


def mirror_pixel(h, direction: np.ndarray) -> tuple[int, int]:
    """The pixel (x, y) where the unit sphere at the origin reflects `direction` towards the camera."""
    renderer, camera = h.viewer.renderer, h.viewer.camera
    eye = np.asarray(camera.eye, float)
    best = None
    for t in np.linspace(0, 1, 2001):  # normals between the eye's and the direction's: the reflecting one
        n = (1 - t) * eye / np.linalg.norm(eye) + t * direction
        n /= np.linalg.norm(n)
        v = eye - n
        v /= np.linalg.norm(v)
        r = 2 * np.dot(n, v) * n - v
        err = np.linalg.norm(r - direction)
        if best is None or err < best[0]:
            best = (err, n)
    clip = np.append(best[1], 1.0) @ renderer._view_proj(SIZE, camera, None)
    ndc = clip[:2] / clip[3]
    return int((ndc[0] * 0.5 + 0.5) * SIZE[0]), int((0.5 - ndc[1] * 0.5) * SIZE[1])


def test_mirror_sphere_reflects_the_environment_right_way_up_and_round(lit, tmp_path):
    env = write_hdr(tmp_path / "directions.hdr", direction_env())
    h = lit(write_material(tmp_path / "mirror", 255, 0, 255), str(env), env_background=True)
    image = h.frame(panel=False)
    assert not h.viewer.log.errors, h.viewer.log.errors
    w, ht = SIZE
    # the background: the camera looks down -z (u 0.5, the horizon); the screen's right is further round to +x
    u_bg, v_bg = decode(image[ht // 2, 2])
    u_bg_right, _ = decode(image[ht // 2, w - 3])
    _, v_bg_top = decode(image[2, w // 2])
    assert turn(u_bg, u_bg_right) > 0.05 and v_bg_top < 0.45  # 35 degrees of view, left to right
    # the sphere: its centre reflects what is behind the camera (+z, u 0 = 1), its top the sky, its bottom the
    # ground, and a point halfway to its right edge (normal 45 degrees to +x) reflects +x: a quarter turn right
    # of the view direction, where the background's right side lies
    cy, cx = ht // 2, w // 2
    u_center, v_center = decode(image[cy, cx])
    assert abs(turn(0.0, u_center)) < 0.05 and abs(v_center - 0.5) < 0.05
    right, up = (mirror_pixel(h, np.array(d, float)) for d in ((1, 0, 0), (0, 1, 0)))
    u_right, v_right = decode(image[right[1], right[0]])
    u_left, _ = decode(image[right[1], w - 1 - right[0]])
    assert abs(turn(0.75, u_right)) < 0.05 and abs(v_right - 0.5) < 0.05, u_right  # +x
    assert abs(turn(0.25, u_left)) < 0.05, u_left  # -x
    off = cy - up[1]
    assert decode(image[cy - off, cx])[1] < 0.1  # straight up
    assert decode(image[cy + off, cx])[1] > 0.9  # straight down


def test_hdr_and_exr_environments_load(tmp_path):
    from viewer.environment import bundled, load_environment

    rgb = direction_env(32, 16) * 3.0
    rgb[:, :10] = 1.0  # runs for the run-length coding
    for rle in (False, True):
        back = load_environment(write_hdr(tmp_path / f"e{rle}.hdr", rgb, rle))
        assert back.shape == rgb.shape and np.abs(back - rgb).max() < rgb.max() / 128  # 8-bit mantissas
    names = bundled()
    assert {"studio", "courtyard", "sunset"} <= set(names)
    studio = load_environment(names["studio"])
    assert studio.shape == (512, 1024, 3) and studio.max() > 10  # real HDR: well above 1


def test_broken_environment_keeps_the_current_one(lit, tmp_path):
    from viewer.environment import load_environment
    from viewer.errors import ViewerError

    broken = tmp_path / "broken.exr"
    broken.write_bytes(b"not an EXR at all" * 10)
    with pytest.raises(ViewerError, match="broken.exr"):
        load_environment(broken)
    h = lit(write_material(tmp_path / "m", 200, 128, 0), "studio")
    before = h.frame(panel=False)
    h.viewer.state.environment = str(broken)
    after = h.frame(panel=False)
    assert h.viewer.state.environment == "studio"
    assert len(h.viewer.log.errors) == 1 and "\n" not in h.viewer.log.errors[0]
    assert np.array_equal(before, after)
    h.frame(panel=False)
    assert len(h.viewer.log.errors) == 1  # reported once


def test_render_with_a_broken_env_exits_2_in_one_line(tmp_path):
    broken = tmp_path / "broken.hdr"
    broken.write_bytes(b"#?RADIANCE\ngarbage")
    out = subprocess.run([sys.executable, "-m", "viewer.cli", "render", str(ROOT / "assets" / "tiles"), "-o",
                          str(tmp_path / "x.png"), "--env", str(broken)], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 2, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "broken.hdr" in out.stderr
    assert not (tmp_path / "x.png").exists()


def test_environments_are_cached_and_the_panel_shows_them(lit, tmp_path):
    h = lit(write_material(tmp_path / "m", 180, 100, 0), "studio", env_background=True, env_blur=0.5)
    h.frame(panel=True)  # the Environment section draws
    studio = h.frame(panel=False)
    maps = h.viewer.environments.maps["studio"]
    h.viewer.state.environment = "sunset"
    sunset = h.frame(panel=False)
    h.viewer.state.environment = "studio"
    assert np.array_equal(h.frame(panel=False), studio) and not np.array_equal(studio, sunset)
    assert h.viewer.environments.maps["studio"] is maps and set(h.viewer.environments.maps) == {"studio", "sunset"}
    assert not h.viewer.log.errors


def test_view_with_a_broken_env_fails_before_opening_anything(tmp_path, monkeypatch):
    import viewer.commands
    from viewer.errors import ViewerError

    broken = tmp_path / "sky.exr"
    broken.write_bytes(b"\x76\x2f\x31\x01" + b"\0" * 64)  # EXR magic, then nothing valid
    monkeypatch.setattr(viewer.commands, "run_window", lambda *a, **k: pytest.fail("opened a window"))
    with pytest.raises(ViewerError, match="sky.exr") as e:
        viewer.commands.view_command(None, None, None, env=broken, fallback_dir=tmp_path / "out")
    assert "\n" not in str(e.value) and not (tmp_path / "out").exists()
    with pytest.raises(ViewerError, match="OpenEXR"):
        viewer.commands.view_command(None, None, None, env=tmp_path / "sky.png")
