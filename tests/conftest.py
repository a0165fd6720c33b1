from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".cache" / "data"
TILES = ROOT / "assets" / "tiles"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (DATA / "rocks").is_dir():
        pytest.skip(f"real test data missing: run scripts/fetch_data.sh (expected {DATA})")
    return DATA


@pytest.fixture(scope="session")
def small_ngtc() -> bytes:
    """A real material (a 64x48 crop of the bundled tiles) compressed briefly, as stored bytes."""
    from models.codec import compress_material
    from models.fit import FitConfig
    from models.material import load_material
    from models.presets import PRESETS

    material = load_material(TILES).crop(100, 200, 64, 48)
    data, _ = compress_material(material, FitConfig(PRESETS["bpp2.4"], steps=30, seconds=None, batch=4096))
    return data
