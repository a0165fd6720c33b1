"""Hostile `.ngtc` files: each one found by fuzzing the bundled file (checksum resealed, so only validation
stands in the way) is refused at load in one line naming the file, by the library and by every command."""

from __future__ import annotations

import os
import stat
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from ngtc_mutate import DELETE, build, split, with_meta

from models import atomic, ngtc_file
from models.ngtc_file import NgtcError
from viewer import cli

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = (ROOT / "assets" / "tiles.ngtc").read_bytes()

# (what, metadata path, new value, words the one-line error must contain)
EXAMPLES = [
    ("map name with ../", ("layout", 0, "name"), "../basecolor", "layout"),
    ("map name an absolute path", ("layout", 0, "name"), "/tmp/x/pwned", "layout"),
    ("2**31 residual blocks", ("synthesizer", "num_residual_blocks"), 2**31, "num_residual_blocks"),
    ("negative residual blocks", ("synthesizer", "num_residual_blocks"), -1, "num_residual_blocks"),
    ("width 2**31", ("width",), 2**31, "width"),
    ("float grid channels", ("synthesizer", "g0_channels"), 8.0, "g0_channels"),
    ("float PE levels", ("synthesizer", "positional_encoding_levels"), 10.5, "positional_encoding_levels"),
    ("negative PE levels", ("synthesizer", "positional_encoding_levels"), -10, "positional_encoding_levels"),
    ("negative cell", ("synthesizer", "g0_cell"), -4096, "g0_cell"),
    ("bool hidden width", ("synthesizer", "hidden_dim"), True, "hidden_dim"),
    ("unknown activation", ("synthesizer", "activation"), "gelu", "activation"),
    ("constant map of 2**53 channels", ("layout", 3, "channels"), 2**53, "channels"),
    ("layout entry without a key", ("layout", 1, "channels"), DELETE, "channels"),
    ("layout entry with an extra key", ("layout", 1, "extra"), 1, "extra"),
    ("non-string map name", ("layout", 2, "name"), 7, "name"),
    ("non-string color space", ("layout", 2, "color_space"), ["linear"], "color_space"),
    ("map renamed to one of other channels", ("layout", 2, "name"), "basecolor", "channels"),
    ("map renamed to a duplicate", ("layout", 4, "name"), "roughness", "roughness"),
    ("offset as a string", ("layout", 2, "offset"), "5", "offset"),
    ("offset inconsistent", ("layout", 2, "offset"), 4, "offset"),
    ("source with an escape sequence", ("layout", 0, "source"), "x\x1b[31m.png", "control characters"),
    ("material name with a newline", ("info", "material"), "a\nb", "control characters"),
    ("PSNR as a string", ("info", "quality", "psnr", 0), "45", "psnr"),
]


@pytest.mark.parametrize("what, path, value, words", EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_example_is_refused_at_load_in_one_line(what, path, value, words):
    data = with_meta(BUNDLED, path, value)
    start = time.perf_counter()
    with pytest.raises(NgtcError) as e:
        ngtc_file.from_bytes(data, "hostile.ngtc")
    assert time.perf_counter() - start < 1.0, "validation must not loop or allocate on a field's say-so"
    msg = str(e.value)
    assert msg.startswith("hostile.ngtc: ") and "\n" not in msg and words in msg, msg


def test_a_huge_texture_from_a_tiny_grid_is_refused():
    """8192 x 8192 texels from one 8192-texel cell: the cell bound refuses it before any decode could hang."""
    parts = split(BUNDLED)
    parts.meta.update(width=8192, height=8192, mips=14)
    parts.meta["synthesizer"].update(g0_cell=8192, g1_cell=8192)
    parts.meta["grids"] = {"g0": [1, 1, 8], "g1": [1, 1, 16]}
    with pytest.raises(NgtcError, match="g0_cell"):
        ngtc_file.from_bytes(build(parts), "huge.ngtc")


def test_reserved_header_bytes_must_be_zero():
    with pytest.raises(NgtcError, match="reserved header bytes"):
        ngtc_file.from_bytes(build(split(BUNDLED), reserved=1), "r.ngtc")


@pytest.mark.parametrize("text, words", [("[" * 100_000 + "]" * 100_000, "nested too deeply"),
                                          ('{"width": NaN}', "NaN is not allowed"),
                                          ("{", "not valid JSON")])
def test_metadata_that_is_not_a_document(text, words):
    with pytest.raises(NgtcError, match=words):
        ngtc_file.from_bytes(build(split(BUNDLED), meta_text=text), "j.ngtc")


def test_tensor_table_is_checked_before_tensors_are_read():
    parts = split(BUNDLED)
    parts.table["g0"]["shape"] = [1 << 20, 1 << 20, 4]
    with pytest.raises(NgtcError, match="tensor g0 is U8"):
        ngtc_file.from_bytes(build(parts), "t.ngtc")
    parts = split(BUNDLED)
    parts.table["extra"] = dict(parts.table["g0"])
    with pytest.raises(NgtcError, match="unexpected tensor"):
        ngtc_file.from_bytes(build(parts), "t.ngtc")


def test_the_writer_refuses_what_the_reader_would():
    ct = ngtc_file.from_bytes(BUNDLED)
    ct.info.material = "bad\x07name"
    with pytest.raises(NgtcError, match="cannot store an invalid texture"):
        ngtc_file.to_bytes(ct)


def run_cli(monkeypatch, capsys, *argv: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["ngtc", *argv])
    with pytest.raises(SystemExit) as e:
        cli.main()
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


@pytest.mark.parametrize("what, path, value, words", EXAMPLES[:4] + EXAMPLES[12:19], ids=[
    e[0] for e in EXAMPLES[:4] + EXAMPLES[12:19]])
def test_commands_report_hostile_files_in_one_line(tmp_path, monkeypatch, capsys, what, path, value, words):
    bad = tmp_path / "in" / "bad.ngtc"
    bad.parent.mkdir()
    bad.write_bytes(with_meta(BUNDLED, path, value))
    out = tmp_path / "in" / "out"
    for argv in (("info", str(bad)), ("decode", str(bad), "-o", str(out))):
        code, stdout, stderr = run_cli(monkeypatch, capsys, *argv)
        lines = stderr.strip().splitlines()
        assert code == 2 and len(lines) == 1 and lines[0].startswith(f"ngtc: error: {bad}: "), (argv, stderr)
        assert "Traceback" not in stderr + stdout
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["bad.ngtc", "in"]  # nothing written anywhere


def test_decode_writes_only_inside_the_output_folder(tmp_path, monkeypatch, capsys):
    src = tmp_path / "t.ngtc"
    src.write_bytes(BUNDLED)
    before = set(tmp_path.rglob("*"))
    out = tmp_path / "out"
    code, _, err = run_cli(monkeypatch, capsys, "decode", str(src), "-o", str(out), "--mip", "6")
    assert code == 0, err
    written = set(tmp_path.rglob("*")) - before
    assert written == {out, *out.iterdir()} and all(p.parent == out for p in out.iterdir())
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{m['name']}_mip6.png" for m in split(BUNDLED).meta["layout"])


def test_internal_bugs_say_so_with_a_traceback(monkeypatch, capsys):
    def broken(*_a, **_k):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(ngtc_file, "load", broken)
    code, _, err = run_cli(monkeypatch, capsys, "info", "x.ngtc")
    assert code == 70 and "internal error (a bug in ngtc" in err and "Traceback" in err


def test_odd_names_print_safely(tmp_path, monkeypatch, capsys):
    name = tmp_path / "bad\x1b[31m\udcff.ngtc"
    code, _, err = run_cli(monkeypatch, capsys, "info", os.fsdecode(name))
    assert code == 2 and "\x1b" not in err and "\\x1b" in err and "no such file" in err


def test_atomic_writes_follow_the_umask_and_keep_a_replaced_files_mode(tmp_path):
    old = os.umask(0o027)
    try:
        atomic.write_atomic(tmp_path / "new.bin", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.bin").stat().st_mode) == 0o640
    kept = tmp_path / "kept.bin"
    kept.write_bytes(b"old")
    kept.chmod(0o600)
    atomic.write_atomic(kept, b"new")
    assert kept.read_bytes() == b"new" and stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.bin", "new.bin"]


@pytest.mark.parametrize("shape", [
    dict(g0_channels=2, g0_cell=64, g1_channels=2, g1_cell=64, hidden_dim=1, num_residual_blocks=0,
         positional_encoding_levels=0),
    dict(g0_channels=64, g0_cell=1, g1_channels=64, g1_cell=1, hidden_dim=128, num_residual_blocks=16,
         positional_encoding_levels=16, g0_sampling="bilinear"),
], ids=["smallest", "largest"])
def test_edge_shapes_within_the_bounds_store_load_and_decode(shape):
    """The bounds are the decoders' own: a file at either end is written, read, decoded and prepared."""
    import torch

    from models.compression_model import CompressionModel
    from models.decoder import NeuralTexture
    from models.decoder_shape import decoder_shape
    from models.layout import MapInfo
    from viewer.neural_gl import check_limits, decoder_defines

    model = CompressionModel(1, decoder_shape(**shape), encoder_channels=None)
    model.init_grids(3, 1)
    ct = model.compress(3, 1, 2, [MapInfo("roughness", 1, "linear", "r.png", 8, 0)])
    back = ngtc_file.from_bytes(ngtc_file.to_bytes(ct), "edge.ngtc")
    texels = NeuralTexture(back, "cpu").decode_mip(0)
    assert texels.shape == (1, 3, 1) and np.isfinite(texels).all()
    check_limits(back, "edge.ngtc")
    assert decoder_defines(back)["NGTC_IN_DIM"] == str(back.shape.in_dim)
    assert torch.is_tensor(model.grids[0])


def test_reading_a_file_and_the_viewers_gpu_path_need_no_torch():
    """The format layer, `ngtc info` and the viewer's on-sample path import and run with torch unavailable."""
    import subprocess

    code = ("import sys; sys.modules['torch'] = None\n"
            "import viewer.app, viewer.bench, viewer.materials_gl, viewer.neural_gl, viewer.renderer\n"
            "from viewer import cli\n"
            f"sys.argv = ['ngtc', 'info', {str(ROOT / 'assets' / 'tiles.ngtc')!r}]\n"
            "cli.main()\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "G0 256x256x8" in r.stdout and "basecolor" in r.stdout
