"""Scalar maps (roughness, gloss, metallic, AO, height, opacity, specular) read the way engines read them
(issue 15): R when the other channels are constant or equal to R, a refusal when channels carry different data,
an explicit channel when asked, glTF's packed metallicRoughness unchanged. Built from the bundled tiles maps."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import models.material as material
from models.material import MaterialError, load_material

ROOT = Path(__file__).resolve().parents[1]
TILES = ROOT / "assets/tiles"
BOX = (300, 300, 364, 364)  # a 64x64 crop with real detail in every map


def tile(name: str) -> np.ndarray:
    """A crop of a bundled map as stored: uint8 (H, W[, 3]) or uint16 (height)."""
    return np.asarray(Image.open(TILES / f"{name}.png").crop(BOX))


def save(path: Path, array: np.ndarray, **kw) -> Path:
    Image.fromarray(array).save(path, **kw)
    return path


def base_folder(path: Path) -> Path:
    path.mkdir()
    save(path / "x_basecolor.png", tile("basecolor"))
    save(path / "x_normal.png", tile("normal"))
    return path


def channel(mat, name: str) -> np.ndarray:
    return mat.texels[..., mat.map_slice(name)][..., 0]


def rgb(r: np.ndarray, g: np.ndarray | int = 0, b: np.ndarray | int = 0) -> np.ndarray:
    return np.stack(np.broadcast_arrays(r, np.uint8(g), np.uint8(b)), axis=-1).astype(np.uint8)


def packed(path: Path) -> Path:
    """An ORM-like packed file: three different real maps in R, G, B."""
    height8 = (tile("height") >> 8).astype(np.uint8)
    return save(path, rgb(height8, tile("roughness"), tile("basecolor")[..., 0]))


# ------------------------------------------------------------------------------------------- the defaults


def test_rgb_gloss_with_data_in_r_reads_one_minus_r(tmp_path: Path) -> None:
    """The issue's case: gloss in R of an RGB PNG, G = B = 0: roughness is 1 - R (was ~1 - 0.21 R)."""
    folder = base_folder(tmp_path / "m")
    gloss = 255 - tile("roughness")
    save(folder / "x_gloss.png", rgb(gloss))
    mat = load_material(folder)
    np.testing.assert_allclose(channel(mat, "roughness"), 1 - gloss / np.float32(255), atol=1e-6)
    info = mat.map_info("roughness")
    assert (info.source_channel, info.inverted) == ("R", True)
    assert info.describe_source() == f"{folder / 'x_gloss.png'}, R, inverted (gloss)"


def test_rgb_roughness_with_equal_channels_reads_r(tmp_path: Path) -> None:
    folder = base_folder(tmp_path / "m")
    rough = tile("roughness")
    save(folder / "x_roughness.png", rgb(rough, rough, rough))
    mat = load_material(folder)
    np.testing.assert_array_equal(channel(mat, "roughness"), rough / np.float32(255))
    assert mat.map_info("roughness").source_channel == "R"
    assert mat.map_info("roughness").inverted is False


def test_gray_image_records_no_channel(tmp_path: Path) -> None:
    folder = base_folder(tmp_path / "m")
    save(folder / "x_roughness.png", tile("roughness"))
    mat = load_material(folder)
    np.testing.assert_array_equal(channel(mat, "roughness"), tile("roughness") / np.float32(255))
    assert mat.map_info("roughness").source_channel is None
    assert mat.map_info("roughness").describe_source() == str(folder / "x_roughness.png")


def test_lossy_jpeg_and_webp_tolerate_codec_noise(tmp_path: Path) -> None:
    """JPEG/WebP add chroma noise to empty G and B (measured std up to ~3.9/255 at JPEG q30 on these maps):
    still read as R. A grey map saved as RGB JPEG keeps R == G == B exactly."""
    gloss = 255 - tile("roughness")
    for ext, kw in ((".jpg", {"quality": 30}), (".jpg", {"quality": 90}), (".webp", {"quality": 50})):
        folder = base_folder(tmp_path / f"m{ext}{kw['quality']}")
        file = save(folder / f"x_gloss{ext}", rgb(gloss), **kw)
        decoded = np.asarray(Image.open(file).convert("RGB"))
        mat = load_material(folder)
        np.testing.assert_allclose(channel(mat, "roughness"), 1 - decoded[..., 0] / np.float32(255), atol=1e-6)
        assert mat.map_info("roughness").source_channel == "R"
    folder = base_folder(tmp_path / "gray_jpeg")
    rough = tile("roughness")
    file = save(folder / "x_roughness.jpg", rgb(rough, rough, rough), quality=75)
    assert np.asarray(Image.open(file)).ndim == 3
    assert load_material(folder).map_info("roughness").source_channel == "R"


def test_differing_channels_are_refused_in_one_line(tmp_path: Path) -> None:
    folder = base_folder(tmp_path / "m")
    file = packed(folder / "x_roughness.png")
    with pytest.raises(MaterialError) as err:
        load_material(folder)
    msg = str(err.value)
    assert "\n" not in msg and str(file) in msg
    assert "R, G, B" in msg and "--channel roughness=" in msg and "channels.json" in msg


def test_differing_channels_name_only_those_that_differ(tmp_path: Path) -> None:
    """G carries data, B is constant: the message names R and G, not B. Same rule for every scalar map."""
    for slot in ("metallic", "ao", "height", "opacity"):
        folder = base_folder(tmp_path / slot)
        save(folder / f"x_{slot}.png", rgb(tile("roughness"), 255 - tile("roughness"), 7))
        with pytest.raises(MaterialError, match=rf"x_{slot}\.png: channels R, G carry different data"):
            load_material(folder)


def test_alpha_with_different_data_is_refused(tmp_path: Path) -> None:
    folder = base_folder(tmp_path / "m")
    rough = tile("roughness")
    save(folder / "x_metallic.png", np.dstack([rough, rough, rough, 255 - rough]))
    with pytest.raises(MaterialError, match=r"x_metallic\.png: channels R, A carry"):
        load_material(folder)
    opaque = np.dstack([rough, rough, rough, np.full_like(rough, 255)])
    save(folder / "x_metallic.png", opaque)
    assert load_material(folder).map_info("metallic").source_channel == "R"


def test_specular_colour_stays_rgb(tmp_path: Path) -> None:
    folder = base_folder(tmp_path / "m")
    spec = tile("basecolor")  # a real colour image as a coloured specular map
    save(folder / "x_specular.png", spec)
    mat = load_material(folder)
    assert mat.map_info("specular").channels == 3 and mat.map_info("specular").source_channel is None
    np.testing.assert_array_equal(mat.texels[..., mat.map_slice("specular")], spec / np.float32(255))


# ------------------------------------------------------------------------------------------- explicit choices


def test_explicit_channel_is_honoured(tmp_path: Path) -> None:
    folder = base_folder(tmp_path / "m")
    file = packed(folder / "x_roughness.png")
    src = np.asarray(Image.open(file)).astype(np.float32) / 255
    for choice, expected in (("R", src[..., 0]), ("G", src[..., 1]), ("B", src[..., 2]),
                             ("luminance", src @ np.array([0.2126, 0.7152, 0.0722], np.float32))):
        mat = load_material(folder, channels={"roughness": choice})
        np.testing.assert_allclose(channel(mat, "roughness"), expected, atol=1e-6)
        assert mat.map_info("roughness").source_channel == choice
    alpha = save(folder / "x_roughness.png", np.dstack([tile("basecolor"), tile("roughness")]))
    mat = load_material(folder, channels={"roughness": "A"})
    np.testing.assert_array_equal(channel(mat, "roughness"), np.asarray(Image.open(alpha))[..., 3] / np.float32(255))


def test_explicit_channel_on_gloss_is_inverted_and_specular_can_be_scalar(tmp_path: Path) -> None:
    folder = base_folder(tmp_path / "m")
    file = packed(folder / "x_gloss.png")
    save(folder / "x_specular.png", tile("basecolor"))
    mat = load_material(folder, channels={"roughness": "G", "specular": "B"})
    src = np.asarray(Image.open(file)).astype(np.float32) / 255
    np.testing.assert_allclose(channel(mat, "roughness"), 1 - src[..., 1], atol=1e-6)
    assert mat.map_info("roughness").describe_source().endswith("x_gloss.png, G, inverted (gloss)")
    assert mat.map_info("specular").channels == 1
    np.testing.assert_array_equal(channel(mat, "specular"), tile("basecolor")[..., 2] / np.float32(255))


def test_folder_channels_json_applies_to_every_command(tmp_path: Path) -> None:
    """channels.json in the folder: the per-folder choice; an explicit choice for the same map wins."""
    folder = base_folder(tmp_path / "m")
    file = packed(folder / "x_roughness.png")
    (folder / "channels.json").write_text(json.dumps({"roughness": "B"}))
    src = np.asarray(Image.open(file)).astype(np.float32) / 255
    np.testing.assert_allclose(channel(load_material(folder), "roughness"), src[..., 2], atol=1e-6)
    mat = load_material(folder, channels={"roughness": "G"})
    np.testing.assert_allclose(channel(mat, "roughness"), src[..., 1], atol=1e-6)
    (folder / "channels.json").write_text(json.dumps({"roughness": "X"}))
    with pytest.raises(MaterialError, match=r"channels\.json.*roughness.*'X'"):
        load_material(folder)


def test_bad_channel_choices_are_refused(tmp_path: Path) -> None:
    folder = base_folder(tmp_path / "m")
    save(folder / "x_roughness.png", tile("roughness"))
    with pytest.raises(MaterialError, match="'Q'"):
        load_material(folder, channels={"roughness": "Q"})
    with pytest.raises(MaterialError, match="basecolor"):
        load_material(folder, channels={"basecolor": "R"})  # colour maps keep their channels
    with pytest.raises(MaterialError, match=r"x_roughness\.png.*no alpha"):
        load_material(folder, channels={"roughness": "A"})
    assert material.parse_channel_choices(["roughness=R", "metallic=b,ao=luminance"]) == {
        "roughness": "R", "metallic": "B", "ao": "luminance"}
    for bad in ("roughness", "roughness=", "bogus=R", "normal=R", "roughness=R,roughness=G"):
        with pytest.raises(MaterialError):
            material.parse_channel_choices([bad])


# ------------------------------------------------------------------------------------------- glTF


def _gltf_with_orm(folder: Path) -> tuple[Path, np.ndarray]:
    folder.mkdir()
    orm = rgb(np.full((64, 64), 255, np.uint8), tile("roughness"), (tile("height") >> 8).astype(np.uint8))
    save(folder / "orm.png", orm)
    buf = BytesIO()
    Image.fromarray(tile("basecolor")).save(buf, format="PNG")
    doc = {
        "asset": {"version": "2.0"},
        "materials": [{"name": "M", "pbrMetallicRoughness": {
            "baseColorTexture": {"index": 0}, "metallicRoughnessTexture": {"index": 1}},
            "occlusionTexture": {"index": 1}}],
        "textures": [{"source": 0}, {"source": 1}],
        "images": [{"uri": "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()},
                   {"uri": "orm.png"}],
    }
    (folder / "m.gltf").write_text(json.dumps(doc))
    return folder / "m.gltf", orm


def test_gltf_metallic_roughness_keeps_its_fixed_channels(tmp_path: Path) -> None:
    """Packed by the spec: roughness G, metallic B, occlusion R. Never refused, never luminance."""
    gltf, orm = _gltf_with_orm(tmp_path / "g")
    mat = load_material(gltf)
    np.testing.assert_array_equal(channel(mat, "roughness"), orm[..., 1] / np.float32(255))
    np.testing.assert_array_equal(channel(mat, "metallic"), orm[..., 2] / np.float32(255))
    assert mat.map_info("ao").constant == (1.0,)
    sources = {m.name: (m.source_channel, m.inverted) for m in mat.maps}
    assert sources["roughness"] == ("G", False) and sources["metallic"] == ("B", False)
    assert sources["ao"] == ("R", False) and sources["basecolor"] == (None, False)
    with pytest.raises(MaterialError, match=r"m\.gltf.*glTF"):
        load_material(gltf, channels={"roughness": "R"})


# ------------------------------------------------------------------------------------------- the CLI


def ngtc(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "viewer.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})


def test_cli_channel_option_and_summary(tmp_path: Path) -> None:
    """`--channel` reaches the loader; the refusal is one line, exit 2; the summary says what was read."""
    folder = base_folder(tmp_path / "m")
    packed(folder / "x_gloss.png")
    out = tmp_path / "m.ngtc"
    r = ngtc("compress", str(folder), "-o", str(out), "--steps", "2")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "x_gloss.png: channels R, G, B carry different data" in lines[0], r.stderr
    r = ngtc("compress", str(folder), "-o", str(out), "--steps", "2", "--channel", "roughness=G")
    assert r.returncode == 0, r.stderr
    assert "x_gloss.png, G, inverted (gloss)" in r.stdout
    r = ngtc("info", str(out))
    assert r.returncode == 0 and "x_gloss.png, G, inverted (gloss)" in r.stdout
    r = ngtc("compress", str(folder), "-o", str(out), "--channel", "roughness=Z")
    assert r.returncode == 2 and "roughness" in r.stderr and "Traceback" not in r.stderr
