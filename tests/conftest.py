from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".cache" / "data"
TILES = ROOT / "assets" / "tiles"
CROP = (100, 200, 64, 48)  # x, y, w, h of small_ngtc's crop of the bundled tiles


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

    material = load_material(TILES).crop(*CROP)
    data, _ = compress_material(material, FitConfig(PRESETS["bpp2.4"], steps=30, seconds=None, batch=4096))
    return data


@pytest.fixture(scope="session")
def egl() -> None:
    """Skip unless a headless OpenGL 4.3 context (EGL) can be made."""
    moderngl = pytest.importorskip("moderngl")
    try:
        moderngl.create_standalone_context(backend="egl", require=430).release()
    except Exception as e:  # noqa: BLE001 - no EGL / no GL 4.3: skip, don't fail
        pytest.skip(f"no headless OpenGL 4.3 (EGL): {e}")


@pytest.fixture(scope="session")
def scene(tmp_path_factory, small_ngtc) -> tuple[Path, Path]:
    """small_ngtc's crop of the bundled tiles as a folder of PNGs, with its .ngtc beside it (crop.ngtc)."""
    from PIL import Image

    root = tmp_path_factory.mktemp("scene")
    folder = root / "crop"
    folder.mkdir()
    x, y, w, h = CROP
    for png in TILES.glob("*.png"):
        Image.open(png).crop((x, y, x + w, y + h)).save(folder / png.name)
    ngtc = root / "crop.ngtc"
    ngtc.write_bytes(small_ngtc)
    return folder, ngtc
