"""`ngtc bench`: every mode timed on the sphere, fragments counted, JSON written; bad options refused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_env import cli_env

ROOT = Path(__file__).resolve().parents[1]
SIZE = (64, 48)

pytestmark = pytest.mark.usefixtures("egl")  # conftest: skip without headless OpenGL 4.3


def test_bench_times_every_mode(scene, tmp_path, monkeypatch):
    from viewer.bench import bench_modes, run_bench

    monkeypatch.setenv("NGTC_CACHE", str(tmp_path / "cache"))
    # max_seconds far off: on a loaded machine one 64x48 trilinear frame once took over 60 s, and the bench stopped
    doc = run_bench(scene[0], scene[1], None, SIZE, ["12x12"], frames=2, warmup=1, max_seconds=3600,
                    viewer_frames=True)
    modes = doc["modes"]
    assert list(modes) == bench_modes(["12x12"])
    pixels = SIZE[0] * SIZE[1]
    for mode, r in modes.items():
        assert r["frames"] == 2 and len(r["wall_ms"]) == len(r["query_ms"]) == 2, mode
        assert 0 < r["ms_min"] <= r["ms_median"] <= r["ms_p95"], mode
        # the sphere fills the frame's height: most of the pixels, each shaded once (depth pre-pass)
        assert 0.4 * pixels < r["fragments"] <= pixels, mode
    assert modes["astc-12x12"]["x_astc"] == 1.0
    assert modes["neural-trilinear"]["decodes_per_fragment"] == 8
    assert modes["neural-stochastic"]["texel_decodes_per_s"] > 0
    # 2 x the multiply-adds of input layer, residual blocks and output layer
    from models import ngtc_file

    ct = ngtc_file.load(scene[1])
    ins, hidden, blocks = ct.weights["input.weight"].shape[1], ct.shape.hidden_dim, ct.shape.num_residual_blocks
    assert doc["flops_per_decode"] == 2 * (ins * hidden + blocks * hidden * hidden + hidden * ct.out_channels)
    # Decodes/s and GFLOP/s recomputed from the raw measurements the JSON holds, not with the bench's own
    # formula: the fragments one frame shaded, the texels a fragment decodes (README: trilinear the 4 texels of
    # both mips, stochastic 1), the median frame time by the clock a software rasterizer needs (glFinish to
    # glFinish: its timer queries end before it rasterizes), and FLOPs counted from the stored weight matrices.
    from viewer.neural_gl import SOFTWARE_RENDERERS

    software = any(name in doc["renderer"].lower() for name in SOFTWARE_RENDERERS)
    assert doc["clock"] == ("wall" if software else "query"), doc["renderer"]
    flops = 2 * sum(w.size for name, w in ct.weights.items() if name.endswith(".weight"))
    assert doc["flops_per_decode"] == flops
    for mode, per_fragment in (("neural-trilinear", 8), ("neural-stochastic", 1)):
        r = modes[mode]
        rate = r["fragments"] * per_fragment / (float(np.median(r[f"{doc['clock']}_ms"])) / 1e3)
        assert r["texel_decodes_per_s"] == pytest.approx(rate, rel=1e-3), mode
        assert r["decoder_gflops"] == pytest.approx(rate * flops / 1e9, abs=0.006), mode
    assert modes["reference"]["texel_decodes_per_s"] is None
    # on sample, the neural modes hold only grids and weights; decoded on load adds the RGBA8 chains
    on_sample = modes["neural-trilinear"]["gpu_bytes"]
    assert on_sample == modes["neural-stochastic"]["gpu_bytes"] < modes["reference"]["gpu_bytes"]
    assert modes["neural"]["gpu_bytes"] == on_sample + modes["reference"]["gpu_bytes"]
    # transcoded on load: exactly the ASTC mode's bytes; its frame against that mode's in the same run; its PSNR
    # and the plain decode's against the reference
    t = doc["transcoded"]["neural-astc-12x12"]
    assert list(doc["transcoded"]) == ["neural-astc-12x12"] and t["astc_mode"] == "astc-12x12"
    assert t["gpu_bytes"] == t["astc_gpu_bytes"] == modes["astc-12x12"]["gpu_bytes"] and t["gpu_bytes_equal"]
    clock = f"{doc['clock']}_ms"
    ratio = np.median(modes["neural-astc-12x12"][clock]) / np.median(modes["astc-12x12"][clock])
    assert t["x_astc_same_block"] == pytest.approx(ratio, abs=1e-3) and t["meets_target"] == (ratio <= 1.1)
    assert len(t["psnr_transcoded"]) == len(t["psnr_plain_decode"]) == len(t["extra_loss_db"]) == 7
    assert t["extra_loss_db"][0] == pytest.approx(t["psnr_plain_decode"][0] - t["psnr_transcoded"][0], abs=2e-3)
    assert doc["decode_on_load"]["texels"] == sum(max(64 >> m, 1) * max(48 >> m, 1) for m in range(7))
    assert doc["decode_on_load"]["seconds"] > 0
    # decode on feedback: cold frames, a full orbit, its bytes by part (this 64x48 crop fits one tile: no pages)
    f = doc["feedback"]
    assert f["cold"]["frames"] >= 1 and f["orbit"]["frames"] == 36 and f["pages"] == 0
    assert f["gpu_bytes"] == sum(f["gpu_bytes_parts"].values()) == modes["neural-feedback"]["gpu_bytes"]
    assert f["x_astc"] == pytest.approx(modes["neural-feedback"]["ms_median"] / modes["astc-12x12"]["ms_median"],
                                        abs=1e-3)
    # within one tile the cache holds nothing: the steady view is decode on load's, texel for texel
    assert f["steady_image"]["psnr_vs_decoded_on_load"] is None and f["steady_image"]["pixels_differing"] == 0
    assert f["steady_image"]["pixels"] > 0.4 * pixels
    # back to back: ASTC and the feedback mode reading its requests at once and a frame later, medians and ratios
    p = f["pipelined"]
    assert set(p["ms"]) == {"astc", "lag0", "lag1"} and all(len(v) == p["rounds"] for v in p["ms"].values())
    assert p["async_over_sync"] == pytest.approx(p["ms_median"]["lag1"] / p["ms_median"]["lag0"], abs=2e-3)
    assert p["x_astc"]["lag1"] == pytest.approx(p["ms_median"]["lag1"] / p["ms_median"]["astc"], abs=2e-3)
    assert f["cache_mib"] > 0 and f["default_budget"]
    # --viewer: the viewer's whole frame (panel included) in every mode, by the wall clock
    assert list(doc["viewer"]) == list(modes)
    for mode, r in doc["viewer"].items():
        assert r["frames"] == 2 and 0 < r["ms_median"] <= r["ms_p95"], mode
        # fps is rounded to 2 decimals: at llvmpipe's ~0.6 fps that alone is up to 0.8%
        assert r["fps"] == pytest.approx(1e3 / r["ms_median"], rel=1e-3, abs=0.0051), mode


def ngtc(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = cli_env(cwd)
    return subprocess.run([sys.executable, "-m", "viewer.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env=env)


def test_bench_cli_writes_json_and_table(scene, tmp_path):
    out = tmp_path / "results" / "bench.json"
    r = ngtc("bench", str(scene[0]), "--size", "48x32", "--frames", "1", "--warmup", "0", "--astc", "12x12",
             "--viewer", "-o", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    assert doc["size"] == [48, 32] and set(doc["modes"]) >= {"reference", "neural-stochastic"}
    assert "neural-trilinear" in r.stdout and "decode on load" in r.stdout
    assert "ngtc view's whole frame" in r.stdout and set(doc["viewer"]) == set(doc["modes"])
    assert "neural-astc-12x12: " in r.stdout and "x astc-12x12 (target <= 1.1" in r.stdout


def test_bench_modes_subset(scene, tmp_path, monkeypatch):
    """--modes: only those (in the bench's order), with the ASTC mode a transcoded one is measured against."""
    from viewer.bench import bench_modes, run_bench

    assert bench_modes(["4x4", "12x12"], ["neural-astc-4x4", "reference"]) == ["reference", "astc-4x4",
                                                                                "neural-astc-4x4"]
    monkeypatch.setenv("NGTC_CACHE", str(tmp_path / "cache"))
    doc = run_bench(scene[0], scene[1], None, SIZE, ["12x12"], frames=1, warmup=0, max_seconds=60,
                    only=["neural-feedback", "astc-12x12"])
    assert list(doc["modes"]) == ["astc-12x12", "neural-feedback"] and doc["feedback"]["x_astc"] is not None
    assert doc["transcoded"] == {} and doc["decode_on_load"]["seconds"] > 0


@pytest.mark.parametrize("args, message", [
    (["--modes", "astc-12x12,neural-bogus"], "--modes astc-12x12,neural-bogus: choose from"),
    (["--modes", ","], "--modes : choose from"),
    (["--astc", "7x7"], "unknown ASTC block size '7x7'"),
    (["--frames", "0"], "--frames must be at least 1"),
    (["--size", "10x10"], "width and height must be 16"),
])
def test_bench_cli_bad_options(scene, tmp_path, args, message):
    r = ngtc("bench", str(scene[0]), *args, cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], r.stderr


def test_decoder_compute_throughput(scene, tmp_path):
    """python -m viewer.bench_decode: texels decoded per second in compute and GFLOP/s from the measured batches;
    bad input in one line."""
    from viewer.bench_decode import main

    out = tmp_path / "decode.json"
    assert main([str(scene[1]), "--repeats", "2", "--peak-tflops", "1", "--variants", "default,ssbo", "-o",
                 str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["size"] == [64, 48] and doc["texels_per_run"] == 64 * 48 and len(doc["batch_seconds"]) == 2
    default, ssbo = doc["variants"]  # each variant timed as its own upload; the top level is the first's
    assert (default["variant"], ssbo["variant"], ssbo["weights_block"]) == ("default", "ssbo", "ssbo")
    assert default["weights_block"] == ("ubo" if doc["software"] else "ssbo")
    assert doc["texels_per_s"] == default["texels_per_s"] and ssbo["texels_per_s"] > 0
    rate = doc["texels_per_run"] * doc["runs_per_batch"] / float(np.median(doc["batch_seconds"]))
    assert doc["texels_per_s"] == pytest.approx(rate, rel=1e-3)
    assert doc["gflops"] == pytest.approx(rate * doc["flops_per_decode"] / 1e9, rel=1e-3, abs=1e-3)
    assert doc["of_peak"] == pytest.approx(doc["gflops"] / 1e3, rel=1e-2, abs=1e-5)
    r = subprocess.run([sys.executable, "-m", "viewer.bench_decode", str(scene[1]), "--mip", "9", "-o",
                        str(tmp_path / "x.json")], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 2 and r.stderr.strip() == "bench_decode: error: --mip 9: crop.ngtc has mips 0 .. 6"
    r = subprocess.run([sys.executable, "-m", "viewer.bench_decode", str(scene[1]), "--variants", "default,fast", "-o",
                        str(tmp_path / "x.json")], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 2 and r.stderr.strip() == ("bench_decode: error: --variants default,fast: choose from "
                                                      "default, ubo, ssbo, no-unroll")
    assert not (tmp_path / "x.json").exists()


def test_weights_block_by_renderer():
    """A GPU reads the decoder's weights from a storage buffer (faster on the H200), a software renderer from a
    uniform block where they fit (faster on llvmpipe), and from a storage buffer where they do not."""
    from viewer.neural_gl import default_weights_block

    class Ctx:
        def __init__(self, renderer: str) -> None:
            self.info = {"GL_RENDERER": renderer, "GL_MAX_UNIFORM_BLOCK_SIZE": 65536}

    assert default_weights_block(Ctx("NVIDIA H200/PCIe/SSE2"), 30_000) == "ssbo"
    assert default_weights_block(Ctx("llvmpipe (LLVM 15.0.6, 256 bits)"), 30_000) == "ubo"
    assert default_weights_block(Ctx("llvmpipe (LLVM 15.0.6, 256 bits)"), 70_000) == "ssbo"
