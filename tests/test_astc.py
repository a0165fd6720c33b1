"""ASTC baseline: .astc files, rate accounting, packing, real encodes on small crops."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from models import astc
from models.astc import AstcError
from models.material import MapInfo, Material, load_material

DATA = Path(__file__).resolve().parents[1] / ".cache" / "data"
ROCKS = DATA / "rocks"
CROP = 128


def _map(name: str, channels: int, offset: int) -> MapInfo:
    space = "srgb" if name in ("basecolor", "emissive") else "normal" if name == "normal" else "linear"
    return MapInfo(name, channels, space, f"{name}.png", 8, offset, None if offset >= 0 else [0.0] * channels)


def _tiny_material(width: int = 20, height: int = 12) -> Material:
    """Hand-built stand-in: basecolor 3, normal 2, roughness 1, constant metallic, height 1."""
    rng = np.random.default_rng(0)
    maps = [
        _map("basecolor", 3, 0),
        _map("normal", 2, 3),
        _map("roughness", 1, 5),
        _map("metallic", 1, -1),
        _map("height", 1, 6),
    ]
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    smooth = 0.5 + 0.4 * np.sin(xx[..., None] / 3 + yy[..., None] / 5 + np.arange(7))
    texels = np.clip(smooth + 0.02 * rng.standard_normal((height, width, 7)), 0, 1).astype(np.float32)
    return Material("tiny", maps, texels)


@pytest.fixture(scope="module")
def rocks_crop() -> Material:
    if not ROCKS.is_dir():
        pytest.skip(f"{ROCKS} missing (run scripts/fetch_data.sh)")
    return load_material(ROCKS).crop(256, 256, CROP, CROP)


@pytest.fixture(scope="module")
def sweep(rocks_crop, tmp_path_factory) -> dict[str, astc.AstcResult]:
    """4x4, 6x6, 8x8, 12x12 of the rocks crop, encoded in one call (one process per block size)."""
    root = tmp_path_factory.mktemp("sweep")
    return astc.encode_sweep(rocks_crop, ["4x4", "6x6", "8x8", "12x12"], "medium", root)


# ------------------------------------------------------------------------------------------- files


@pytest.mark.parametrize(
    ("block", "size"),
    [((8, 8), (64, 64)), ((5, 4), (13, 7)), ((12, 12), (1, 1)), ((6, 6), (130, 65)), ((10, 8), (1000, 3))],
)
def test_header_round_trip(tmp_path, block, size):
    n = astc.block_count(*size, block)
    assert n == math.ceil(size[0] / block[0]) * math.ceil(size[1] / block[1])
    blocks = np.random.default_rng(1).integers(0, 256, n * 16, dtype=np.uint8).tobytes()
    path = tmp_path / "t.astc"
    astc.write_astc(path, blocks, block, size)
    raw = path.read_bytes()
    assert len(raw) == 16 + n * 16
    assert raw[:4] == bytes([0x13, 0xAB, 0xA1, 0x5C])
    assert tuple(raw[4:7]) == (block[0], block[1], 1)
    assert int.from_bytes(raw[7:10], "little") == size[0] and int.from_bytes(raw[10:13], "little") == size[1]
    assert int.from_bytes(raw[13:16], "little") == 1
    assert astc.read_astc(path) == (blocks, block, size)
    assert not [p for p in tmp_path.iterdir() if p.name != "t.astc"], "temp file left behind"


def test_write_rejects_wrong_block_count(tmp_path):
    with pytest.raises(AstcError, match=r"x\.astc: 1008 block bytes for 64x64 at 8x8, expected 1024"):
        astc.write_astc(tmp_path / "x.astc", b"\0" * 16 * 63, (8, 8), (64, 64))
    assert not (tmp_path / "x.astc").exists()


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda raw: raw[:10], "truncated .astc header"),
        (lambda raw: raw[:-1], "truncated"),
        (lambda raw: raw[:16], "truncated, 0 of"),
        (lambda raw: raw + b"\0", "trailing bytes"),
        (lambda raw: b"\x00\x00\x00\x00" + raw[4:], "bad magic"),
        (lambda raw: raw[:4] + bytes([7, 7, 1]) + raw[7:], "not a 2D ASTC block size"),
        (lambda raw: raw[:6] + bytes([4]) + raw[7:], "3D"),
    ],
)
def test_bad_files_raise_naming_the_file(tmp_path, mangle, message):
    good = tmp_path / "good.astc"
    astc.write_astc(good, bytes(16 * 4), (8, 8), (16, 16))
    bad = tmp_path / "broken_file.astc"
    bad.write_bytes(mangle(good.read_bytes()))
    with pytest.raises(AstcError, match=message) as exc:
        astc.read_astc(bad)
    text = str(exc.value)
    assert "broken_file.astc" in text and "\n" not in text


def test_missing_file_raises(tmp_path):
    with pytest.raises(AstcError, match="nothere.astc"):
        astc.read_astc(tmp_path / "nothere.astc")


# -------------------------------------------------------------------------------------------- rate


def test_rate_of_one_texture_is_exact(tmp_path):
    path = tmp_path / "a.astc"
    astc.write_astc(path, bytes(64 * 16), (8, 8), (64, 64))  # 64 blocks of 128 bits
    assert astc.astc_bits_per_texel([path], 64, 64) == 64 * 128 / (64 * 64) == 2.0
    assert astc.astc_bits_per_texel(path) == 2.0
    astc.write_astc(path, bytes(4 * 16), (12, 12), (13, 13))  # 2x2 blocks, padding included
    assert astc.astc_bits_per_texel([path]) == 4 * 128 / 169


def test_full_chain_rate_of_tiny_material(tmp_path):
    material = _tiny_material(20, 12)
    result = astc.encode_material(material, "8x8", "fast", tmp_path / "out")
    m = result.manifest
    # 20x12 -> 10x6 -> 5x3 -> 2x1 -> 1x1; at 8x8: 3*2, 2*1, 1, 1, 1 blocks per texture, 3 textures
    sizes = astc.mip_sizes(20, 12)
    assert sizes == [(20, 12), (10, 6), (5, 3), (2, 1), (1, 1)]
    blocks = 3 * (6 + 2 + 1 + 1 + 1)
    assert m["block_bytes"] == blocks * 16
    assert m["file_bytes"] == blocks * 16 + 3 * len(sizes) * 16
    expected = blocks * 128 / (20 * 12)
    assert result.bits_per_texel == expected == m["bits_per_texel"]
    assert astc.chain_bits_per_texel(20, 12, "8x8", 3) == expected
    files = sorted((tmp_path / "out").glob("*.astc"))
    assert len(files) == 3 * len(sizes)
    assert astc.astc_bits_per_texel(files, 20, 12) == expected
    assert astc.astc_bits_per_texel(tmp_path / "out") == expected
    assert {p.name for p in files} >= {"color_8x8_mip0.astc", "normal_8x8_mip4.astc", "orm_8x8_mip2.astc"}
    assert m["packing"] == {
        "color": ["basecolor.0", "basecolor.1", "basecolor.2"],
        "normal": ["normal.0", "normal.1"],
        "orm": ["roughness.0", "height.0"],
    }
    decoded = result.decoded()
    assert [d.shape for d in decoded] == [c.shape for c in material.mip_chain()]
    assert all(d.dtype == np.float32 for d in decoded)


# ---------------------------------------------------------------------------------------- packing


def test_plan_for_rocks_layout_is_three_textures(rocks_crop):
    plan = astc.plan_textures(rocks_crop.maps)
    assert [(s.name, s.swizzle, s.read, s.normal_map) for s in plan] == [
        ("color", "rgb1", ("r", "g", "b"), False),
        ("normal", "rrrg", ("r", "a"), True),
        ("orm", "rrrg", ("r", "a"), False),
    ]
    assert plan[2].sources == (("roughness", 0), ("height", 0))


def test_plan_with_every_map():
    names = [
        ("basecolor", 3),
        ("normal", 2),
        ("roughness", 1),
        ("metallic", 1),
        ("ao", 1),
        ("height", 1),
        ("opacity", 1),
        ("emissive", 3),
        ("specular", 1),
    ]
    maps, offset = [], 0
    for name, ch in names:
        maps.append(_map(name, ch, offset))
        offset += ch
    plan = {s.name: s for s in astc.plan_textures(maps)}
    assert list(plan) == ["color", "normal", "orm", "emissive", "specular"]
    assert plan["color"].sources[3] == ("opacity", 0) and plan["color"].swizzle == "rgba"
    assert [m for m, _ in plan["orm"].sources] == ["ao", "roughness", "metallic", "height"]
    assert plan["orm"].swizzle == "rgba" and plan["specular"].swizzle == "rrr1"
    # three scalars: rgb1; constant maps are not packed
    maps3 = [_map("ao", 1, 0), _map("roughness", 1, 1), _map("metallic", 1, 2), _map("height", 1, -1)]
    (orm,) = astc.plan_textures(maps3)
    assert orm.swizzle == "rgb1" and orm.read == ("r", "g", "b")


def test_pack_unpack_round_trip(rocks_crop):
    mip = rocks_crop.mip_chain()[1]
    packed = astc.pack(mip, rocks_crop.maps)
    stored = {p.spec.name: astc.apply_swizzle(p.pixels, p.spec.swizzle) for p in packed}
    assert (stored["normal"][..., 0] == stored["normal"][..., 2]).all()  # X in R, G, B; Y in A
    back = astc.unpack(stored, rocks_crop.maps)
    assert back.shape == mip.shape
    np.testing.assert_array_equal(back, astc.to_unorm8(mip).astype(np.float32) / 255)
    assert np.abs(back - mip).max() <= 0.5 / 255 + 1e-6
    # each channel goes back to its place: tag channel c with value c / 10
    tagged = np.broadcast_to(np.arange(7, dtype=np.float32) / 10, (4, 4, 7))
    stored = [astc.apply_swizzle(p.pixels, p.spec.swizzle) for p in astc.pack(tagged, rocks_crop.maps)]
    np.testing.assert_allclose(astc.unpack(stored, rocks_crop.maps)[0, 0], np.arange(7) / 10, atol=0.5 / 255)


# ------------------------------------------------------------------------------------ real encodes


def test_quality_on_real_crop(sweep, rocks_crop):
    ref = rocks_crop.mip_chain()
    psnr = {b: astc.psnr(r.decoded()[0], ref[0]) for b, r in sweep.items()}
    assert psnr["6x6"] > 30, psnr
    assert psnr["4x4"] > psnr["6x6"] > psnr["8x8"] > psnr["12x12"] > 20, psnr
    for b, r in sweep.items():
        assert r.manifest["block"] == b and r.manifest["preset"] == "medium"
        assert r.bits_per_texel == astc.chain_bits_per_texel(CROP, CROP, b, 3)
        dec = r.decoded()
        assert len(dec) == len(ref) == 8
        assert astc.psnr(dec[3], ref[3]) > 20


def test_separate_process_per_block_size(sweep, rocks_crop, tmp_path):
    """8x8 encoded after 4x4 and 6x6 in one sweep gives the bytes of 8x8 encoded alone."""
    alone = astc.encode_material(rocks_crop, "8x8", "medium", tmp_path / "alone")
    assert not alone.reused
    after = sweep["8x8"].out_dir
    names = sorted(p.name for p in after.glob("*.astc"))
    assert names == sorted(p.name for p in (tmp_path / "alone").glob("*.astc")) and len(names) == 24
    for name in names:
        assert (after / name).read_bytes() == (tmp_path / "alone" / name).read_bytes(), name


def test_cache_reuse_and_invalidation(sweep, rocks_crop):
    first = sweep["12x12"]
    stamp = {p.name: p.stat().st_mtime_ns for p in first.out_dir.iterdir()}
    again = astc.encode_material(rocks_crop, "12x12", "medium", first.out_dir)
    assert again.reused and again.manifest == first.manifest
    assert stamp == {p.name: p.stat().st_mtime_ns for p in first.out_dir.iterdir()}
    other = astc.encode_material(rocks_crop, "12x12", "medium", first.out_dir, fingerprint="other-source")
    assert not other.reused and other.manifest["fingerprint"] == "other-source"
    assert astc.load_manifest(first.out_dir)["fingerprint"] == "other-source"


def test_decode_dir_rejects_other_layout(sweep):
    maps = [_map("basecolor", 3, 0), _map("roughness", 1, 3)]
    with pytest.raises(AstcError, match="does not match"):
        astc.decode_dir(sweep["4x4"].out_dir, maps)


@pytest.mark.skipif(
    shutil.which("astcenc") is None,
    reason="Debian's astcenc binary is not installed (apt-get install -y astcenc)",
)
def test_astcenc_binary_decodes_identically(sweep, tmp_path):
    out_dir = sweep["6x6"].out_dir  # 128 is not a multiple of 6: partial blocks, mips down to 1x1
    files = sorted(out_dir.glob("*.astc"))
    assert len(files) == 24
    for f in files:
        png = tmp_path / (f.stem + ".png")
        run = subprocess.run(["astcenc", "-dl", os.fspath(f), os.fspath(png)], capture_output=True, text=True)
        assert run.returncode == 0, run.stdout + run.stderr
        theirs = np.asarray(Image.open(png).convert("RGBA"))
        ours = astc.to_unorm8(astc.read_decoded(f))
        assert theirs.shape == ours.shape, f.name
        np.testing.assert_array_equal(theirs, ours, err_msg=f.name)
