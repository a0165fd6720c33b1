"""A library in the viewer (`ngtc view LIBRARY_DIR`, `ngtc render LIBRARY_DIR --gallery`): the gallery of small
crops of real sets, each cell its own material, sorted by PSNR; a click opens one; a broken material is left out
and said in one line; an empty folder is one line."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from library_data import broken_set, crop_set
from PIL import Image

from models import library_store as store
from models.library import Settings, compress_task, discover

pytestmark = pytest.mark.usefixtures("egl")  # conftest: skip without headless OpenGL 4.3

ROOT = Path(__file__).resolve().parents[1]
SIZE = (360, 150)  # three cells of 120 pixels
# Crops whose base colours differ: light rocks (~152 grey), dark rocks (~109), tiles (~235 warm white).
CROPS = {"rocks_light": ("rocks", 0, 0), "rocks_dark": ("rocks", 256, 768), "tiles": ("tiles", 0, 384)}


@pytest.fixture(scope="module")
def materials(tmp_path_factory, data_dir) -> Path:
    """A library root: three crops of real sets and a broken set."""
    root = tmp_path_factory.mktemp("gallery") / "materials"
    for name, (src, x, y) in CROPS.items():
        crop_set(data_dir / src, root / name, x, y)
    broken_set(root / "broken")
    return root


@pytest.fixture(scope="module")
def compressed(materials, tmp_path_factory) -> tuple[Path, dict]:
    """`ngtc compress`'s output of `materials` (its tasks run here, without Ray): .ngtc files and library.json."""
    out = tmp_path_factory.mktemp("gallery_out") / "lib"
    store.prepare(out)
    settings = Settings(steps=40)
    entries = []
    for item in discover([materials]):
        result = compress_task(item, settings, None, 1, "cpu")
        store.write_files(out, result["files"])
        entries.append(result["entry"])
    doc = store.new_doc("test", settings.key(), "here", entries)
    store.write_library(out, doc)
    return out, doc


@pytest.fixture(scope="module")
def gallery_host(tmp_path_factory, monkeypatch_module):
    from viewer.headless import Headless

    monkeypatch_module.setenv("NGTC_CACHE", str(tmp_path_factory.mktemp("cache")))
    host = Headless(SIZE)
    yield host
    host.release()


def show(host, path: Path, mode: str, sort: str = "worst", view: str = "basecolor"):
    """The gallery of `path` in `mode`: (its library, the frame)."""
    from viewer.gallery import Library
    from viewer.renderer import ViewState

    viewer = host.viewer
    if viewer.library is None or viewer.library.path != path:
        if viewer.library is not None:
            viewer.library.release()
        viewer.library = Library(viewer.ctx, path)
    viewer.state = ViewState(mode_a=mode, view=view, ibl=False)
    viewer.library.sort, viewer.library.gallery = sort, True
    host.wait()
    return viewer.library, host.frame(panel=False).astype(np.float64)


def cell_means(library, image: np.ndarray) -> dict[str, np.ndarray]:
    """Each cell's mean colour over the middle of its sphere (clear of the label and the rim)."""
    h = image.shape[0]
    means = {}
    for cell, (x, y, w, hh) in library.renderer.rects:
        cx, cy, r = x + w // 2, h - (y + hh // 2) - 6, w // 6
        means[cell.entry.name] = image[cy - r:cy + r, cx - r:cx + r].reshape(-1, 3).mean(axis=0)
    return means


def base_mean(folder: Path) -> np.ndarray:
    return np.asarray(Image.open(folder / "basecolor.png").convert("RGB"), np.float64).reshape(-1, 3).mean(axis=0)


def assert_own_materials(means: dict[str, np.ndarray], materials: Path, within: float) -> None:
    """Each cell's colour is its own material's base colour: within `within` levels of it, nearer than any other's."""
    expected = {name: base_mean(materials / name) for name in CROPS}
    assert sorted(means) == sorted(expected)
    for name, mean in means.items():
        distance = {other: float(np.abs(mean - e).mean()) for other, e in expected.items()}
        assert min(distance, key=distance.get) == name and distance[name] < within, (name, distance)


def test_gallery_shows_each_material_sorted_by_psnr(gallery_host, compressed, materials):
    out, doc = compressed
    recorded = {e["name"]: e["psnr"][0] for e in doc["materials"] if e["status"] == "ok"}
    worst_first = sorted(recorded, key=recorded.get)
    library, image = show(gallery_host, out, "reference")  # the maps (library.json's sources): exact colours
    assert [c.entry.name for c, _ in library.renderer.rects] == worst_first
    assert_own_materials(cell_means(library, image), materials, 20)
    library, image = show(gallery_host, out, "neural")  # decoded from the .ngtc files (40 steps: ~24-29 dB)
    names = [c.entry.name for c, _ in library.renderer.rects]
    assert names == worst_first
    assert_own_materials(cell_means(library, image), materials, 25)
    # One line for the broken material, which library.json recorded as failed; it is not in the gallery.
    assert len(library.log.errors) == 1 and library.log.errors[0].startswith("broken: failed:")
    assert "\n" not in library.log.errors[0]
    library, image = show(gallery_host, out, "neural", sort="best")
    assert [c.entry.name for c, _ in library.renderer.rects] == names[::-1]
    assert_own_materials(cell_means(library, image), materials, 25)
    # The picker's search narrows the gallery too.
    library.filter = "ROCKS"
    assert [c.entry.name for c in library.order("neural")] == [n for n in names[::-1] if n.startswith("rocks")]
    library.filter = ""


def test_library_root_with_a_broken_material_shows_the_others(gallery_host, materials):
    library, image = show(gallery_host, materials, "reference")  # the maps, through models.material
    assert sorted(c.entry.name for c, _ in library.renderer.rects) == sorted(CROPS)
    assert_own_materials(cell_means(library, image), materials, 20)
    assert len(library.log.errors) == 1 and library.log.errors[0].startswith("broken: ")
    assert "\n" not in library.log.errors[0]


def test_click_opens_a_material_and_the_panel_lists_them(gallery_host, compressed):
    from imgui_bundle import imgui

    out, _ = compressed
    library, _ = show(gallery_host, out, "neural", view="shaded")
    viewer = gallery_host.viewer
    cell, (x, y, w, h) = library.renderer.rects[1]
    io = imgui.get_io()
    imgui.set_current_context(viewer.panel.imgui_context)
    io.add_mouse_pos_event(x + w / 2, SIZE[1] - (y + h / 2))
    io.add_mouse_button_event(0, True)
    gallery_host.frame(panel=False)
    io.add_mouse_button_event(0, False)
    gallery_host.frame(panel=False)
    assert not library.gallery and library.chosen == cell.entry.name
    gallery_host.wait()
    assert viewer.scene.ngtc_path == cell.entry.ngtc and "neural" in viewer.scene.sets
    assert viewer.scene.material is not None and viewer.scene.material.name == cell.entry.name
    library.gallery = True
    without = gallery_host.frame(panel=False).astype(np.float64)
    with_panel = gallery_host.frame(panel=True)  # the Library section first: the list, the gallery's order
    assert np.abs(with_panel[5:140, 5:90] - without[5:140, 5:90]).mean() > 10


def test_library_index_agrees_with_the_library_modules():
    import models.library
    from viewer import library_index

    assert library_index.LIBRARY_JSON == store.LIBRARY_JSON and library_index.GLTF == models.library.GLTF


def test_empty_folder_is_one_line(tmp_path, monkeypatch, capsys):
    from viewer import cli

    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DISPLAY", raising=False)
    for args in (["view", str(empty)], ["render", str(empty), "--gallery", "-o", "g.png"]):
        monkeypatch.setattr(sys, "argv", ["ngtc", *args])
        with pytest.raises(SystemExit) as exit_:
            cli.main()
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and err.count("\n") == 1, err
        assert err.startswith("ngtc: error:") and "no materials in this library" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]  # nothing written (no ngtc-view/ either)
