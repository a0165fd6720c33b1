"""Hostile or odd inputs to the material loader (issue 9, "Paths"): each is one MaterialError line naming the
file and the problem, never a traceback, a hang or a read outside the material. glTF/GLB files are built in
tmp_path around the real bundled tiles maps."""

from __future__ import annotations

import base64
import json
import logging
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import models.material as material
from models.material import MaterialError, load_material

ROOT = Path(__file__).resolve().parents[1]
TILES = ROOT / "assets/tiles"
BOX = (300, 300, 364, 364)


def tile_png(dst: Path, name: str = "basecolor", box: tuple[int, int, int, int] = BOX) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    Image.open(TILES / f"{name}.png").crop(box).save(dst)
    return dst


def gltf(folder: Path, images: list[dict], buffers: list[dict] | None = None, views: list[dict] | None = None,
         texture: int = 0, name: str = "m.gltf") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    doc = {"asset": {"version": "2.0"},
           "materials": [{"name": "M", "pbrMetallicRoughness": {"baseColorTexture": {"index": texture}}}],
           "textures": [{"source": i} for i in range(len(images))], "images": images}
    if buffers is not None:
        doc["buffers"] = buffers
    if views is not None:
        doc["bufferViews"] = views
    (folder / name).write_text(json.dumps(doc))
    return folder / name


def glb(path: Path, doc_bytes: bytes, bin_chunk: bytes | None = None) -> Path:
    def chunk(kind: int, data: bytes) -> bytes:
        data += b" " * (-len(data) % 4)
        return struct.pack("<II", len(data), kind) + data
    body = chunk(0x4E4F534A, doc_bytes) + (chunk(0x004E4942, bin_chunk) if bin_chunk is not None else b"")
    path.write_bytes(b"glTF" + struct.pack("<II", 2, 12 + len(body)) + body)
    return path


def one_line(excinfo: pytest.ExceptionInfo, *words: str) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg, msg
    for w in words:
        assert w in msg, (w, msg)
    return msg


def test_real_gltf_with_external_image_still_loads(tmp_path: Path) -> None:
    tile_png(tmp_path / "g/tex/base.png")
    mat = load_material(gltf(tmp_path / "g", [{"uri": "tex/./base.png"}]))
    ref = np.asarray(Image.open(tmp_path / "g/tex/base.png")) / np.float32(255)
    np.testing.assert_array_equal(mat.texels, ref)


# ------------------------------------------------------------------------------------------- paths


def test_image_uri_dotdot_is_not_read(tmp_path: Path) -> None:
    tile_png(tmp_path / "x.png")  # a real, readable image outside the glTF's folder
    path = gltf(tmp_path / "g", [{"uri": "../x.png"}])
    with pytest.raises(MaterialError) as err:
        load_material(path)
    one_line(err, "m.gltf", "../x.png", "outside")


def test_image_uri_absolute_path_is_not_read(tmp_path: Path) -> None:
    outside = tile_png(tmp_path / "x.png")
    for uri in (str(outside), "file://" + str(outside)):
        with pytest.raises(MaterialError) as err:
            load_material(gltf(tmp_path / "g", [{"uri": uri}]))
        one_line(err, "m.gltf", uri)


def test_symlink_inside_gltf_folder_pointing_outside_is_not_read(tmp_path: Path) -> None:
    outside = tile_png(tmp_path / "x.png")
    path = gltf(tmp_path / "g", [{"uri": "link.png"}])
    (tmp_path / "g/link.png").symlink_to(outside)
    with pytest.raises(MaterialError) as err:
        load_material(path)
    one_line(err, "link.png", "outside")


def test_buffer_uri_dev_zero_is_refused_not_read(tmp_path: Path) -> None:
    """Old code: read /dev/zero until MemoryError. Absolute, and not a regular file either."""
    path = gltf(tmp_path / "g", [{"bufferView": 0, "mimeType": "image/png"}],
                buffers=[{"uri": "/dev/zero", "byteLength": 100}], views=[{"buffer": 0, "byteLength": 100}])
    with pytest.raises(MaterialError) as err:
        load_material(path)
    one_line(err, "m.gltf", "/dev/zero")
    (tmp_path / "g/zero.bin").symlink_to("/dev/zero")  # inside by name, a device by nature
    path = gltf(tmp_path / "g", [{"bufferView": 0, "mimeType": "image/png"}],
                buffers=[{"uri": "zero.bin", "byteLength": 100}], views=[{"buffer": 0, "byteLength": 100}])
    with pytest.raises(MaterialError) as err:
        load_material(path)
    one_line(err, "zero.bin")


def test_fifo_does_not_hang(tmp_path: Path) -> None:
    """Old code: opened the FIFO and blocked forever (glTF image, glTF buffer, the .gltf itself, a folder map)."""
    g = tmp_path / "g"
    g.mkdir()
    os.mkfifo(g / "fifo.png")
    os.mkfifo(g / "fifo.bin")
    with pytest.raises(MaterialError) as err:
        load_material(gltf(g, [{"uri": "fifo.png"}]))
    one_line(err, "fifo.png", "not a regular file")
    with pytest.raises(MaterialError) as err:
        load_material(gltf(g, [{"bufferView": 0}], buffers=[{"uri": "fifo.bin", "byteLength": 8}],
                           views=[{"buffer": 0, "byteLength": 8}]))
    one_line(err, "fifo.bin", "not a regular file")
    os.mkfifo(tmp_path / "pipe.gltf")
    with pytest.raises(MaterialError) as err:
        load_material(tmp_path / "pipe.gltf")
    one_line(err, "pipe.gltf", "not a regular file")
    folder = tmp_path / "f"
    folder.mkdir()
    tile_png(folder / "basecolor.png")
    os.mkfifo(folder / "roughness.png")
    with pytest.raises(MaterialError) as err:
        load_material(folder)
    one_line(err, "roughness.png", "not a regular file")


def test_folder_map_symlinked_to_a_device_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "f"
    folder.mkdir()
    tile_png(folder / "basecolor.png")
    (folder / "roughness.png").symlink_to("/dev/zero")
    with pytest.raises(MaterialError) as err:
        load_material(folder)
    one_line(err, "roughness.png", "not a regular file")


def test_folder_map_symlinked_to_a_regular_file_is_read(tmp_path: Path) -> None:
    """A folder is the user's own choice of files: links to a shared library of maps stay allowed."""
    shared = tile_png(tmp_path / "library_roughness.png", "roughness")
    folder = tmp_path / "f"
    folder.mkdir()
    tile_png(folder / "basecolor.png")
    (folder / "roughness.png").symlink_to(shared)
    mat = load_material(folder)
    assert mat.map_info("roughness").source == str(folder / "roughness.png")


def test_file_sizes_are_checked_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "f"
    folder.mkdir()
    base = tile_png(folder / "basecolor.png")
    monkeypatch.setattr(material, "MAX_FILE_BYTES", base.stat().st_size - 1)
    with pytest.raises(MaterialError) as err:
        load_material(folder)
    one_line(err, "basecolor.png", "bytes")
    payload = base64.b64encode(base.read_bytes()).decode()
    monkeypatch.setattr(material, "MAX_FILE_BYTES", 1000)
    path = gltf(tmp_path / "g", [{"uri": "data:image/png;base64," + payload}])
    monkeypatch.setattr(material, "MAX_FILE_BYTES", len(path.read_bytes()) + 10)  # the .gltf fits, its URI not
    monkeypatch.setattr(material, "MAX_DATA_URI_BYTES", 1000)
    with pytest.raises(MaterialError) as err:
        load_material(path)
    one_line(err, "m.gltf", "data: URI")


# ------------------------------------------------------------------------------------------- glTF structure


def test_deeply_nested_json_is_one_line(tmp_path: Path) -> None:
    """Old code: RecursionError traceback."""
    deep = "[" * 100_000 + "]" * 100_000
    (tmp_path / "deep.gltf").write_text('{"asset": {"version": "2.0"}, "extras": ' + deep + "}")
    with pytest.raises(MaterialError) as err:
        load_material(tmp_path / "deep.gltf")
    one_line(err, "deep.gltf", "nested")
    path = glb(tmp_path / "deep.glb", ('{"extras": ' + deep + "}").encode())
    with pytest.raises(MaterialError) as err:
        load_material(path)
    one_line(err, "deep.glb", "nested")


def test_texture_index_minus_one_is_refused(tmp_path: Path) -> None:
    """Old code: Python's negative indexing silently took the last texture."""
    tile_png(tmp_path / "g/a.png")
    tile_png(tmp_path / "g/b.png", "normal")
    path = gltf(tmp_path / "g", [{"uri": "a.png"}, {"uri": "b.png"}], texture=-1)
    with pytest.raises(MaterialError) as err:
        load_material(path)
    one_line(err, "m.gltf", "-1")
    for bad in (2, True, 0.5, "0"):
        with pytest.raises(MaterialError):
            load_material(gltf(tmp_path / "g", [{"uri": "a.png"}, {"uri": "b.png"}], texture=bad))


def test_negative_buffer_view_offsets_are_refused(tmp_path: Path) -> None:
    png = tile_png(tmp_path / "x.png").read_bytes()
    doc = {"asset": {"version": "2.0"},
           "materials": [{"pbrMetallicRoughness": {"baseColorTexture": {"index": 0}}}],
           "textures": [{"source": 0}], "images": [{"bufferView": 0}], "buffers": [{"byteLength": len(png)}],
           "bufferViews": [{"buffer": 0, "byteOffset": -8, "byteLength": 8}]}
    with pytest.raises(MaterialError) as err:
        load_material(glb(tmp_path / "neg.glb", json.dumps(doc).encode(), png))
    one_line(err, "neg.glb", "byteOffset")
    doc["bufferViews"][0] = {"buffer": 0, "byteLength": len(png)}
    mat = load_material(glb(tmp_path / "ok.glb", json.dumps(doc).encode(), png))
    assert mat.width == 64


def test_json_that_is_not_an_object_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "list.gltf").write_text("[1, 2, 3]")
    with pytest.raises(MaterialError) as err:
        load_material(tmp_path / "list.gltf")
    one_line(err, "list.gltf")


# ------------------------------------------------------------------------------------------- image content


def _png_header_only(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    idat = zlib.compress(b"\0" * 64)
    return (b"\x89PNG\r\n\x1a\n" + chunk + struct.pack(">I", len(idat)) + b"IDAT" + idat
            + struct.pack(">I", zlib.crc32(b"IDAT" + idat)))


def test_huge_claimed_dimensions_hit_the_pixel_cap(tmp_path: Path) -> None:
    """A 100-byte PNG claiming 100000 x 100000: refused by the loader's own cap, before decoding."""
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "basecolor.png").write_bytes(_png_header_only(100_000, 100_000))
    with pytest.raises(MaterialError) as err:
        load_material(folder)
    one_line(err, "basecolor.png", "100000x100000", "NGTC_MAX_PIXELS")
    # Between Pillow's own warning and error limits (89 and 179 Mpx): still our one line, no Pillow warning.
    (folder / "basecolor.png").write_bytes(_png_header_only(10_000, 10_000))
    with pytest.raises(MaterialError, match="10000x10000"):
        load_material(folder)


def test_pixel_cap_is_configurable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "f"
    folder.mkdir()
    tile_png(folder / "basecolor.png")  # 64 x 64 = 4096 px
    assert load_material(folder).width == 64
    with pytest.raises(MaterialError, match=r"basecolor\.png.*64x64"):
        load_material(folder, max_pixels=4095)
    monkeypatch.setenv("NGTC_MAX_PIXELS", "4000")
    with pytest.raises(MaterialError, match=r"basecolor\.png.*64x64"):
        load_material(folder)
    assert load_material(folder, max_pixels=4096).width == 64  # the parameter wins over the environment
    monkeypatch.setenv("NGTC_MAX_PIXELS", "lots")
    with pytest.raises(MaterialError, match="NGTC_MAX_PIXELS"):
        load_material(folder)


def test_images_are_accepted_by_content(tmp_path: Path) -> None:
    folder = tmp_path / "f"
    folder.mkdir()
    base = Image.open(TILES / "basecolor.png").crop(BOX)
    base.save(folder / "basecolor.png", format="JPEG", quality=95)  # JPEG content, .png name: read as JPEG
    assert load_material(folder).width == 64
    for fmt in ("BMP", "TIFF", "GIF"):
        base.save(folder / "basecolor.png", format=fmt)  # formats the loader does not document
        with pytest.raises(MaterialError) as err:
            load_material(folder)
        one_line(err, "basecolor.png", "PNG, JPEG or WebP")


def test_unsupported_extension_is_named_not_skipped(tmp_path: Path) -> None:
    """Old code read .tga/.tif/.bmp maps; now a map the loader does not read is named, not silently dropped."""
    folder = tmp_path / "f"
    folder.mkdir()
    tile_png(folder / "basecolor.png")
    Image.open(TILES / "roughness.png").crop(BOX).save(folder / "roughness.tga")
    with pytest.raises(MaterialError) as err:
        load_material(folder)
    one_line(err, "roughness.tga", "PNG, JPEG or WebP")
    tile_png(folder / "roughness.png", "roughness")  # a readable file for the same slot wins quietly
    assert "roughness" in load_material(folder).map_names()


# ------------------------------------------------------------------------------------------- resampling


def test_different_aspect_ratio_warns_in_one_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "f"
    folder.mkdir()
    tile_png(folder / "basecolor.png")  # 64 x 64
    tile_png(folder / "roughness.png", "roughness", (300, 300, 364, 332))  # 64 x 32
    with caplog.at_level(logging.WARNING, logger="models.material"):
        mat = load_material(folder)
    assert mat.texels.shape[:2] == (64, 64)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "\n" not in warnings[0]
    assert "roughness.png" in warnings[0] and "64x32" in warnings[0] and "64x64" in warnings[0]
    caplog.clear()
    tile_png(folder / "roughness.png", "roughness", (300, 300, 332, 332))  # 32 x 32: same aspect, no warning
    with caplog.at_level(logging.WARNING, logger="models.material"):
        load_material(folder)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def ngtc(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "viewer.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})


def test_cli_shows_the_aspect_warning_and_refuses_escapes_in_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "f"
    folder.mkdir()
    tile_png(folder / "basecolor.png")
    tile_png(folder / "roughness.png", "roughness", (300, 300, 364, 332))
    r = ngtc("compress", str(folder), "-o", str(tmp_path / "f.ngtc"), "--steps", "1")
    assert r.returncode == 0, r.stderr
    assert "roughness.png" in r.stderr and "64x32" in r.stderr and "aspect" in r.stderr
    tile_png(tmp_path / "x.png")
    path = gltf(tmp_path / "g", [{"uri": "../x.png"}])
    r = ngtc("compress", str(path), "-o", str(tmp_path / "g.ngtc"), "--steps", "1")
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2 and len(lines) == 1 and "outside" in lines[0], r.stderr
