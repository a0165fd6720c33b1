"""`ngtc eval` of a library on a local Ray: the encodes and fits as tasks, a report per material, the
library's report (BD-rate distribution per mip, one RD plot with every material) and its library.html."""

from __future__ import annotations

import json
import re
import sys

import pytest
from library_data import broken_set, chromium, crop_set, multi_material_glb

from models.library_report import distribution


@pytest.fixture(scope="module")
def evaluated(ray_cluster, data_dir, tmp_path_factory):
    """`ngtc eval LIBRARY --quick` (in this process, on the module's Ray): rocks and tiles crops, a GLB's two
    materials and a broken set."""
    from viewer import cli

    root = tmp_path_factory.mktemp("library") / "materials"
    crop_set(data_dir / "rocks", root / "rocks")
    crop_set(data_dir / "tiles", root / "tiles", 100, 200)
    multi_material_glb(root / "props.glb", {"stone": data_dir / "rocks", "floor": data_dir / "tiles"})
    broken_set(root / "broken")
    out = root.parent / "report"
    argv = ["ngtc", "eval", str(root), "--quick", "--out", str(out)]
    mp = pytest.MonkeyPatch()
    mp.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as e:
        cli.main()
    mp.undo()
    assert e.value.code == 1  # one material failed; the others are reported
    return out, json.loads((out / "report.json").read_text())


def test_every_material_gets_its_report_from_the_tasks(evaluated):
    out, doc = evaluated
    assert [m["name"] for m in doc["materials"]] == ["props_stone", "props_floor", "rocks", "tiles"]
    for m in doc["materials"]:
        report = json.loads((out / m["name"] / "report.json").read_text())["materials"][0]
        # Every setting was made by a task before the report: the report only reused and measured them.
        assert [s["reused"] for s in report["settings"]] == [True] * 4, report["settings"]
        assert {s["codec"] for s in report["settings"]} == {"neural", "astc"}
        for rel in [m["report"], m["rd_plot"], *m["compare"], m["shown"]["file"], *m["thumbnails"].values()]:
            assert (out / rel).is_file(), rel
        assert m["bd_rate"] == [bd["bd_rate_percent"] if bd["status"] == "ok" else None for bd in report["bd"]]


def test_the_library_report_has_the_bd_rate_distribution_per_mip(evaluated):
    out, doc = evaluated
    assert doc["format"] == "ngtc-eval-library" and doc["anchor"] == "ASTC medium compact"
    (curve,) = doc["bd_rate"]
    assert [d["mip"] for d in curve["mips"]] == [0, 1, 2, 3, 4]
    for d in curve["mips"]:
        assert sum(d["statuses"].values()) == 4 and d["materials"] == len(d["values"]) == d["statuses"].get("ok", 0)
        if d["values"]:
            assert d["worst"] == max(d["values"].values()) and d["values"][d["worst_material"]] == d["worst"]
    md = (out / "report.md").read_text()
    assert "| ASTC medium compact | 0 |" in md and "rd_library.png" in md and "**broken**" in md
    for figure in ("rd_library.png", "bd_library.png"):
        assert (out / figure).stat().st_size > 20_000


def test_a_broken_material_fails_alone(evaluated):
    _, doc = evaluated
    (failed,) = doc["failed"]
    assert failed["name"] == "broken" and failed["source"].endswith("broken")
    assert "basecolor.png: not a PNG, JPEG or WebP image" in failed["reason"]


def test_the_library_page_links_every_report_and_figure(evaluated, tmp_path):
    out, doc = evaluated
    page = (out / "library.html").read_text()
    hrefs = re.findall(r'(?:href|src)="([^"]+)"', page)
    assert all((out / h).is_file() for h in hrefs), [h for h in hrefs if not (out / h).is_file()]
    for m in doc["materials"]:
        assert m["rd_plot"] in hrefs and all(c in hrefs for c in m["compare"])
    dom = chromium(tmp_path / "profile", "--dump-dom", (out / "library.html").as_uri() + "#sort=bd-rate-mip-0").stdout
    assert 'data-sorted="bd-rate-mip-0:asc"' in dom and all(f"<b>{m['name']}</b>" in dom for m in doc["materials"])
    assert "<b>broken</b>" in dom


def test_distribution_takes_median_worst_and_best_over_reliable_values():
    def report(*bds):
        return {"astc_curves": [{"curve": "A", "bd": [{"status": s, "bd_rate_percent": v} for s, v in bds]}]}

    reports = {"a": report(("ok", -30.0), ("ok", 5.0)), "b": report(("ok", -10.0), ("barely overlap", 50.0)),
               "c": report(("ok", 20.0), ("no overlap", None))}
    mip0, mip1 = distribution(reports, "A")
    assert (mip0["median"], mip0["worst"], mip0["worst_material"], mip0["best"], mip0["best_material"]) == (
        -10.0, 20.0, "c", -30.0, "a")
    assert mip1["values"] == {"a": 5.0} and mip1["statuses"] == {"ok": 1, "barely overlap": 1, "no overlap": 1}
