"""ASTC packings: the "fewest" plan beside "compact", its manifest record, and `ngtc eval` with several ASTC curves
(astcenc presets x packings) and the BD-rate against each."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from models import astc
from models import evaluate as ev
from models.astc import AstcError
from models.layout import MAP_CHANNELS
from models.material import MapInfo, Material, load_material

ROOT = Path(__file__).resolve().parents[1]
ROCKS = ROOT / ".cache" / "data" / "rocks"
TILES = ROOT / "assets" / "tiles"
SEVEN = (("basecolor", 3), ("normal", 2), ("roughness", 1), ("metallic", 0), ("height", 1))  # 0: constant


def _maps(spec) -> list[MapInfo]:
    """MapInfo list from (name, channels) pairs; channels 0 = a constant one-channel map."""
    maps, offset = [], 0
    for name, ch in spec:
        space = "srgb" if name in ("basecolor", "emissive") else "normal" if name == "normal" else "linear"
        if name not in MAP_CHANNELS:  # a map the loader does not name: what `plan_textures` reads of one
            maps.append(SimpleNamespace(name=name, channels=ch, offset=offset))
            offset += ch
        elif ch == 0:
            maps.append(MapInfo(name, 1, space, f"{name}.png", 8, -1, [0.5]))
        else:
            maps.append(MapInfo(name, ch, space, f"{name}.png", 8, offset, None))
            offset += ch
    return maps


def _material(spec, width: int = 20, height: int = 12, seed: int = 0) -> Material:
    maps = _maps(spec)
    channels = astc.texel_channels(maps)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    smooth = 0.5 + 0.4 * np.sin(xx[..., None] / 3 + yy[..., None] / 5 + np.arange(channels))
    texels = np.clip(smooth + 0.02 * rng.standard_normal((height, width, channels)), 0, 1).astype(np.float32)
    return Material("tiny", maps, texels)


# ------------------------------------------------------------------------------------------- the plan


def test_fewest_plan_for_seven_channels_is_two_textures():
    plan = astc.plan_textures(_maps(SEVEN), "fewest")
    assert [(s.name, s.sources, s.swizzle, s.read, s.normal_map) for s in plan] == [
        ("color", (("basecolor", 0), ("basecolor", 1), ("basecolor", 2), ("roughness", 0)), "rgba",
         ("r", "g", "b", "a"), False),
        ("normal", (("normal", 0), ("normal", 1), ("height", 0)), "rgb1", ("r", "g", "b"), False),
    ]
    # the default stays the compact plan of three textures
    assert astc.plan_textures(_maps(SEVEN)) == astc.plan_textures(_maps(SEVEN), "compact")
    assert [s.name for s in astc.plan_textures(_maps(SEVEN))] == ["color", "normal", "orm"]
    with pytest.raises(ValueError, match="unknown ASTC packing 'tight'.*compact, fewest"):
        astc.plan_textures(_maps(SEVEN), "tight")


@pytest.mark.parametrize(("spec", "textures"), [
    (SEVEN, 2),
    ((("basecolor", 3), ("normal", 2)), 2),  # the normal alone keeps astcenc's normal mode
    ((("basecolor", 3), ("opacity", 1), ("normal", 2), ("roughness", 1), ("height", 1)), 2),  # 8 channels
    ((("basecolor", 3), ("normal", 2), ("ao", 1), ("roughness", 1), ("metallic", 1), ("height", 1)), 3),
    ((("basecolor", 3), ("emissive", 3), ("normal", 2)), 3),  # 8 channels, but maps are kept whole
    ((("basecolor", 3), ("opacity", 1), ("normal", 2), ("emissive", 3), ("specular", 1), ("ao", 1),
      ("roughness", 1), ("metallic", 1), ("height", 1)), 4),
    ((("roughness", 1), ("height", 1)), 1),
    ((("normal", 2), ("mask", 2), ("curvature", 1)), 2),  # maps the plan does not know by name
])
def test_fewest_plan_uses_as_few_textures_as_whole_maps_allow(spec, textures):
    maps = _maps(spec)
    plan = astc.plan_textures(maps, "fewest")
    assert len(plan) == textures <= len(astc.plan_textures(maps, "compact"))
    assert textures >= math.ceil(astc.texel_channels(maps) / 4)
    stored = [src for s in plan for src in s.sources]  # every channel once, each map whole in one texture
    assert sorted(stored) == sorted((m.name, c) for m in maps if m.offset >= 0 for c in range(m.channels))
    for m in maps:
        assert len([s for s in plan if any(name == m.name for name, _ in s.sources)]) == (m.offset >= 0)
    for s in plan:
        assert 1 <= len(s.sources) <= 4 and len(s.read) == len(s.sources)
        assert s.normal_map == ([m for m, _ in s.sources] == ["normal", "normal"])
    assert plan == astc.plan_textures(list(maps), "fewest")  # a pure function of the layout and the name


@pytest.mark.parametrize("packing", astc.PACKINGS)
def test_pack_unpack_is_exact_and_every_channel_comes_from_where_it_was_stored(packing):
    material = _material(SEVEN, 16, 8)
    mip = material.mip_chain()[0]
    packed = astc.pack(mip, material.maps, packing)
    assert len(packed) == {"compact": 3, "fewest": 2}[packing]
    stored = {p.spec.name: astc.apply_swizzle(p.pixels, p.spec.swizzle) for p in packed}
    offsets = {m.name: m.offset for m in material.maps if m.offset >= 0}
    for p in packed:  # each source sits, as unorm8, in the stored slot it is read back from
        for (name, ch), slot in zip(p.spec.sources, p.spec.read, strict=True):
            np.testing.assert_array_equal(stored[p.spec.name][..., "rgba".index(slot)],
                                          astc.to_unorm8(mip[..., offsets[name] + ch]))
    back = astc.unpack(stored, material.maps, packing)
    np.testing.assert_array_equal(back, astc.to_unorm8(mip).astype(np.float32) / 255)
    tagged = np.broadcast_to(np.arange(7, dtype=np.float32) / 10, (4, 4, 7))
    stored = [astc.apply_swizzle(p.pixels, p.spec.swizzle) for p in astc.pack(tagged, material.maps, packing)]
    np.testing.assert_allclose(astc.unpack(stored, material.maps, packing)[0, 0], np.arange(7) / 10, atol=0.5 / 255)


# ------------------------------------------------------------------------------- manifest and cache


def test_manifest_names_the_plan_and_the_cache_keeps_packings_apart(tmp_path):
    material = _material(SEVEN)
    fewest = astc.encode_material(material, "8x8", "fast", tmp_path / "f", packing="fewest")
    m = fewest.manifest
    assert m["plan"] == "fewest" and fewest.packing == "fewest" and len(m["textures"]) == 2
    assert m["packing"] == {"color": ["basecolor.0", "basecolor.1", "basecolor.2", "roughness.0"],
                            "normal": ["normal.0", "normal.1", "height.0"]}
    assert fewest.bits_per_texel == astc.chain_bits_per_texel(20, 12, "8x8", 2)
    assert {p.name for p in (tmp_path / "f").glob("*.astc")} >= {"color_8x8_mip0.astc", "normal_8x8_mip4.astc"}
    dec = astc.decode_dir(tmp_path / "f", material.maps)  # the plan comes from the manifest
    ref = material.mip_chain()
    assert [d.shape for d in dec] == [r.shape for r in ref] and astc.psnr(dec[0], ref[0]) > 20  # garbage: ~10
    assert astc.manifest_plan(m, material.maps) == astc.plan_textures(material.maps, "fewest")
    # same folder, other packing: re-encoded, never mixed; same packing again: reused
    compact = astc.encode_material(material, "8x8", "fast", tmp_path / "f", packing="compact")
    assert not compact.reused and compact.manifest["plan"] == "compact" and len(compact.manifest["textures"]) == 3
    assert astc.encode_material(material, "8x8", "fast", tmp_path / "f").reused
    again = astc.encode_material(material, "8x8", "fast", tmp_path / "f", packing="fewest")
    assert not again.reused and again.manifest["plan"] == "fewest"
    # a manifest written before there were two packings (no "plan") is the compact plan, still reused
    legacy = astc.encode_material(material, "8x8", "fast", tmp_path / "legacy")
    manifest = json.loads((tmp_path / "legacy" / "manifest.json").read_text())
    del manifest["plan"]
    (tmp_path / "legacy" / "manifest.json").write_text(json.dumps(manifest))
    assert astc.encode_material(material, "8x8", "fast", tmp_path / "legacy").reused
    assert len(astc.decode_dir(tmp_path / "legacy", material.maps)) == len(legacy.decoded())
    # a manifest whose plan name does not match its textures is refused
    manifest["plan"] = "fewest"
    (tmp_path / "legacy" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(AstcError, match="does not match"):
        astc.decode_dir(tmp_path / "legacy", material.maps)
    assert astc.folder_name("8x8", "Medium") == "8x8_medium"
    assert astc.folder_name("8x8", "thorough", "fewest") == "8x8_thorough_fewest"


def test_fewest_on_a_real_crop_is_close_to_compact(tmp_path):
    """Rocks, 128x128 crop, 6x6 medium (measured: compact 31.75 dB at 15.40 bpp, fewest 30.79 dB at 10.27 bpp,
    mip 0, all channels): fewest costs about 1 dB at 2/3 of the bits."""
    if not ROCKS.is_dir():
        pytest.skip(f"{ROCKS} missing (run scripts/setup.sh)")
    material = load_material(ROCKS).crop(256, 256, 128, 128)
    ref = material.mip_chain()[0]
    res = {p: astc.encode_material(material, "6x6", "medium", tmp_path / p, packing=p) for p in astc.PACKINGS}
    psnr = {p: astc.psnr(r.decoded()[0], ref) for p, r in res.items()}
    assert res["fewest"].bits_per_texel == pytest.approx(res["compact"].bits_per_texel * 2 / 3)
    assert psnr["fewest"] > 29.5 and 0 < psnr["compact"] - psnr["fewest"] < 2.5, psnr


# ------------------------------------------------------------------------------------------- ngtc eval


def test_eval_options_quality_and_packing():
    opts = ev.make_options("r")
    assert opts.qualities == ("medium", "thorough") and opts.packings == ("compact", "fewest")
    assert ev.astc_curves(opts)[0] == ("medium", "compact") and len(ev.astc_curves(opts)) == 4
    quick = ev.make_options("r", quick=True)
    assert quick.qualities == ("medium",) and quick.packings == ("compact",) and quick.steps == 60
    both = ev.make_options("r", quick=True, quality="Thorough, medium", astc_packing="both")
    assert both.qualities == ("thorough", "medium") and both.packings == ("compact", "fewest")
    assert ev.make_options("r", astc_packing="fewest,compact").packings == ("fewest", "compact")
    timed = ev.make_options("r", quick=True, seconds=5)  # an explicit budget wins over --quick's 60 steps
    assert timed.steps is None and timed.seconds == 5
    with pytest.raises(ev.EvalError, match="--astc-packing: unknown packing 'tight'; valid: compact, fewest, both"):
        ev.make_options("r", astc_packing="tight")
    with pytest.raises(ev.EvalError, match="--quality: unknown astcenc preset 'best'"):
        ev.make_options("r", quality="medium,best")


def test_quick_eval_with_both_packings_and_qualities(tmp_path):
    """--quick with two astcenc presets and both packings: four ASTC curves, each in its own folders, with its own
    BD figures in report.json (the anchor's also as "bd") and report.md."""
    out = tmp_path / "report"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "viewer.cli", "eval", str(TILES), "--quick", "--quality", "medium,thorough",
           "--astc-packing", "both", "--presets", "bpp2.4", "--steps", "20", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["settings"]["qualities"] == ["medium", "thorough"]
    assert report["settings"]["packings"] == ["compact", "fewest"] and report["settings"]["quality"] == "medium"
    (m,) = report["materials"]
    labels = ["ASTC medium compact", "ASTC medium fewest", "ASTC thorough compact", "ASTC thorough fewest"]
    assert [c["curve"] for c in m["astc_curves"]] == labels and m["bd_anchor"] == labels[0]
    assert m["bd"] == m["astc_curves"][0]["bd"]
    for c in m["astc_curves"]:
        assert c["settings"] == ["6x6", "12x12"] and c["textures"] == (3 if c["packing"] == "compact" else 2)
        assert [bd["mip"] for bd in c["bd"]] == [0, 1, 2, 3, 4]
        assert all("bd_rate_percent" in bd and "bd_psnr_db" in bd and bd["note"] for bd in c["bd"])
    astc_settings = [s for s in m["settings"] if s["codec"] == "astc"]
    assert len(astc_settings) == 8
    for s in astc_settings:
        folder = out / s["folder"]
        assert folder.name == astc.folder_name(s["setting"], s["quality"], s["packing"])
        manifest = astc.load_manifest(folder)
        assert (manifest["preset"], manifest["plan"]) == (s["quality"], s["packing"])
        assert len(s["files"]) == 7 * (3 if s["packing"] == "compact" else 2)
        assert s["curve"] == f"ASTC {s['quality']} {s['packing']}"
    by = {(s["setting"], s["quality"], s["packing"]): s for s in astc_settings}
    for block in ("6x6", "12x12"):  # fewest: 2/3 of compact's bits; thorough: the same bits as medium
        assert by[(block, "medium", "fewest")]["bits_per_texel"] == pytest.approx(
            by[(block, "medium", "compact")]["bits_per_texel"] * 2 / 3)
        medium, thorough = by[(block, "medium", "compact")], by[(block, "thorough", "compact")]
        assert thorough["bits_per_texel"] == medium["bits_per_texel"]
    assert all(c["astc"] == "12x12" for c in m["compare"])  # side by side: the anchor curve's setting
    md = (out / "report.md").read_text()
    assert "BD-rate of neural against each ASTC curve" in md and "budget 20 steps per preset" in md
    for label in labels:
        assert f"| {label} |" in md
    assert "6x6 thorough fewest" in md and "against the other ASTC curves" in proc.stdout
    assert (out / "rd_tiles.png").stat().st_size > 1000
