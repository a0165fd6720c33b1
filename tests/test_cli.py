"""The `ngtc` command line: real runs, and one clear line with exit status 2 on bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from models.presets import PRESETS

ROOT = Path(__file__).resolve().parents[1]


def ngtc(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "viewer.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={"COLUMNS": "160", "PATH": "/usr/bin:/bin"})


def assert_clean_error(r: subprocess.CompletedProcess, *words: str) -> None:
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("ngtc: error:"), r.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])


def test_compress_info_decode(tmp_path, small_ngtc):
    crop = tmp_path / "crop"
    crop.mkdir()
    for name in ("basecolor", "normal", "roughness", "height"):
        Image.open(ROOT / "assets/tiles" / f"{name}.png").crop((0, 0, 40, 24)).save(crop / f"{name}.png")
    out = tmp_path / "t.ngtc"
    r = ngtc("compress", str(crop), "-o", str(out), "--steps", "20", "--preset", "bpp8")
    assert r.returncode == 0, r.stderr
    assert out.exists() and "bits per texel" in r.stdout and "all channels" in r.stdout
    r = ngtc("info", str(out))
    assert r.returncode == 0 and "bpp8" in r.stdout and "40x24" in r.stdout
    r = ngtc("decode", str(out), "-o", str(tmp_path / "png"), "--all-mips")
    assert r.returncode == 0, r.stderr
    height = Image.open(tmp_path / "png" / "height_mip0.png")
    assert height.size == (40, 24) and np.array(height).dtype == np.uint16  # 16-bit source stays 16-bit
    assert Image.open(tmp_path / "png" / "basecolor_mip3.png").size == (5, 3)
    assert Image.open(tmp_path / "png" / "normal_mip0.png").mode == "RGB"


def test_bad_inputs_give_one_line_and_status_2(tmp_path, small_ngtc):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("hi")
    assert_clean_error(ngtc("compress", str(empty), "-o", str(tmp_path / "x.ngtc")), str(empty))
    assert_clean_error(ngtc("compress", str(tmp_path / "nope"), "-o", str(tmp_path / "x.ngtc")), "nope")
    assert_clean_error(ngtc("compress", "assets/tiles", "-o", str(tmp_path / "no" / "x.ngtc")), "cannot write")
    bad = tmp_path / "bad.ngtc"
    bad.write_bytes(small_ngtc[:-10])
    assert_clean_error(ngtc("info", str(bad)), "bad.ngtc", "truncated")
    assert_clean_error(ngtc("decode", str(bad), "-o", str(tmp_path / "o")), "bad.ngtc")
    good = tmp_path / "good.ngtc"
    good.write_bytes(small_ngtc)
    assert_clean_error(ngtc("decode", str(good), "-o", str(tmp_path / "o"), "--mip", "99"), "out of range")
    assert_clean_error(ngtc("compress", "assets/tiles", "-o", str(good), "--preset", "nope"), "unknown preset")
    assert good.read_bytes() == small_ngtc  # a failed run never touches an existing output


def test_a_rate_out_of_reach_is_one_line(tmp_path):
    crop = tmp_path / "tiny"
    crop.mkdir()
    for name in ("basecolor", "roughness"):
        Image.open(ROOT / "assets/tiles" / f"{name}.png").crop((0, 0, 40, 24)).save(crop / f"{name}.png")
    r = ngtc("compress", str(crop), "-o", str(tmp_path / "t.ngtc"), "--steps", "2", "--bpp", "8")
    assert_clean_error(r, "8.0 bits per texel is out of reach at 40x24", "the nearest file has")
    assert not (tmp_path / "t.ngtc").exists()


def test_a_warm_start_missing_for_the_preset_fails_before_any_fit(tmp_path):
    """Only some presets ship warm-start weights: asking another for one is refused before the fit (and its
    progress bar) starts, by compress and eval alike, naming the preset and the ones that have weights."""
    shipped = sorted(p.stem for p in (ROOT / "assets/warmstart").glob("*.safetensors"))
    assert shipped, "the warm start ships weights for some preset"
    out = tmp_path / "t.ngtc"
    r = ngtc("compress", str(ROOT / "assets/tiles"), "-o", str(out), "--preset", "bpp16", "--method", "warm",
             "--steps", "5")
    assert_clean_error(r, "bpp16", shipped[0], "--method grids")
    assert "step" not in r.stdout and not out.exists()
    r = ngtc("eval", str(ROOT / "assets/tiles"), "--quick", "--method", "warm", "--presets", f"{shipped[0]},bpp16",
             "--out", str(tmp_path / "report"))
    assert_clean_error(r, "bpp16")
    assert not (tmp_path / "report").exists()


def test_presets_lists_each_shape_as_trained():
    r = ngtc("presets")
    assert r.returncode == 0, r.stderr
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
            for line in r.stdout.splitlines() if line.startswith("│")}
    assert list(rows) == list(PRESETS)
    for name, p in PRESETS.items():
        g0, pairs, g1, _, coarse, falloff, lr, _, _ = rows[name]
        assert g0 == f"{p.shape.g0_channels} x {p.shape.g0_cell}, {p.shape.g0_bits}"
        assert g1 == f"{p.shape.g1_channels} x {p.shape.g1_cell}, {p.shape.g1_bits}"
        assert pairs == (str(p.g0_pairs) if p.g0_pairs else "-")
        assert coarse == ("pyramid" if p.shape.grid_pyramid else "strided") and float(falloff) == p.mip_falloff
        assert float(lr) == p.lr_synthesizer
