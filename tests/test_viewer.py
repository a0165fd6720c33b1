"""The viewer: headless (EGL) renders of every mode and view, a real window under Xvfb, captures, errors, CLI."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
TILES = ROOT / "assets" / "tiles"
CROP = (100, 200, 64, 48)  # the crop of conftest's small_ngtc
SIZE = (256, 256)

moderngl = pytest.importorskip("moderngl")


def _egl_available() -> bool:
    try:
        moderngl.create_standalone_context(backend="egl", require=430).release()
        return True
    except Exception:  # noqa: BLE001 - no EGL / no GL 4.3: skip, don't fail
        return False


pytestmark = pytest.mark.skipif(not _egl_available(), reason="no headless OpenGL 4.3 (EGL)")


@pytest.fixture(scope="module")
def scene(tmp_path_factory, small_ngtc) -> tuple[Path, Path]:
    """A 64x48 crop of the bundled tiles as a folder of PNGs, with its .ngtc beside it (crop.ngtc)."""
    root = tmp_path_factory.mktemp("viewer")
    folder = root / "crop"
    folder.mkdir()
    x, y, w, h = CROP
    for png in TILES.glob("*.png"):
        Image.open(png).crop((x, y, x + w, y + h)).save(folder / png.name)
    ngtc = root / "crop.ngtc"
    ngtc.write_bytes(small_ngtc)
    return folder, ngtc


@pytest.fixture(scope="module")
def no_uv_mesh(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("mesh") / "box.obj"
    path.write_text("v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nf 1 2 3\nf 1 3 4\n")
    return path


@pytest.fixture(scope="module")
def host(scene, tmp_path_factory, monkeypatch_module):
    from viewer.app import Headless

    monkeypatch_module.setenv("NGTC_CACHE", str(tmp_path_factory.mktemp("cache")))
    h = Headless(SIZE, output_dir=tmp_path_factory.mktemp("out"))
    h.viewer.open(*scene)
    h.wait()
    assert not h.viewer.errors, h.viewer.errors
    yield h
    h.release()


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def render(host, panel: bool = False, **state) -> np.ndarray:
    from viewer.renderer import ViewState

    host.viewer.state = ViewState(**state)
    host.wait()
    assert not host.viewer.errors, host.viewer.errors
    return host.frame(panel=panel).astype(np.float64)


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    d = (a - b)[mask] if mask is not None else a - b
    mse = float(np.mean(d**2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def object_mask(image: np.ndarray) -> np.ndarray:
    """Pixels that are not the background (the first pixel's color)."""
    return np.abs(image - image[0, 0]).sum(axis=-1) > 3


def hf_energy(image: np.ndarray) -> float:
    g = image.mean(axis=-1)
    lap = 4 * g[1:-1, 1:-1] - g[:-2, 1:-1] - g[2:, 1:-1] - g[1:-1, :-2] - g[1:-1, 2:]
    return float(np.abs(lap).mean())


# --------------------------------------------------------------------------------------------- meshes


def test_mesh_loading_tangents_and_missing_uvs(no_uv_mesh):
    from viewer.mesh import MeshError, load_mesh, quad_mesh

    sphere = load_mesh(ROOT / "assets" / "meshes" / "material-sphere.obj")
    assert sphere.uvs.shape[0] == sphere.positions.shape[0] and 0.4 < sphere.radius < 0.6
    t, n = sphere.tangents[:, :3], sphere.normals
    assert np.allclose(np.linalg.norm(t, axis=1), 1, atol=1e-4)
    assert np.abs((t * n).sum(axis=1)).max() < 1e-3  # orthogonal to the normal
    quad = quad_mesh(64, 48)
    assert np.allclose(quad.tangents, [1, 0, 0, 1]) and quad.flat
    with pytest.raises(MeshError, match="no texture coordinates"):
        load_mesh(no_uv_mesh)


def test_mesh_formats(tmp_path):
    import trimesh
    from trimesh.visual import TextureVisuals

    from viewer.mesh import load_mesh

    m = trimesh.creation.uv_sphere(count=[12, 12])
    m.visual = TextureVisuals(uv=np.c_[m.vertices[:, 0] * 0.5 + 0.5, m.vertices[:, 2] * 0.5 + 0.5])
    for suffix in (".glb", ".ply", ".obj"):
        m.export(tmp_path / f"s{suffix}")
        mesh = load_mesh(tmp_path / f"s{suffix}")
        assert len(mesh.indices) == len(m.faces) and mesh.radius == pytest.approx(1.0, abs=1e-3), suffix
        assert np.allclose(np.linalg.norm(mesh.normals, axis=1), 1, atol=1e-4)


# --------------------------------------------------------------------------------------------- headless


def test_panel_renders_headless(host):
    scene_only = render(host, panel=False)
    with_panel = render(host, panel=True)
    panel = np.s_[5:200, 5:90]  # the panel's top left corner
    assert np.abs(with_panel[panel] - scene_only[panel]).mean() > 10
    assert np.array_equal(with_panel[:, -30:], scene_only[:, -30:])  # the scene right of it is untouched


def test_modes_reference_neural_astc(host):
    from models.astc import chain_bits_per_texel

    ref = render(host, mode_a="reference")
    neural = render(host, mode_a="neural")
    astc = render(host, mode_a="astc-8x8")  # encoded on demand (background thread, subprocess)
    mask = object_mask(ref)
    assert mask.mean() > 0.2  # the sphere fills a good part of the frame
    assert 20 < psnr(ref, neural, mask) < 60  # nearly equal, not identical
    assert 25 < psnr(ref, astc, mask) < 70
    facts = host.viewer.sets
    astc = facts["astc-8x8"]
    assert astc.bits_per_texel == pytest.approx(chain_bits_per_texel(64, 48, "8x8", len(astc.textures)))
    assert facts["neural"].bits_per_texel == pytest.approx(len(host.viewer.ngtc_path.read_bytes()) * 8 / (64 * 48))
    assert facts["neural"].psnr and facts["astc-8x8"].psnr[0] > 25


def test_neural_on_sample_matches_decoded_on_load(host):
    decoded = render(host, mode_a="neural")
    on_sample = render(host, mode_a="neural-trilinear")
    mask = object_mask(decoded)
    assert psnr(decoded, on_sample, mask) > 30  # same decoder, float vs 8-bit texels


def test_channel_views(host):
    normal = render(host, view="normal")
    rough = render(host, view="roughness")
    mask = object_mask(normal)
    assert normal[mask][:, 2].mean() > normal[mask][:, 0].mean() + 40  # tangent-space normals are blue
    gray = rough[mask]
    assert np.abs(gray[:, 0] - gray[:, 1]).max() <= 1 and np.abs(gray[:, 1] - gray[:, 2]).max() <= 1
    assert np.abs(normal - rough)[mask].mean() > 20


def test_forced_coarse_mip_is_blurrier(host):
    render(host, flat=True, view="basecolor")  # switch to the flat quad (resets its camera)
    host.viewer.flat_camera.scale = 4.0  # 64x48 texels -> 256x192 pixels
    fine = render(host, flat=True, view="basecolor", force_mip=0)
    coarse = render(host, flat=True, view="basecolor", force_mip=3)
    region = np.s_[40:216, 8:248]
    assert hf_energy(coarse[region]) < 0.5 * hf_energy(fine[region])
    lod = render(host, flat=True, view="mip level", force_mip=3)
    assert not np.array_equal(lod[region], render(host, flat=True, view="mip level", force_mip=0)[region])
    host.viewer.flat_camera.scale = 1.0


def test_split_and_difference(host):
    a = render(host, mode_a="reference")
    b = render(host, mode_a="neural")
    split = render(host, mode_a="reference", mode_b="neural", compare="split", split=0.5)
    assert np.array_equal(split[:, :126], a[:, :126])
    assert np.array_equal(split[:, 130:], b[:, 130:])
    assert (split[:, 128] == 255).all()  # the divider
    same = render(host, mode_a="reference", mode_b="reference", compare="difference", colormap="gray")
    assert same.max() == 0
    diff = render(host, mode_a="reference", mode_b="neural", compare="difference", colormap="gray", gain=1.0)
    expected = np.abs(a - b).max(axis=-1)
    assert np.abs(diff[..., 0] - expected).max() <= 1


def test_capture_writes_json_and_csv(host):
    render(host)
    host.viewer.start_capture(frames=2, modes=["reference", "neural"])
    while host.viewer.capture is not None:
        host.frame(panel=False)
    json_path, csv_path = host.viewer.last_capture
    doc = json.loads(json_path.read_text())
    assert set(doc["modes"]) == {"reference", "neural"} and doc["frames_per_mode"] == 2
    assert all(m["frames"] == 2 and m["gpu_ms_mean"] > 0 for m in doc["modes"].values())
    rows = list(csv.DictReader(csv_path.open()))
    assert len(rows) == 4 and {"mode", "frame", "A_ms", "wall_ms"} <= set(rows[0])


def test_broken_files_keep_the_scene(host, tmp_path, no_uv_mesh):
    viewer = host.viewer
    render(host)
    neural_before, mesh_before = viewer.sets["neural"], viewer.mesh
    broken = tmp_path / "broken.ngtc"
    broken.write_bytes(viewer.ngtc_path.read_bytes()[:-7])
    viewer.load_ngtc(broken)
    viewer.load_mesh(no_uv_mesh)
    viewer.load_material(tmp_path)  # an empty folder
    host.wait()
    assert any("broken.ngtc" in e and "truncated" in e for e in viewer.errors)
    assert any("no texture coordinates" in e for e in viewer.errors)
    assert any("no recognizable texture maps" in e for e in viewer.errors)
    assert viewer.sets["neural"] is neural_before and viewer.mesh is mesh_before
    image = host.frame(panel=True)  # still renders, the errors in red in the panel
    panel = image[:120, :100].astype(int)
    red = (panel[..., 0] > 180) & (panel[..., 1] < 140) & (panel[..., 2] < 140)
    assert red.sum() > 20
    viewer.errors.clear()


def test_keyboard_shortcuts(host):
    from imgui_bundle import imgui

    viewer = host.viewer
    render(host)

    def press(key) -> None:
        imgui.set_current_context(viewer.imgui_context)
        imgui.get_io().add_key_event(key, True)
        host.frame(panel=True)
        imgui.get_io().add_key_event(key, False)
        host.frame(panel=True)

    press(imgui.Key.s)
    assert viewer.state.compare == "split"
    press(imgui.Key.right_bracket)
    press(imgui.Key.right_bracket)
    assert viewer.state.force_mip == 1  # -1 (automatic) -> 0 -> 1
    press(imgui.Key._0)
    assert viewer.state.force_mip == -1
    press(imgui.Key.c)
    assert viewer.state.view == "basecolor"
    press(imgui.Key.f1)
    assert viewer.show_help
    press(imgui.Key.f1)
    render(host)


def test_eval_report_and_astc_folder_are_found(host, tmp_path):
    from viewer.materials_gl import find_astc_dir, report_psnr

    viewer = host.viewer
    render(host, mode_a="astc-8x8")
    cached = next(p for p in Path(os.environ["NGTC_CACHE"]).rglob("manifest.json") if "8x8" in str(p)).parent
    shutil.copytree(cached, tmp_path / "report" / "astc" / "crop" / "8x8_medium")
    assert find_astc_dir(viewer.material, "8x8", [tmp_path], viewer.fingerprint) == cached.__class__(
        tmp_path / "report" / "astc" / "crop" / "8x8_medium")
    assert find_astc_dir(viewer.material, "12x12", [tmp_path], viewer.fingerprint) is None
    (tmp_path / "report" / "ngtc").mkdir()
    ngtc = tmp_path / "report" / "ngtc" / "crop_bpp2.4.ngtc"
    shutil.copy(viewer.ngtc_path, ngtc)
    settings = [{"codec": "astc", "setting": "8x8", "psnr": [40.0, 41.0, None]},
                {"codec": "neural", "setting": "bpp2.4", "files": ["ngtc/crop_bpp2.4.ngtc"], "psnr": [30.0, 31.0]}]
    doc = {"materials": [{"fingerprint": "other", "settings": [{"codec": "astc", "setting": "4x4", "psnr": [1.0]}]},
                         {"fingerprint": viewer.fingerprint, "settings": settings}]}
    (tmp_path / "report" / "report.json").write_text(json.dumps(doc))
    found = report_psnr(tmp_path / "report" / "report.json", viewer.fingerprint, ngtc)
    assert found == {"astc-8x8": [40.0, 41.0, float("inf")], "neural": [30.0, 31.0]}


# --------------------------------------------------------------------------------------------- window


@pytest.fixture(scope="module")
def display():
    if os.environ.get("DISPLAY"):
        yield os.environ["DISPLAY"]
        return
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.skip("no DISPLAY and no Xvfb")
    number = next(n for n in range(90, 200) if not Path(f"/tmp/.X11-unix/X{n}").exists()
                  and not Path(f"/tmp/.X{n}-lock").exists())
    proc = subprocess.Popen([xvfb, f":{number}", "-screen", "0", "800x600x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while not Path(f"/tmp/.X11-unix/X{number}").exists():
        if time.time() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.skip("Xvfb did not start")
        time.sleep(0.05)
    os.environ["DISPLAY"] = f":{number}"
    try:
        yield os.environ["DISPLAY"]
    finally:
        del os.environ["DISPLAY"]
        proc.terminate()
        proc.wait(5)


def test_window_opens_and_panel_renders(display, scene, tmp_path, monkeypatch):
    from viewer.app import run_window

    monkeypatch.setenv("NGTC_CACHE", str(tmp_path / "cache"))
    shots: dict[str, np.ndarray] = {}

    def on_frame(viewer, fb, size, index):
        if index == 0:
            viewer.wait()
        elif index == 2:
            shots["panel"] = viewer.read_pixels(fb, size).astype(int)
            viewer.show_panel = False
            viewer.state.view = "normal"
        elif index == 3:
            shots["scene"] = viewer.read_pixels(fb, size).astype(int)
            shots["errors"] = list(viewer.errors)

    viewer = run_window(*scene, None, SIZE, max_frames=4, on_frame=on_frame)
    assert viewer is not None, "no window under Xvfb"
    assert shots["errors"] == []
    panel, scene_img = shots["panel"], shots["scene"]
    assert panel.shape == (*SIZE[::-1], 3)
    region = np.s_[5:200, 5:90]
    assert np.abs(panel[region] - scene_img[region]).mean() > 10  # the panel covers the scene there
    mask = object_mask(scene_img.astype(float))
    assert scene_img[mask][:, 2].mean() > scene_img[mask][:, 0].mean()  # normal view, no panel


# --------------------------------------------------------------------------------------------- CLI


def ngtc(*args: str, cwd: Path, display: str | None = None) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "NGTC_CACHE": str(cwd / "cache"), "HOME": str(cwd)}
    if display:
        env["DISPLAY"] = display
    return subprocess.run([sys.executable, "-m", "viewer.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=env)


def test_cli_render_and_errors(scene, tmp_path, no_uv_mesh):
    folder, _ = scene
    out = tmp_path / "shot.png"
    r = ngtc("render", str(folder), "--mode", "reference", "--split", "neural", "--mip", "1", "--view", "shaded",
             "-o", str(out), "--size", "160x120", "--panel", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert Image.open(out).size == (160, 120)
    r = ngtc("render", str(folder), "--mesh", str(no_uv_mesh), "-o", str(out), "--size", "64x64", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("ngtc: error:") and "no texture coordinates" in lines[0]


def test_cli_view_without_display_writes_headless_renders(scene, tmp_path):
    folder, _ = scene
    r = ngtc("view", str(folder), "--size", "128x96", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "no display" in r.stderr.splitlines()[0]
    written = sorted(p.name for p in (tmp_path / "ngtc-view").rglob("*") if p.is_file())
    assert {"reference.png", "neural.png", "split.png"} <= set(written)
    assert any(n.endswith(".json") for n in written) and any(n.endswith(".csv") for n in written)
