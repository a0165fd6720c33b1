"""The training-step profile: each part of fit's grids phase, timed over real steps."""

from __future__ import annotations

import numpy as np

from models.bench_speed import PARTS, parts_table, step_parts


def small_chain(size: int = 32, channels: int = 5) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    mips = [rng.random((size, size, channels), dtype=np.float32)]
    while mips[-1].shape[0] > 1:
        m = mips[-1]
        mips.append(0.25 * (m[0::2, 0::2] + m[1::2, 0::2] + m[0::2, 1::2] + m[1::2, 1::2]))
    return mips


def test_every_part_of_a_step_is_timed():
    parts = step_parts(small_chain(), "bpp8", steps=3)
    assert tuple(parts) == PARTS
    assert all(ms > 0 for ms in parts.values())


def test_the_table_shows_each_part_and_the_total():
    parts = dict(zip(PARTS, (1.0, 2.0, 3.0, 4.0, 0.5, 0.25), strict=True))
    table = parts_table([{"preset": "bpp8", "step_ms": parts}])
    total = table.columns[-1]
    assert list(total.cells) == ["10.75"]
    assert [c.header for c in table.columns[1:-1]] == list(PARTS)
