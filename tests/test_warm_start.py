"""The warm start: canonical channel slots, the shared weights' file, the hand-over to a material's model,
and the training augmentation that must turn normals with the surface."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from models import warm_start as ws
from models.fit import FitConfig, fit
from models.grid_pyramid import halve
from models.layout import MapInfo
from models.presets import PRESETS, preset

SHAPE = preset("tiny", 4, 4, 4, 8, hidden_dim=8, num_residual_blocks=1, positional_encoding_levels=2)
ROOT = Path(__file__).resolve().parent.parent


def info(name: str, channels: int, offset: int, constant: tuple[float, ...] | None = None) -> MapInfo:
    space = {"basecolor": "srgb", "emissive": "srgb", "normal": "normal"}.get(name, "linear")
    return MapInfo(name, channels, space, f"{name}.png", 8, offset, constant)


def rocks_like() -> list[MapInfo]:
    return [info("basecolor", 3, 0), info("normal", 2, 3), info("roughness", 1, 5),
            info("metallic", 1, -1, (0.0,)), info("height", 1, 6)]


def test_slots_follow_maps_not_offsets():
    assert ws.canonical_slots(rocks_like()) == [0, 1, 2, 3, 4, 5, 6]
    # no base colour, four scalars and an emissive colour: the fourth scalar and the colour get no slot
    layout = [info("normal", 2, 0), info("roughness", 1, 2), info("metallic", 1, 3), info("ao", 1, 4),
              info("height", 1, 5), info("emissive", 3, 6)]
    assert ws.canonical_slots(layout) == [3, 4, 5, 6, 7, None, None, None, None]


def test_to_canonical_places_channels_and_zeroes_the_rest():
    texels = torch.arange(2 * 2 * 3, dtype=torch.float32).reshape(3, 2, 2)
    out = ws.to_canonical(texels, [3, None, 6])
    assert out.shape == (ws.WARM_CHANNELS, 2, 2)
    assert torch.equal(out[3], texels[0]) and torch.equal(out[6], texels[2])
    assert out[[0, 1, 2, 4, 5, 7]].abs().sum() == 0


@pytest.fixture
def shared_file(tmp_path):
    torch.manual_seed(1)
    model = ws.build_shared(SHAPE.shape)
    ws.save(model, SHAPE, ws.weights_path(SHAPE.name, tmp_path), {"test": True})
    return tmp_path, model


def test_weights_round_trip_and_refuse_other_shapes(shared_file):
    folder, model = shared_file
    loaded = ws.load_shared(SHAPE, folder)
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k
    other = preset("tiny", 4, 4, 4, 8, hidden_dim=16, num_residual_blocks=1, positional_encoding_levels=2)
    with pytest.raises(ws.WarmStartError, match="another decoder shape"):
        ws.load_shared(other, folder)
    with pytest.raises(ws.WarmStartError, match="another decoder shape.*retrain"):  # before any fit starts
        ws.require([SHAPE, other], folder)
    ws.require([SHAPE], folder)
    with pytest.raises(ws.WarmStartError, match="no warm start for preset"):
        ws.load_shared(preset("absent", 4, 4, 4, 8), folder)
    ws.weights_path(SHAPE.name, folder).write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    with pytest.raises(ws.WarmStartError, match="not a warm-start weights file"):
        ws.load_shared(SHAPE, folder)


def test_material_model_reproduces_the_shared_model(shared_file):
    """Slotted channels decode exactly as the shared model decodes their slots; others start at their mean."""
    folder, _ = shared_file
    shared = ws.load_shared(SHAPE, folder)
    rng = np.random.default_rng(0)
    texels = rng.random((32, 32, 8), dtype=np.float32)
    layout = rocks_like() + [info("opacity", 1, 7), info("specular", 1, -1, (0.5,))]
    model = ws.CompressionModel(8, SHAPE.shape, encoder_channels=None)
    ws.warm_start(model, shared, texels, layout)
    slots = ws.canonical_slots(layout)
    assert slots == [0, 1, 2, 3, 4, 5, 6, 7]
    uv, mip = torch.rand(64, 2), torch.zeros(64)
    with torch.no_grad():
        grids = shared.construct_grids(ws.to_canonical(torch.from_numpy(texels).permute(2, 0, 1), slots), "none")
        expect = shared.texture_synthesizer(shared.grid_sampler(*grids, uv), uv, mip)
        got = model(uv, mip, quant_mode="none")
    torch.testing.assert_close(got, expect[:, slots])


def test_channel_without_slot_starts_at_its_mean(shared_file):
    folder, _ = shared_file
    # the emissive colour takes the three scalar slots: roughness, after it, has none
    layout = [info("basecolor", 3, 0), info("normal", 2, 3), info("emissive", 3, 5), info("roughness", 1, 8)]
    assert ws.canonical_slots(layout)[-1] is None
    texels = np.random.default_rng(1).random((16, 16, 9), dtype=np.float32)
    model = ws.CompressionModel(9, SHAPE.shape, encoder_channels=None)
    ws.warm_start(model, ws.load_shared(SHAPE, folder), texels, layout)
    with torch.no_grad():
        out = model(torch.rand(16, 2), torch.zeros(16), quant_mode="none")
    torch.testing.assert_close(out[:, 8], torch.full((16,), float(texels[..., 8].mean())))


def test_fit_with_warm_start_improves_on_its_start(shared_file, monkeypatch):
    folder, _ = shared_file
    monkeypatch.setattr("models.fit.load_shared", lambda p: ws.load_shared(p, folder))
    texels = np.random.default_rng(2).random((32, 32, 7), dtype=np.float32)
    mips = [texels, texels.reshape(16, 2, 16, 2, 7).mean(axis=(1, 3))]
    losses = []
    fit(mips, FitConfig(SHAPE, method="warm", steps=50, seconds=None, batch=256),
        lambda p: losses.append(p.loss), rocks_like())
    assert losses[-1] < losses[0]
    with pytest.raises(ValueError, match="layout"):
        fit(mips, FitConfig(SHAPE, method="warm", steps=1, seconds=None))


def load_training_script():
    spec = importlib.util.spec_from_file_location("train_warm_start", ROOT / "scripts" / "train_warm_start.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def normals_from_height(h: torch.Tensor) -> torch.Tensor:
    """OpenGL-convention normal XY (stored n*0.5+0.5) of a height field h (rows top to bottom)."""
    dx = (torch.roll(h, -1, -1) - torch.roll(h, 1, -1)) / 2
    d_up = -(torch.roll(h, -1, -2) - torch.roll(h, 1, -2)) / 2  # y points up: rows run down
    n = torch.stack([-dx, -d_up, torch.ones_like(h)])
    n = n / n.norm(dim=0, keepdim=True)
    return n[:2] * 0.5 + 0.5


def test_augmentation_turns_normals_with_the_surface():
    script = load_training_script()
    yy, xx = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")
    h = torch.sin(xx * 0.7) * 0.8 + torch.cos(yy * 0.4 + xx * 0.2) * 1.3 + 0.05 * xx * yy / 16
    crop = torch.zeros(1, ws.WARM_CHANNELS, 16, 16)
    crop[0, 3:5] = normals_from_height(h)
    crop[0, 5] = h
    seen = set()
    for seed in range(64):
        out = script.dihedral(crop.clone(), np.random.default_rng(seed))
        expect = normals_from_height(out[0, 5])
        torch.testing.assert_close(out[0, 3:5], expect, atol=1e-5, rtol=0)
        seen.add(out[0, 5].numpy().tobytes())
    assert len(seen) == 8  # every flip and transpose of the square is drawn


def _clamped_prefilter(grid: torch.Tensor) -> torch.Tensor:
    """[1, 6, 1] / 8 along rows and columns of a crop's grid (H, W, C), its edge cells repeated past the border."""
    for axis in (0, 1):
        p = torch.cat([grid.narrow(axis, 0, 1), grid, grid.narrow(axis, grid.shape[axis] - 1, 1)], dim=axis)
        n = grid.shape[axis]
        grid = (p.narrow(axis, 0, n) + p.narrow(axis, 1, n) * 6 + p.narrow(axis, 2, n)) / 8
    return grid


@pytest.mark.parametrize("prefilter", [False, True])
def test_training_reads_grid_pyramids_as_decoding_does(prefilter):
    """The shared model of a pyramid shape is trained on what decoding reads: past a grid's cell, level
    mip - log2(cell) of its 2x2 means (models/grid_pyramid.py), prefiltered from the cell's mip on (clamped at
    the crop's border, as crops are read); a shape without pyramids reads its grids as stored at every mip."""
    script = load_training_script()
    pyramid = preset("pyr", 2, 2, 4, 8, hidden_dim=8, num_residual_blocks=1, positional_encoding_levels=2,
                     activation="silu", grid_pyramid=True, pyramid_prefilter=prefilter)
    model = ws.build_shared(pyramid.shape)
    g0, g1 = torch.rand(2, 16, 16, 2), torch.rand(2, 4, 4, 4)
    for mip in range(5):
        read = script.grids_at_mip(model, g0, g1, mip)
        for grid, got, cell in ((g0, read[0], 2), (g1, read[1], 8)):
            expect, past = grid, mip - int(math.log2(cell))
            if prefilter and past >= 0:
                expect = torch.stack([_clamped_prefilter(e) for e in expect])
            for _ in range(max(0, past)):
                expect = torch.stack([halve(e) for e in expect])
            assert got.shape == expect.shape, (mip, cell)
            torch.testing.assert_close(got, expect)
    assert script.grids_at_mip(ws.build_shared(SHAPE.shape), g0, g1, 3)[0] is g0


def test_every_shipped_warm_start_fits_its_preset():
    """A preset's shape can change after its warm start was trained (bpp2.4's did on 2026-12-03): every file in
    assets/warmstart/ must load for the preset it is named after."""
    shipped = sorted(ws.WEIGHTS_DIR.glob("*.safetensors"))
    assert shipped
    for path in shipped:
        model = ws.load_shared(PRESETS[path.stem])
        assert model.grid_cells == (PRESETS[path.stem].shape.g0_cell, PRESETS[path.stem].shape.g1_cell)
