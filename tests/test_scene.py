"""Whole glTF scenes (viewer/gltf_scene.py, scene_materials.py, scene_draw.py, picking.py): three real materials on
quads placed by node transforms, drawn one call per primitive; picking; .ngtc from a library folder or compressed in
the background; alpha mask and blend; bad files in one line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from library_data import multi_material_glb
from PIL import Image

moderngl = pytest.importorskip("moderngl")
pytestmark = pytest.mark.usefixtures("egl")  # conftest: skip without headless OpenGL 4.3

SIZE = (240, 120)
CROP = (48, 40)
ROOT = Path(__file__).resolve().parents[1]


def translate(x: float, y: float, scale: float = 1.0) -> np.ndarray:
    return np.array([[scale, 0, 0, x], [0, scale, 0, y], [0, 0, scale, 0], [0, 0, 0, 1.0]])


PLACES = {"stone": translate(-1.5, 0.0), "floor": translate(0.0, 0.0), "pebbles": translate(1.5, 0.25, 0.5)}
ORIGINS = {"pebbles": (600, 640)}


def build(path: Path, data_dir: Path, places: dict = PLACES) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sets = {"stone": data_dir / "rocks", "floor": data_dir / "tiles", "pebbles": data_dir / "rocks"}
    return multi_material_glb(path, sets, CROP, transforms=places, origins=ORIGINS)


def base_mean(data_dir: Path, name: str) -> np.ndarray:
    folder = {"stone": "rocks", "floor": "tiles", "pebbles": "rocks"}[name]
    x, y = ORIGINS.get(name, (256, 256))
    with Image.open(data_dir / folder / "basecolor.png") as im:
        return np.asarray(im.convert("RGB").crop((x, y, x + CROP[0], y + CROP[1])), np.float64).mean(axis=(0, 1))


def open_host(path: Path, **compress):
    from viewer.headless import Headless

    host = Headless(SIZE)
    host.viewer.open_scene(path, **compress)
    host.viewer.orbit.yaw, host.viewer.orbit.pitch = 0.0, 0.0  # looking down -z at the quads
    host.viewer.state.view = "basecolor"
    host.wait()
    return host


def pixel_of(host, point) -> tuple[int, int]:
    """Image (column, row) of a world point."""
    v = host.viewer
    clip = np.append(np.asarray(point, np.float64), 1.0) @ v.renderer._view_proj(SIZE, v.camera, None)
    ndc = clip[:3] / clip[3]
    return int((ndc[0] + 1) / 2 * SIZE[0]), int((1 - ndc[1]) / 2 * SIZE[1])


def centre(name: str, places: dict = PLACES) -> np.ndarray:
    return (places[name] @ np.array([0.5, 0.5, 0.0, 1.0]))[:3]


def quad_mean(host, image: np.ndarray, name: str, places: dict = PLACES) -> np.ndarray:
    """Mean colour over the pixels inside a quad's projection (1 pixel in from its edges): the whole crop's mean."""
    (x0, y1), (x1, y0) = (pixel_of(host, (places[name] @ np.array([u, u, 0.0, 1.0]))[:3]) for u in (0.0, 1.0))
    return image[y0 + 1 : y1 - 1, x0 + 1 : x1 - 1, :3].reshape(-1, 3).astype(np.float64).mean(axis=0)


def region(image: np.ndarray, xy: tuple[int, int], r: int = 3) -> np.ndarray:
    x, y = xy
    return image[y - r : y + r + 1, x - r : x + r + 1, :3].reshape(-1, 3).astype(np.float64).mean(axis=0)


@pytest.fixture(scope="module")
def scene_glb(data_dir, tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("gltf") / "props" / "props.glb", data_dir)


@pytest.fixture(scope="module")
def host(scene_glb):
    host = open_host(scene_glb)
    yield host
    host.release()


def test_each_material_shows_its_own_base_colour_where_its_node_puts_it(host, data_dir):
    data = host.viewer.gltf.data
    assert len(data.primitives) == 3
    assert sorted(f.name for f in data.materials.values()) == ["floor", "pebbles", "stone"]
    image = host.frame(panel=False)
    colours = {}
    for prim in data.primitives:
        name = data.materials[prim.material].name
        colours[name] = quad_mean(host, image, name)
        # base colour as stored (sRGB): over the quad, the crop's mean (filtering keeps it) within 4 levels
        assert np.abs(colours[name] - base_mean(data_dir, name)).max() < 4, (name, colours[name])
    assert np.abs(colours["stone"] - colours["floor"]).max() > 40  # distinct materials, distinct colours
    background = region(image, (SIZE[0] // 2, 5))
    assert np.abs(background - np.array(host.viewer.state.background) * 255).max() < 2


def test_a_node_transform_moves_its_mesh(data_dir, tmp_path, host):
    moved = {**PLACES, "pebbles": translate(1.5, -0.9, 0.5)}
    other = open_host(build(tmp_path / "moved.glb", data_dir, moved))
    try:
        other.viewer.orbit = host.viewer.orbit  # the same camera: only the node differs
        before, after = host.frame(panel=False), other.frame(panel=False)
    finally:
        other.release()
    pebbles = base_mean(data_dir, "pebbles")
    old, new = pixel_of(host, centre("pebbles")), pixel_of(host, centre("pebbles", moved))
    assert new[1] > old[1] + 10  # lower in the image
    assert np.abs(quad_mean(other, after, "pebbles", moved) - pebbles).max() < 4
    assert np.abs(quad_mean(host, before, "pebbles") - pebbles).max() < 4
    assert np.abs(region(after, old) - np.array(host.viewer.state.background) * 255).max() < 2  # gone from there


def test_one_draw_per_primitive_plus_the_prepass(host):
    renderer = host.viewer.renderer
    host.frame(panel=False)
    assert host.viewer.gltf.draw.draws == len(host.viewer.gltf.data.primitives) + 1 == 4
    renderer.depth_prepass = False
    try:
        host.frame(panel=False)
        assert host.viewer.gltf.draw.draws == 3
    finally:
        renderer.depth_prepass = True


def test_clicking_a_mesh_selects_its_material(host):
    v = host.viewer
    host.frame(panel=False)
    x, y = pixel_of(host, centre("floor"))
    assert v.gltf.pick(x, y) is not None and v.scene.material.name == "floor"
    x, y = pixel_of(host, centre("stone"))
    v.gltf.pick(x, y)
    assert v.scene.material.name == "stone" and v.gltf.data.materials[v.gltf.selected].name == "stone"
    assert v.gltf.pick(SIZE[0] // 2, 3) is None and v.scene.material.name == "stone"  # background: unchanged


def test_a_click_in_the_viewer_selects_and_the_panel_shows_the_scene(host):
    from imgui_bundle import imgui

    v = host.viewer
    host.frame(panel=False)
    io = imgui.get_io()
    io.add_mouse_pos_event(*pixel_of(host, centre("pebbles")))
    io.add_mouse_button_event(0, True)
    host.frame(panel=False)
    io.add_mouse_button_event(0, False)
    host.frame(panel=False)
    assert v.scene.material.name == "pebbles"
    with_panel = host.frame(panel=True)  # the glTF scene section: materials, bytes per mode
    assert with_panel.shape == (SIZE[1], SIZE[0], 3)


def test_neural_from_a_library_folder_or_compressed_in_the_background(data_dir, tmp_path, small_ngtc, monkeypatch):
    from models.astc import material_fingerprint
    from models.material import load_material

    monkeypatch.setenv("NGTC_CACHE", str(tmp_path / "cache"))
    path = build(tmp_path / "scene" / "props.glb", data_dir)
    library = tmp_path / "scene" / "props_ngtc"  # an `ngtc compress` output folder beside the scene
    library.mkdir()
    entries = []
    for index in (0, 1):  # two materials from the library; the third is compressed in the background
        fingerprint = material_fingerprint(load_material(f"{path}#materials[{index}]"))
        (library / f"m{index}.ngtc").write_bytes(small_ngtc)
        entries.append({"name": f"m{index}", "file": f"m{index}.ngtc", "status": "ok", "fingerprint": fingerprint})
    (library / "library.json").write_text(json.dumps({"materials": entries}))
    host = open_host(path, compress_steps=10, compress_batch=1024)
    try:
        v = host.viewer
        v.state.mode_a = "neural"
        host.wait()
        scenes = v.gltf.materials.scenes
        assert [scenes[i].ngtc_path.parent for i in (0, 1)] == [library, library]
        assert scenes[2].ngtc_path.parent == tmp_path / "cache" / "scenes"  # compressed, cached
        assert all(v.gltf.materials.set_for(i, "neural") is scenes[i].sets["neural"] for i in scenes)
        total, loaded = v.gltf.materials.gpu_bytes("neural")
        assert loaded == 3 and total == sum(s.sets["neural"].gpu_bytes for s in scenes.values())
        reference, _ = v.gltf.materials.gpu_bytes("reference")
        assert reference == sum(s.sets["reference"].gpu_bytes for s in scenes.values()) > 0
        host.frame(panel=False)
        assert v.gltf.draw.draws == 4
    finally:
        host.release()


def alpha_glb(path: Path) -> Path:
    """Untextured quads (factors alone): opaque blue at z=0, a masked one (alpha 0.3 < cutoff) and two blended ones
    in front, the nearer red listed before the farther green, so only back-to-front sorting draws green first."""
    import trimesh

    scene = trimesh.Scene()
    quads = [("blue", (0, 0, 1, 1), "OPAQUE", 0.0, (0, 0, 1)), ("mask", (1, 1, 1, 0.3), "MASK", 0.1, (1, 1, 1)),
             ("red", (0, 0, 0, 0.5), "BLEND", 0.6, (1, 0, 0)), ("green", (0, 0, 0, 0.5), "BLEND", 0.3, (0, 1, 0))]
    for name, factor, mode, z, emissive in quads:
        material = trimesh.visual.material.PBRMaterial(name=name, baseColorFactor=factor, alphaMode=mode,
                                                       emissiveFactor=emissive, metallicFactor=0.0)
        x0 = 0.5 if name == "mask" else 0.0
        quad = trimesh.Trimesh(vertices=[[x0, 0, z], [1, 0, z], [1, 1, z], [x0, 1, z]], faces=[[0, 1, 2], [0, 2, 3]],
                               process=False)
        quad.visual = trimesh.visual.TextureVisuals(uv=[[0, 0], [1, 0], [1, 1], [0, 1]], material=material)
        scene.add_geometry(quad, geom_name=name)
    path.write_bytes(scene.export(file_type="glb"))
    return path


def test_alpha_mask_and_blend_back_to_front(tmp_path):
    host = open_host(alpha_glb(tmp_path / "alpha.glb"))
    try:
        v = host.viewer
        modes = {f.name: f.alpha_mode for f in v.gltf.data.materials.values()}
        assert modes == {"blue": "OPAQUE", "mask": "MASK", "red": "BLEND", "green": "BLEND"}
        assert [p.alpha_mode for p in v.gltf.data.primitives] == ["OPAQUE", "MASK", "BLEND", "BLEND"]
        s = v.state
        s.view, s.ibl, s.tonemap, s.light_intensity = "shaded", False, "none", 0.0
        s.sky = s.ground = (0.0, 0.0, 0.0)
        image = host.frame(panel=False).astype(np.float64)
        left, right = image[pixel_of(host, (0.25, 0.5, 0.7))[::-1]], image[pixel_of(host, (0.75, 0.5, 0.7))[::-1]]
        # red over green over blue, each blend half: red dominates; the masked quad (right half) is cut out
        assert left[0] > left[1] > 40 and left[2] > 40, left
        assert np.abs(left - right).max() < 3, (left, right)
        assert v.gltf.draw.draws == 5
    finally:
        host.release()


def test_what_opens_as_a_scene(scene_glb, data_dir, tmp_path):
    from viewer.gltf_scene import is_scene

    single = multi_material_glb(tmp_path / "one.glb", {"stone": data_dir / "rocks"})
    assert is_scene(scene_glb) and not is_scene(single) and not is_scene(data_dir / "rocks")


def test_bad_scenes_fail_in_one_line(tmp_path, data_dir):
    import trimesh

    from viewer.errors import ViewerError
    from viewer.gltf_scene import load_gltf_scene

    bare = trimesh.creation.box()
    bare.export(tmp_path / "bare.glb")  # no material
    no_uv = multi_material_glb(tmp_path / "nouv.glb", {"a": data_dir / "rocks", "b": data_dir / "tiles"})
    no_uv.write_bytes(no_uv.read_bytes().replace(b'"TEXCOORD_0"', b'"TEXCOORD_7"'))  # same length: no UVs
    (tmp_path / "broken.glb").write_bytes(b"glTF\x02\x00\x00\x00\xff\xff\x00\x00garbage")
    for name, words in (("bare.glb", "no materials"), ("nouv.glb", "texture coordinates"),
                        ("broken.glb", "truncated"), ("none.glb", "not a .glb")):
        with pytest.raises(ViewerError) as err:
            load_gltf_scene(tmp_path / name)
        assert words in str(err.value) and "\n" not in str(err.value), str(err.value)
    shutil.copy(tmp_path / "broken.glb", tmp_path / "cli.glb")
    run = subprocess.run([sys.executable, "-m", "viewer.cli", "render", str(tmp_path / "cli.glb"), "--scene", "-o",
                          str(tmp_path / "x.png")], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1, run.stderr
