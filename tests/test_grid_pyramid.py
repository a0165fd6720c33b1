"""The grid pyramid (models/grid_pyramid.py): levels, their arithmetic, and how the codec reads them."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest
import torch

from models import grid_pyramid, ngtc_file
from models.compression_model import CompressionModel, decompress
from models.grid_sampler import GridSampler, bilinear, corners, grid_pos
from models.layout import MapInfo
from models.presets import preset
from models.pyramid_atlas import SPARSE_LEVELS, Pyramid, dense
from models.quantization import from_codes, to_codes

SHAPE = preset("p", 4, 2, 8, 4, activation="silu", grid_pyramid=True).shape
LAYOUT = [MapInfo("basecolor", 3, "srgb", "b.png", 8, 0), MapInfo("roughness", 1, "linear", "r.png", 8, 3)]


@pytest.mark.parametrize(("rows", "cols", "levels"), [(512, 512, 9), (512, 256, 8), (48, 40, 3), (24, 20, 2),
                                                      (1, 1, 0), (5, 8, 0), (0, 4, 0)])
def test_depth_counts_exact_halvings(rows, cols, levels):
    assert grid_pyramid.depth(rows, cols) == levels


@pytest.mark.parametrize(("mip", "cell", "levels", "level"), [(0, 2, 9, 0), (1, 2, 9, 0), (2, 2, 9, 1), (4, 2, 9, 3),
                                                              (2, 4, 9, 0), (4, 4, 9, 2), (9, 2, 3, 3), (5, 1, 9, 5)])
def test_level_is_mip_past_the_cell_clamped_to_the_pyramid(mip, cell, levels, level):
    assert grid_pyramid.level(mip, cell, levels) == level


def test_levels_from_codes_are_2x2_means_of_the_dequantized_codes():
    codes = torch.randint(0, 16, (24, 20, 6), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    levels = grid_pyramid.levels_from_codes(codes.numpy())
    assert [lv.shape for lv in levels] == [(12, 10, 6), (6, 5, 6)] and all(lv.dtype == np.float16 for lv in levels)
    x = from_codes(codes)
    for lv in levels:  # each level the float32 mean of the one before, rounded to half floats
        x = torch.nn.functional.avg_pool2d(x.permute(2, 0, 1)[None], 2)[0].permute(1, 2, 0)
        np.testing.assert_array_equal(lv, x.numpy().astype(np.float16))
    # the numpy arithmetic is the torch arithmetic, bit for bit: the GLSL upload and the PyTorch decoder agree
    assert np.array_equal(grid_pyramid.halve(from_codes(codes).numpy()), grid_pyramid.halve(from_codes(codes)).numpy())


def _halve_chain(grid: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Levels 0 .. levels by plain autograd through `halve`: the reference for training's reads."""
    out = [grid]
    for _ in range(levels):
        out.append(grid_pyramid.halve(out[-1]))
    return out


def _reference(g0, g1, uv, mip) -> torch.Tensor:
    """Each texel read from its level of a pyramid built by plain autograd (G0 cell 2 as corners, G1 cell 4)."""
    rows = []
    for i in range(len(uv)):
        feats = []
        for grid, cell, read in ((g0, 2, corners), (g1, 4, bilinear)):
            chain = _halve_chain(grid, grid_pyramid.depth(*grid.shape[:2]))
            src = chain[grid_pyramid.level(int(mip[i]), cell, len(chain) - 1)]
            feats.append(read(src, grid_pos(src, uv[i:i + 1]))[0])
        rows.append(torch.cat(feats))
    return torch.stack(rows)


def test_training_reads_the_pyramid_with_its_gradient_from_the_grid_cells():
    """Training's pyramid reads each tap of levels 1 .. SPARSE_LEVELS as the mean of its cells gathered from the
    grid: the values and the gradient of autograd through a chain of `halve`, without building the levels."""
    gen = torch.Generator().manual_seed(2)
    g0 = torch.rand(32, 32, 2, generator=gen).requires_grad_(True)
    g1 = torch.rand(16, 16, 3, generator=gen).requires_grad_(True)
    uv, mip = torch.rand(60, 2, generator=gen), torch.arange(60).remainder(SPARSE_LEVELS + 2).float()
    sampler = GridSampler("corners", (2, 4))
    feats = sampler(g0, g1, uv, mip=mip, pyramids=(Pyramid.of(g0), Pyramid.of(g1)))
    weights = torch.rand(feats.shape, generator=gen)
    (feats * weights).sum().backward()
    grads = g0.grad.clone(), g1.grad.clone()
    g0.grad = g1.grad = None
    ref = _reference(g0, g1, uv, mip)
    (ref * weights).sum().backward()
    torch.testing.assert_close(feats, ref)
    torch.testing.assert_close(grads, (g0.grad, g1.grad))


def test_training_reads_deep_levels_from_the_atlas_without_gradient():
    """Past SPARSE_LEVELS a texel reads the dense atlas: the same values, and no gradient into the grid."""
    assert SPARSE_LEVELS < 4
    gen = torch.Generator().manual_seed(3)
    g0 = torch.rand(64, 64, 2, generator=gen).requires_grad_(True)
    g1 = torch.rand(32, 32, 2, generator=gen)
    uv, mip = torch.rand(20, 2, generator=gen), torch.full((20,), 6.0)  # G0 level 5, G1 level 4
    feats = GridSampler("corners", (2, 4))(g0, g1, uv, mip=mip, pyramids=(Pyramid.of(g0), Pyramid.of(g1)))
    torch.testing.assert_close(feats, _reference(g0.detach(), g1, uv, mip))
    assert not feats.requires_grad


def test_quantized_training_pyramid_is_the_stored_codes_pyramid():
    grid = torch.rand(8, 8, 2) * 2 - 1
    stored = Pyramid.from_codes(to_codes(grid).numpy())
    assert torch.equal(dense(grid, quantized=True).atlas.half().float(), stored.atlas)
    assert not torch.equal(dense(grid).atlas.half().float(), stored.atlas)


def test_sampler_reads_each_texel_from_its_level():
    """Texels of mips 0-4 on a cell-2 grid, the pyramid read as the decoder does (all from the atlas): mips 0-1
    read the grid, mip m >= 2 reads level m - 1, each with the same bilinear (or corners) read, and the answer
    comes back in the texels' order."""
    gen = torch.Generator().manual_seed(1)
    g0, g1 = torch.rand(16, 16, 2, generator=gen), torch.rand(8, 8, 2, generator=gen)
    pyramids = (dense(g0), dense(g1))
    uv = torch.rand(50, 2, generator=gen)
    mip = torch.randint(0, 5, (50,), generator=gen).float()
    feats = GridSampler("corners", (2, 4))(g0, g1, uv, mip=mip, pyramids=pyramids)
    for i in range(50):
        m = int(mip[i])
        for grid, pyramid, cell, read, cols in ((g0, pyramids[0], 2, corners, slice(0, 8)),
                                                (g1, pyramids[1], 4, bilinear, slice(8, 10))):
            lv = grid_pyramid.level(m, cell, pyramid.levels)
            src = grid if lv == 0 else pyramid.level(lv)
            torch.testing.assert_close(feats[i, cols], read(src, grid_pos(src, uv[i:i + 1]))[0])
    plain = GridSampler("corners", (2, 4))(g0, g1, uv)
    coarse = mip >= 2
    assert torch.equal(feats[~coarse], plain[~coarse]) and not torch.allclose(feats[coarse], plain[coarse])


def test_stored_decoder_reads_what_training_reads_when_straight_through():
    """The model trained with straight-through quantization and the decoder rebuilt from its file see the same
    pyramids (of the quantized grids), so they decode alike at every mip; the noise stand-in does not."""
    torch.manual_seed(0)
    model = CompressionModel(4, SHAPE, encoder_channels=None)
    model.init_grids(64, 48)
    with torch.no_grad():  # fp16 weights, so that storing them changes nothing
        for p in model.texture_synthesizer.parameters():
            p.copy_(p.half().float())
    uv = torch.rand(400, 2)
    mip = torch.arange(400).remainder(7).float()
    ct = ngtc_file.from_bytes(ngtc_file.to_bytes(model.compress(64, 48, 7, LAYOUT)))
    decoder = decompress(ct)
    assert decoder.pyramids_from_codes[0].shapes == ((12, 16), (6, 8), (3, 4))
    with torch.no_grad():
        stored = decoder(uv, mip, quant_mode="none")
        torch.testing.assert_close(model(uv, mip, quant_mode="ste"), stored, atol=1e-5, rtol=0)
        noisy = model(uv, mip, quant_mode="noise")
    assert (noisy - stored)[mip >= 2].abs().max() > 1e-4


def test_pyramid_flag_is_stored_and_absent_means_off():
    model = CompressionModel(4, SHAPE, encoder_channels=None)
    model.init_grids(32, 32)
    ct = model.compress(32, 32, 6, LAYOUT)
    assert ngtc_file.from_bytes(ngtc_file.to_bytes(ct)).shape.grid_pyramid is True
    old = msgspec.structs.replace(SHAPE, grid_pyramid=False).to_dict()
    old.pop("grid_pyramid")  # a file written before the flag existed
    assert msgspec.convert(old, type(SHAPE)).grid_pyramid is False
