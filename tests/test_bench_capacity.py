"""The capacity sweep's variants: typed overrides of the preset's shape and of the fit's settings."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from models import compression_model
from models.bench_capacity import run, training_mode, variant_config, variant_preset
from models.fit import training_model
from models.material import load_material
from models.presets import get_preset


def test_shape_override_makes_a_new_preset():
    base = get_preset("bpp2.4")
    chosen = variant_preset(base, "hidden_dim=64+activation=silu")
    assert (chosen.shape.hidden_dim, chosen.shape.activation) == (64, "silu")
    assert chosen.shape.g0_channels == base.shape.g0_channels
    assert chosen.name != base.name
    assert chosen.mip_falloff == base.mip_falloff != 0.45  # trains like its base (bpp2.4 spreads to 0.55)


def test_fit_only_variant_keeps_the_preset_so_the_warm_start_finds_its_weights():
    base = get_preset("bpp2.4")
    assert variant_preset(base, "method=warm+lr_grids_refine=0.02") is base


def test_fit_overrides_are_typed():
    cfg = variant_config(get_preset("bpp2.4"), 100, "method=warm+lr_grids_refine=0.02+epoch_sampling=0+batch=4096")
    assert (cfg.method, cfg.lr_grids_refine, cfg.epoch_sampling, cfg.batch) == ("warm", 0.02, False, 4096)
    assert (cfg.steps, cfg.seconds) == (100, None)


def test_a_time_budget_records_the_steps_it_reached():
    """`--seconds` (what a GPU reaches in 10 s, issue 10): a time budget instead of steps, on the device asked for
    (deterministic=0 lets CUDA's scatter-adds run atomically), and the steps each fit reached in the results."""
    cfg = variant_config(get_preset("bpp2.4"), 100, "batch=2048+deterministic=0", seconds=1.5, device="cpu")
    assert (cfg.steps, cfg.seconds, cfg.device, cfg.deterministic, cfg.batch) == (None, 1.5, "cpu", False, 2048)
    material = load_material(Path(__file__).parent.parent / "assets" / "tiles").crop(100, 200, 64, 48)
    result = run(material, "bpp2.4", "batch=2048+deterministic=0", cfg, mips=1)
    assert result["seconds_budget"] == 1.5 and result["steps"] > 0 and result["batch"] == 2048
    assert result["wall_seconds"] >= 1.5 and result["device"].startswith("cpu")


def test_a_variant_sets_its_own_step_count_for_equal_time_rows():
    cfg = variant_config(get_preset("bpp4"), 3200, "g0_cell=2+steps=4500")
    assert cfg.steps == 4500 and isinstance(cfg.steps, int)


@pytest.mark.parametrize("variant", ["no_such_field=1", "epoch_sampling=maybe"])
def test_bad_variants_are_refused(variant):
    with pytest.raises(SystemExit):
        variant_config(get_preset("bpp2.4"), 100, variant)


def test_an_invalid_shape_is_refused_by_name():
    with pytest.raises(SystemExit, match="g0_channels=3.*whole bytes"):
        variant_preset(get_preset("bpp4"), "g0_channels=3+g0_cell=2")


def test_stored_psnr_is_measured_from_the_file_and_agrees_with_the_trained_model():
    """`--stored` decodes the bytes `ngtc compress` would write (fp16 weights): on a short fit they agree with the
    trained model's float32 decode to a few hundredths of a dB."""
    material = load_material(Path(__file__).parent.parent / "assets" / "tiles").crop(100, 200, 64, 48)
    result = run(material, "bpp2.4", "base", variant_config(get_preset("bpp2.4"), 40, "batch=2048"), mips=2,
                 stored=True)
    trained, stored = result["psnr_mips_0_1"], result["psnr_stored"]
    assert len(stored) == len(trained) == 2
    assert all(abs(a - b) < 0.1 for a, b in zip(trained, stored, strict=True)), (trained, stored)


def test_a_digit_pair_variant_trains_its_pairs_and_stores_plain_channels():
    """`g0_paired` (a preset's training setting) fits G0's digit pairs; the file's 2-bit channels decode as trained."""
    chosen = variant_preset(get_preset("bpp4"), "g0_bits=2+g0_channels=8+g0_paired=0.5")
    assert (chosen.shape.g0_bits, chosen.g0_pairs) == (2, 2)
    material = load_material(Path(__file__).parent.parent / "assets" / "tiles").crop(100, 200, 64, 48)
    cfg = variant_config(chosen, 40, "batch=2048")
    assert training_model(7, cfg, torch.device("cpu")).grid_channels == (6, 8)  # 2 pairs + 4 plain channels
    result = run(material, chosen.name, "g0_paired=0.5", cfg, mips=2, stored=True)
    trained, stored = result["psnr_mips_0_1"], result["psnr_stored"]
    assert all(abs(a - b) < 0.1 for a, b in zip(trained, stored, strict=True)), (trained, stored)


def test_the_float_variant_trains_and_reads_unquantized_grids():
    """`float` (what 4-bit features cost) swaps the quantizer for the fit and the measure, then puts it back."""
    quantizer = compression_model.Quantizer
    material = load_material(Path(__file__).parent.parent / "assets" / "tiles").crop(100, 200, 64, 48)
    with training_mode("float") as mode:
        cells = torch.tensor([[0.123, -0.456]])
        assert mode == "none" and torch.equal(compression_model.Quantizer("ste", 4)(cells), cells)
    result = run(material, "bpp2.4", "float", variant_config(get_preset("bpp2.4"), 20, "batch=2048"), mips=2)
    assert len(result["psnr_mips_0_1"]) == 2 and all(p > 10 for p in result["psnr_mips_0_1"])
    assert compression_model.Quantizer is quantizer
