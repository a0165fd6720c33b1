"""The training-step profile: each part of fit's grids phase, timed over real steps."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.bench_speed import PARTS, parts_table, preset_of, step_parts
from models.material import load_material

ROOT = Path(__file__).resolve().parents[1]


def test_every_part_of_a_step_is_timed():
    mips = load_material(ROOT / "assets/tiles").crop(0, 0, 32, 32).mip_chain()
    parts = step_parts(mips, "bpp8", steps=3)
    assert tuple(parts) == PARTS
    assert all(ms > 0 for ms in parts.values())


def test_the_table_shows_each_part_and_the_total():
    parts = dict(zip(PARTS, (1.0, 2.0, 3.0, 4.0, 0.5), strict=True))
    table = parts_table([{"preset": "bpp8", "step_ms": parts}])
    total = table.columns[-1]
    assert list(total.cells) == ["10.50"]
    assert [c.header for c in table.columns[1:-1]] == list(PARTS)


def test_a_preset_with_shape_overrides_is_timed_with_that_shape():
    chosen = preset_of("bpp4:g0_bits=2+g0_channels=8")
    assert (chosen.shape.g0_bits, chosen.shape.g0_channels) == (2, 8)
    assert chosen.shape.g1_channels == preset_of("bpp4").shape.g1_channels
    with pytest.raises(SystemExit, match="unknown preset 'bpp5'"):
        preset_of("bpp5")


def test_a_speed_preset_can_drop_the_digit_pairs_to_time_the_shape_before_them():
    before = preset_of("bpp4:g0_bits=4+g0_channels=4+g0_paired=0")
    assert (before.shape.g0_bits, before.shape.g0_channels, before.g0_pairs) == (4, 4, 0)
    assert preset_of("bpp4").g0_pairs > 0


def test_a_fit_setting_in_a_speed_preset_is_refused_rather_than_timing_the_base():
    with pytest.raises(SystemExit, match="not batch"):
        preset_of("bpp4:batch=4096")
