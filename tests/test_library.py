"""`ngtc compress` of a library on a local Ray: crops of real sets, one task each; resumed runs, a broken
material, a multi-material glTF, a worker killed mid-task, Ctrl-C, and library.html in headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from library_data import broken_set, chromium, crop_set, multi_material_glb
from PIL import Image

from models import cluster, ngtc_file
from models.bench_library import WorkerKiller
from models.library import Settings, discover
from models.library_run import RayOptions, compress_library
from models.library_store import LIBRARY_JSON
from models.material import load_material

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = Settings(steps=20)  # the default preset; seconds per material on a 48x40 crop


@pytest.fixture(scope="module")
def library(tmp_path_factory, data_dir) -> Path:
    """A library root: rocks and tiles crops, another rocks crop a level down, a two-material GLB, a broken set."""
    root = tmp_path_factory.mktemp("library") / "materials"
    crop_set(data_dir / "rocks", root / "rocks")
    crop_set(data_dir / "tiles", root / "tiles", 100, 200)
    crop_set(data_dir / "rocks", root / "more" / "pebbles", 600, 640)
    multi_material_glb(root / "props.glb", {"stone": data_dir / "rocks", "floor": data_dir / "tiles"})
    broken_set(root / "broken")
    return root


def _compress(paths, out: Path, settings: Settings = SETTINGS, **ray) -> dict:
    return compress_library(paths, out, settings, RayOptions(**ray), "test")


@pytest.fixture(scope="module")
def compressed(ray_cluster, library, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("out") / "lib"
    return out, _compress([library], out)


def _entries(doc: dict) -> dict[str, dict]:
    return {e["name"]: e for e in doc["materials"]}


def test_every_material_gets_a_valid_file_and_an_entry(compressed, library):
    out, doc = compressed
    entries = _entries(doc)
    assert sorted(entries) == ["broken", "pebbles", "props_floor", "props_stone", "rocks", "tiles"]
    assert json.loads((out / LIBRARY_JSON).read_text())["materials"] == doc["materials"]
    for name, e in entries.items():
        if name == "broken":
            continue
        assert e["status"] == "ok" and not e["skipped"], e
        ct = ngtc_file.load(out / e["file"])  # a whole, valid .ngtc
        assert [ct.width, ct.height] == e["size"] == [48, 40]
        assert e["stored_bytes"] == (out / e["file"]).stat().st_size
        assert e["bits_per_texel"] == pytest.approx(e["stored_bytes"] * 8 / (48 * 40), abs=1e-3)
        assert len(e["psnr"]) == ct.mips and e["psnr"] == ct.info.quality.psnr
        assert set(e["psnr_maps"]) == {m.name for m in ct.layout if m.constant is None}
        assert e["compress_seconds"] > 0 and e["device"].startswith("cpu") and len(e["fingerprint"]) == 64
        for thumb in e["thumbnails"].values():
            assert Image.open(out / thumb).size == (48, 40)
    assert doc["summary"] == {"ok": 5, "failed": 1, "pending": 0, "materials": 6, "skipped": 0}
    assert not list(out.rglob(".*.tmp"))


def test_a_broken_material_is_isolated_and_reported(compressed):
    out, doc = compressed
    broken = _entries(doc)["broken"]
    assert broken["status"] == "failed" and broken["file"] is None
    assert "basecolor.png: not a PNG, JPEG or WebP image" in broken["reason"] and "\n" not in broken["reason"]
    assert not (out / "broken.ngtc").exists()


def test_a_multi_material_gltf_gives_one_file_per_material(compressed, library):
    out, doc = compressed
    entries = _entries(doc)
    for name, index in (("props_stone", 0), ("props_floor", 1)):
        e = entries[name]
        assert e["source"] == f"{library / 'props.glb'}#materials[{index}]" and e["material"] == name.split("_")[1]
        material = load_material(e["source"])
        ct = ngtc_file.load(out / e["file"])
        assert [m.name for m in ct.layout] == material.map_names()
    assert entries["props_stone"]["fingerprint"] != entries["props_floor"]["fingerprint"]


def test_a_resumed_run_skips_the_completed_work(compressed, library, tmp_path):
    out0, _ = compressed
    out = tmp_path / "lib"
    shutil.copytree(out0, out)
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.ngtc")}
    t0 = time.perf_counter()
    doc = _compress([library], out)
    entries = _entries(doc)
    assert all(e["skipped"] for n, e in entries.items() if n != "broken"), doc["summary"]
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.ngtc")} == before  # nothing rewritten
    assert entries["broken"]["status"] == "failed"  # tried again: it may have been fixed
    print(f"resumed run: {time.perf_counter() - t0:.1f} s")
    # A changed material and changed settings are compressed again; the rest is kept.
    tiles = library.parent / "tiles_changed"
    shutil.copytree(library / "tiles", tiles)
    img = np.array(Image.open(tiles / "basecolor.png"))
    img[0, 0] = 255 - img[0, 0]
    Image.fromarray(img).save(tiles / "basecolor.png")
    doc = _compress([library / "rocks", tiles], out)
    redone = _entries(doc)
    assert redone["rocks"]["skipped"] and not redone["tiles_changed"]["skipped"]
    doc = _compress([library / "rocks"], out, Settings(steps=21))
    assert not _entries(doc)["rocks"]["skipped"] and _entries(doc)["rocks"]["steps"] == 21
    assert _entries(doc)["pebbles"]["status"] == "ok"  # materials of earlier runs stay listed


def test_a_task_whose_worker_dies_is_retried_and_leaves_no_partial_file(ray_cluster, library, tmp_path):
    out = tmp_path / "lib"
    killer = WorkerKiller("compress_task", after=0.3)
    killer.start()
    doc = _compress([library / "rocks", library / "tiles"], out, Settings(steps=60))
    killer.join(timeout=5)
    assert killer.killed is not None, "no worker was seen running a task"
    entries = _entries(doc)
    assert [e["status"] for e in entries.values()] == ["ok", "ok"], entries
    assert sorted(p.name for p in out.iterdir()) == ["library.html", LIBRARY_JSON, "rocks.ngtc", "thumbs", "tiles.ngtc"]
    for e in entries.values():
        assert ngtc_file.load(out / e["file"]).info.steps == 60
    assert not list(out.rglob(".*.tmp"))


def test_ctrl_c_leaves_completed_materials_and_a_valid_library_json(ray_cluster, library, tmp_path):
    import ray

    inputs = tmp_path / "many"
    # six materials at 100 steps: Ctrl-C comes after the first ones. With four, one full run (warm workers, two
    # materials at a time) was done with all of them before the signal landed, and ended with status 0.
    for i in range(6):
        crop_set(library / ("rocks" if i % 2 else "tiles"), inputs / f"m{i}", 0, 8 * i)
    out = tmp_path / "lib"
    cmd = [sys.executable, "-m", "viewer.cli", "compress", str(inputs), "-o", str(out), "--steps", "100",
           "--address", ray.get_runtime_context().gcs_address]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not _done_count(out / LIBRARY_JSON):
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err[-2000:]
    assert "ngtc: interrupted" in err and "Traceback" not in err
    doc = json.loads((out / LIBRARY_JSON).read_text())
    done = [e for e in doc["materials"] if e["status"] == "ok"]
    assert 1 <= len(done) < 6 and doc["summary"]["ok"] == len(done)
    assert {e["status"] for e in doc["materials"]} <= {"ok", "pending"}
    for e in done:
        assert ngtc_file.load(out / e["file"]).info.steps == 100
    assert sorted(p.name for p in out.glob("*.ngtc")) == sorted(e["file"] for e in done)
    assert not list(out.rglob(".*.tmp")) and (out / "library.html").is_file()


def _done_count(path: Path) -> int:
    try:
        return json.loads(path.read_text())["summary"]["ok"]
    except (OSError, ValueError, KeyError):
        return 0


def test_discovery_walks_roots_and_names_uniquely(library, tmp_path):
    (library / ".hidden").mkdir(exist_ok=True)
    crop_set(library / "rocks", library / ".hidden" / "rocks")  # hidden folders are not looked into
    items = discover([library, library / "rocks", tmp_path / "missing"], exclude=library / "more")
    assert [(i.name, Path(i.source).name) for i in items] == [
        ("broken", "broken"), ("props_stone", "props.glb#materials[0]"), ("props_floor", "props.glb#materials[1]"),
        ("rocks", "rocks"), ("tiles", "tiles"), ("rocks_2", "rocks"), ("missing", "missing")]
    assert all(i.error is None for i in items)  # a missing path fails in its task, with load_material's reason
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    assert discover([empty])[0].error == f"{empty}: no material folder or .glb/.gltf below it"


def test_task_resources_never_oversubscribe():
    def where(cpus, gpus=0.0, largest=None):
        return cluster.Cluster(None, 1, cpus, gpus, largest or cpus)

    assert cluster.task_resources(where(2), 1) == cluster.Resources(2)  # one material: both cores
    assert cluster.task_resources(where(2), 5) == cluster.Resources(1)
    assert cluster.task_resources(where(16), 3) == cluster.Resources(5)
    assert cluster.task_resources(where(8, largest=2), 1) == cluster.Resources(2)  # no node has more
    assert cluster.task_resources(where(8, 2), 10) == cluster.Resources(1, 1.0)  # a GPU each
    assert cluster.task_resources(where(8, 2), 10, device="cpu") == cluster.Resources(1)
    assert cluster.task_resources(where(8, 2), 10, gpus_per_task=0.5).gpus == 0.5
    with pytest.raises(cluster.ClusterError, match="no GPUs"):
        cluster.task_resources(where(2), 1, device="cuda")


def test_library_input_errors_are_one_line(library, tmp_path, monkeypatch, capsys):
    from viewer import cli

    blocker = tmp_path / "file"
    blocker.write_text("x")
    for args, words in ((["compress", str(library / "rocks"), "-o", str(blocker / "lib")], "cannot write"),
                        (["compress", str(library / "rocks"), str(library / "tiles"), "-o", str(blocker)], "a file"),
                        (["compress", str(library), "-o", str(tmp_path / "x.ngtc")], "give -o a folder"),
                        (["compress", str(library), "-o", str(tmp_path / "o"), "--preset", "nope"], "unknown preset"),
                        (["compress", str(library / "rocks"), "-o", str(tmp_path / "o"), "--address", "127.0.0.1:1"],
                         "no Ray cluster answers there")):
        monkeypatch.setattr(sys, "argv", ["ngtc", *args])
        with pytest.raises(SystemExit) as e:
            cli.main()
        lines = capsys.readouterr().err.strip().splitlines()
        assert e.value.code == 2 and len(lines) == 1 and lines[0].startswith("ngtc: error:"), (args, lines)
        assert words in lines[0], (words, lines[0])
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------------------------------- library.html


def test_library_html_renders_every_material_in_chromium(compressed, tmp_path):
    out, doc = compressed
    page = out / "library.html"
    dom = chromium(tmp_path / "profile", "--dump-dom", page.as_uri() + "#sort=-bpp").stdout
    assert 'data-ready="1"' in dom and 'data-sorted="bpp:desc"' in dom  # the script ran and sorted
    for e in doc["materials"]:
        assert f"<b>{e['name']}</b>" in dom
    bpp = [float(v) for v in _column(dom, 1) if v]
    assert bpp == sorted(bpp, reverse=True) and len(bpp) == 5
    shot = tmp_path / "library.png"
    chromium(tmp_path / "profile", f"--screenshot={shot}", "--window-size=1400,900", page.as_uri())
    img = np.asarray(Image.open(shot).convert("RGB"))
    assert img.shape[:2] == (900, 1400) and img.std() > 20  # a page, not a blank frame


def _column(dom: str, index: int) -> list[str]:
    """The sort keys of the `index`-th sortable cell of every row, in the order the rows are shown."""
    rows = re.findall(r"<tr class=\"\w+\">(.*?)</tr>", dom, re.S)
    return [re.findall(r'data-key="([^"]*)"', row)[index] for row in rows]
