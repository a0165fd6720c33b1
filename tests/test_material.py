"""Tests of the one material-loading path (models/material.py): real data sets and tiny generated maps."""

from __future__ import annotations

import base64
import json
import struct
from io import BytesIO
from pathlib import Path

import msgspec
import numpy as np
import pytest
from PIL import Image

from models.layout import layout_to_builtins
from models.material import (
    MapInfo,
    Material,
    MaterialError,
    load_material,
    reconstruct_normal_z,
    save_maps,
)

ROOT = Path(__file__).parents[1]
DATA = ROOT / ".cache/data"
GLB = DATA / "BoomBoxWithAxes.mtlx.glb"


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real test data missing: {path} (CI fetches it with scripts/fetch_data.sh)")
    return path


@pytest.fixture(scope="module")
def rocks() -> Material:
    return load_material(_require(DATA / "rocks"))


@pytest.fixture(scope="module")
def boombox() -> Material:
    return load_material(_require(GLB))


def _png_u8(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def _write(path: Path, array: np.ndarray) -> Path:
    Image.fromarray(array).save(path)
    return path


def _rng_u8(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _glb_image(path: Path, index: int) -> np.ndarray:
    """Decode an embedded GLB image independently of the loader (JSON chunk -> data: URI or bufferView)."""
    data = path.read_bytes()
    json_len = struct.unpack_from("<I", data, 12)[0]
    doc = json.loads(data[20 : 20 + json_len])
    image = doc["images"][index]
    if "uri" in image:
        raw = base64.b64decode(image["uri"].partition(",")[2])
    else:
        view = doc["bufferViews"][image["bufferView"]]
        bin_start = 20 + json_len + 8 + view.get("byteOffset", 0)
        raw = data[bin_start : bin_start + view["byteLength"]]
    return np.asarray(Image.open(BytesIO(raw)))


# ------------------------------------------------------------------------------------------- real data


def test_rocks_layout(rocks: Material) -> None:
    varying = [(m.name, m.channels, m.offset) for m in rocks.maps if m.constant is None]
    assert varying == [("basecolor", 3, 0), ("normal", 2, 3), ("roughness", 1, 5), ("height", 1, 6)]
    constants = {m.name: m.constant for m in rocks.maps if m.constant is not None}
    assert set(constants) == {"metallic", "opacity", "specular"}
    assert constants["metallic"] == (0.0,) and len(constants["specular"]) == 3
    assert rocks.texels.shape == (1024, 1024, 7) and rocks.texels.dtype == np.float32
    info = {m.name: m for m in rocks.maps}
    assert info["height"].bit_depth == 16 and info["basecolor"].bit_depth == 8
    assert info["basecolor"].source.endswith("basecolor.png")  # preferred over diffuse.png
    assert info["basecolor"].color_space == "srgb" and info["normal"].color_space == "normal"
    # the layout survives JSON (reports, .ngtc metadata) as the same typed, validated entries
    text = json.dumps(layout_to_builtins(rocks.layout()))
    assert msgspec.json.decode(text, type=list[MapInfo], strict=True) == rocks.layout()
    # and the JSON holds every map, constants included (a decoder restores those from it): name, channels,
    # offset and constant, against rocks' files (metallic 0, opacity 255, specular 59 of 255 everywhere)
    stored = [(d["name"], d["channels"], d["offset"], d["constant"]) for d in json.loads(text)]
    assert [row[:3] for row in stored] == [("basecolor", 3, 0), ("normal", 2, 3), ("roughness", 1, 5),
                                           ("metallic", 1, -1), ("height", 1, 6), ("opacity", 1, -1),
                                           ("specular", 3, -1)]
    constants = {name: c for name, _, _, c in stored if c is not None}
    expected = {"metallic": [0.0], "opacity": [1.0], "specular": [59 / 255] * 3}
    assert constants.keys() == expected.keys()
    assert all(np.allclose(constants[k], v, atol=1e-6) for k, v in expected.items()), constants


def test_rocks_values_match_png_bytes(rocks: Material) -> None:
    folder = DATA / "rocks"
    base = _png_u8(folder / "basecolor.png")
    np.testing.assert_array_equal(rocks.texels[..., 0], base[..., 0].astype(np.float32) / 255)
    normal = _png_u8(folder / "normal.png")
    xy = rocks.texels[..., rocks.map_slice("normal")]
    np.testing.assert_array_equal(xy, normal[..., :2] / np.float32(255))
    height = _png_u8(folder / "height.png")
    assert height.dtype == np.uint16
    np.testing.assert_array_equal(rocks.texels[..., 6], height.astype(np.float32) / 65535)


def test_assets_tiles_loads() -> None:
    tiles = load_material(_require(ROOT / "assets/tiles"))
    varying = [m.name for m in tiles.maps if m.constant is None]
    assert varying == ["basecolor", "normal", "roughness", "height"]
    assert tiles.channels == 7 and tiles.mip_count() == 11


def test_glb_maps_and_channels(boombox: Material) -> None:
    assert boombox.name == "M_BoomBox"
    assert [m.name for m in boombox.maps] == ["basecolor", "normal", "roughness", "metallic", "emissive"]
    assert boombox.texels.shape == (2048, 2048, 10)
    orm = _glb_image(GLB, 1).astype(np.float32) / 255
    np.testing.assert_array_equal(boombox.texels[..., boombox.map_slice("roughness")][..., 0], orm[..., 1])
    np.testing.assert_array_equal(boombox.texels[..., boombox.map_slice("metallic")][..., 0], orm[..., 2])
    assert boombox.map_info("metallic").source.endswith("BoomBoxWithAxes.mtlx.glb#images[1]")


def test_glb_subset_and_truncation(tmp_path: Path) -> None:
    only = load_material(_require(GLB), maps=["emissive"])
    assert only.map_names() == ["emissive"] and only.channels == 3
    cut = tmp_path / "cut.glb"
    cut.write_bytes(GLB.read_bytes()[:100_000])
    with pytest.raises(MaterialError, match=r"cut\.glb.*truncated"):
        load_material(cut)


# ------------------------------------------------------------------------------------------- naming


def test_alias_and_prefix_naming(tmp_path: Path) -> None:
    albedo = _write(tmp_path / "Brick_Albedo.jpg", _rng_u8((16, 16, 3)))
    normal = _write(tmp_path / "brick-NormalGL.png", _rng_u8((16, 16, 3), 1))
    _write(tmp_path / "brick_gloss.png", _rng_u8((16, 16), 2))
    _write(tmp_path / "brick_diffuse.png", _rng_u8((16, 16, 3), 3))  # loses to Albedo
    _write(tmp_path / "T_Brick_N.png", _rng_u8((16, 16, 3), 4))  # single letters are not guessed
    (tmp_path / "notes.txt").write_text("not a map")
    mat = load_material(tmp_path)
    assert mat.name == tmp_path.name
    assert mat.map_names() == ["basecolor", "normal", "roughness"]
    assert mat.map_info("basecolor").source == str(albedo) and mat.map_info("normal").source == str(normal)
    np.testing.assert_array_equal(mat.texels[..., :3], _png_u8(albedo) / np.float32(255))
    gloss = _rng_u8((16, 16), 2).astype(np.float32) / 255
    np.testing.assert_allclose(mat.texels[..., mat.map_slice("roughness")][..., 0], 1 - gloss, atol=1e-6)


def test_directx_normal_flips_y_and_gray_rgb(tmp_path: Path) -> None:
    normal = _rng_u8((8, 8, 3))
    _write(tmp_path / "wall_NormalDX.png", normal)
    rough = _rng_u8((8, 8, 3), 1)  # channels differ: refused unless a channel is chosen; luminance when asked
    _write(tmp_path / "wall_Roughness.png", rough)
    mat = load_material(tmp_path, channels={"roughness": "luminance"})
    xy = mat.texels[..., mat.map_slice("normal")]
    np.testing.assert_allclose(xy[..., 1], 1 - normal[..., 1] / 255, atol=1e-6)
    luma = rough.astype(np.float32) / 255 @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    np.testing.assert_allclose(mat.texels[..., 2], luma, atol=1e-6)


def test_different_sizes_resampled(tmp_path: Path) -> None:
    _write(tmp_path / "basecolor.png", _rng_u8((16, 32, 3)))
    _write(tmp_path / "roughness.png", _rng_u8((8, 16)))
    mat = load_material(tmp_path)
    assert mat.texels.shape == (16, 32, 4)
    assert 0 <= mat.texels.min() and mat.texels.max() <= 1
    small = load_material(tmp_path, size=(8, 4))
    assert small.texels.shape == (4, 8, 4)
    # The resampling itself (README: box when shrinking, Lanczos otherwise): the largest map is kept as is, the
    # 8x16 roughness is enlarged 2x by Lanczos (equal to Pillow's to 0.0 measured; nearest would be 0.39 off,
    # bilinear 0.21), and shrinking to 8x4 averages exactly 4x4 (base color) and 2x2 (roughness) blocks.
    base, rough = _rng_u8((16, 32, 3)) / np.float32(255), _rng_u8((8, 16)) / np.float32(255)
    np.testing.assert_array_equal(mat.texels[..., :3], base)
    lanczos = Image.fromarray(rough).resize((32, 16), Image.Resampling.LANCZOS)
    np.testing.assert_allclose(mat.texels[..., 3], np.clip(np.asarray(lanczos), 0, 1), atol=1e-6)
    np.testing.assert_allclose(small.texels[..., :3], base.reshape(4, 4, 8, 4, 3).mean(axis=(1, 3)), atol=1e-6)
    np.testing.assert_allclose(small.texels[..., 3], rough.reshape(4, 2, 8, 2).mean(axis=(1, 3)), atol=1e-6)


# ------------------------------------------------------------------------------------------- mips


def test_npot_mip_chain_sizes(tmp_path: Path) -> None:
    _write(tmp_path / "basecolor.png", _rng_u8((20, 48, 3)))
    _write(tmp_path / "height.png", _rng_u8((20, 48), 1).astype(np.uint16) * 257)
    mat = load_material(tmp_path)
    assert mat.map_info("height").bit_depth == 16
    chain = mat.mip_chain()
    assert mat.mip_count() == len(chain) == 6
    assert [c.shape[:2] for c in chain] == [(20, 48), (10, 24), (5, 12), (2, 6), (1, 3), (1, 1)]
    assert chain is mat.mip_chain()  # cached
    # Area filtering preserves the mean (up to the per-level quantization).
    np.testing.assert_allclose(chain[-1][0, 0], mat.texels.mean(axis=(0, 1)), atol=3 / 255)


def _material(texels: np.ndarray, maps: list[MapInfo]) -> Material:
    return Material("synthetic", maps, texels.astype(np.float32))


def test_mip_of_gradient_is_2x2_average() -> None:
    x = np.arange(16, dtype=np.float32) * 2 / 255  # pairs average to exact 8-bit values
    y = np.arange(8, dtype=np.float32) * 4 / 255
    texels = (x[None, :] + y[:, None])[..., None]
    mat = _material(texels, [MapInfo("roughness", 1, "linear", "synthetic", 8, 0)])
    expected = mat.texels.reshape(4, 2, 8, 2, 1).mean(axis=(1, 3))
    np.testing.assert_allclose(mat.mip_chain()[1], np.round(expected * 255) / 255, atol=1e-6)
    np.testing.assert_allclose(mat.mip_chain()[1], expected, atol=1e-6)


def test_normal_mips_stay_unit_length() -> None:
    rng = np.random.default_rng(0)
    xyz = rng.normal(size=(16, 16, 3)) + [0, 0, 2.5]
    xyz[..., 2] = np.abs(xyz[..., 2])  # stored normals point outward: Z >= 0 is what XY-only storage assumes
    xyz /= np.linalg.norm(xyz, axis=-1, keepdims=True)
    mat = _material(xyz[..., :2] * 0.5 + 0.5, [MapInfo("normal", 2, "normal", "synthetic", 16, 0)])
    for level in mat.mip_chain()[1:]:
        n = level * 2 - 1
        assert np.all(n[..., 0] ** 2 + n[..., 1] ** 2 <= 1 + 1e-4)
    avg = xyz.reshape(8, 2, 8, 2, 3).mean(axis=(1, 3))
    avg /= np.linalg.norm(avg, axis=-1, keepdims=True)
    np.testing.assert_allclose(mat.mip_chain()[1], avg[..., :2] * 0.5 + 0.5, atol=1e-4)


def test_reconstruct_normal_z() -> None:
    xy = np.array([[0.5, 0.5], [1.0, 0.5], [0.0, 0.5]], np.float32)
    np.testing.assert_allclose(reconstruct_normal_z(xy), [1.0, 0.5, 0.5], atol=1e-6)


def test_crop_and_layout(rocks: Material) -> None:
    crop = rocks.crop(10, 20, 48, 20)
    assert crop.texels.shape == (20, 48, 7) and crop.mip_count() == 6
    np.testing.assert_array_equal(crop.texels, rocks.texels[20:40, 10:58])
    assert crop.layout() == rocks.layout()
    with pytest.raises(KeyError):
        rocks.map_slice("metallic")  # constant: not in texels


# ------------------------------------------------------------------------------------------- glTF files


def test_gltf_external_data_uri_and_buffer_view_images(tmp_path: Path) -> None:
    (tmp_path / "tex").mkdir()
    base = _rng_u8((8, 8, 4))
    base[..., 3] = 255
    base[0, 0, 3] = 10  # a non-opaque alpha becomes the opacity map
    _write(tmp_path / "tex/base color.png", base)
    orm, normal = BytesIO(), BytesIO()
    Image.fromarray(_rng_u8((8, 8, 3), 1)).save(orm, format="PNG")
    Image.fromarray(_rng_u8((8, 8, 3), 2)).save(normal, format="PNG")
    (tmp_path / "scene.bin").write_bytes(b"\0" * 4 + normal.getvalue())
    doc = {
        "asset": {"version": "2.0"},
        "materials": [{"name": "Mat", "pbrMetallicRoughness": {
            "baseColorTexture": {"index": 0}, "metallicRoughnessTexture": {"index": 1}},
            "normalTexture": {"index": 2}}],
        "textures": [{"source": 0}, {"source": 1}, {"source": 2}],
        "images": [{"uri": "tex/base%20color.png"},
                   {"uri": "data:image/png;base64," + base64.b64encode(orm.getvalue()).decode()},
                   {"bufferView": 0, "mimeType": "image/png"}],
        "buffers": [{"uri": "scene.bin", "byteLength": 4 + len(normal.getvalue())}],
        "bufferViews": [{"buffer": 0, "byteOffset": 4, "byteLength": len(normal.getvalue())}],
    }
    (tmp_path / "scene.gltf").write_text(json.dumps(doc))
    mat = load_material(tmp_path / "scene.gltf")
    assert mat.map_names() == ["basecolor", "normal", "roughness", "metallic", "opacity"]
    assert mat.map_info("basecolor").source == str(tmp_path / "tex/base color.png")
    opacity = mat.texels[..., mat.map_slice("opacity")][..., 0]
    np.testing.assert_array_equal(opacity, base[..., 3] / np.float32(255))
    np.testing.assert_array_equal(mat.texels[..., 3:5], _rng_u8((8, 8, 3), 2)[..., :2] / np.float32(255))


# ------------------------------------------------------------------------------------------- errors


def test_errors_name_the_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(MaterialError, match="empty.*no recognizable"):
        load_material(empty)
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "basecolor.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    with pytest.raises(MaterialError, match=r"basecolor\.png: cannot read image") as info:
        load_material(corrupt)
    assert "\n" not in str(info.value)
    with pytest.raises(MaterialError, match="nowhere"):
        load_material(tmp_path / "nowhere")
    with pytest.raises(MaterialError, match="empty.*bogus"):
        load_material(empty, maps=["basecolor", "bogus"])
    (tmp_path / "plain.gltf").write_text('{"asset": {"version": "2.0"}}')
    with pytest.raises(MaterialError, match=r"plain\.gltf.*no material"):
        load_material(tmp_path / "plain.gltf")
    flat = tmp_path / "flat"
    flat.mkdir()
    _write(flat / "metallic.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(MaterialError, match="flat.*constant"):
        load_material(flat)


# ------------------------------------------------------------------------------------------- saving


def test_save_maps_round_trip(rocks: Material, tmp_path: Path) -> None:
    crop = rocks.crop(100, 200, 64, 32)
    written = save_maps(crop.texels, crop.maps, tmp_path / "out", suffix="")
    assert sorted(p.name for p in written) == sorted(f"{m.name}.png" for m in crop.maps)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in written)  # no temps
    assert Image.open(tmp_path / "out/height.png").mode == "I;16"
    assert Image.open(tmp_path / "out/normal.png").mode == "RGB"
    again = load_material(tmp_path / "out")
    assert [(m.name, m.channels, m.bit_depth) for m in again.maps] == [
        (m.name, m.channels, m.bit_depth) for m in crop.maps
    ]
    np.testing.assert_array_equal(again.texels, crop.texels)  # 8-bit and 16-bit maps exact
    assert again.map_info("metallic").constant == (0.0,)


def test_save_maps_suffix_and_unwritable(tmp_path: Path) -> None:
    texels = np.full((4, 4, 1), 0.5, np.float32)
    maps = [MapInfo("roughness", 1, "linear", "x", 8, 0)]
    assert save_maps(texels, maps, tmp_path, suffix="_dec") == [tmp_path / "roughness_dec.png"]
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(MaterialError, match="file"):
        save_maps(texels, maps, blocker / "sub")
