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
from models.pyramid_atlas import SPARSE_LEVELS, Pyramid, deep_levels, dense
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


@pytest.mark.parametrize(("mip", "cell", "levels", "level"), [(0, 2, 10, 0), (1, 2, 10, 1), (2, 2, 10, 2),
                                                              (2, 4, 10, 1), (1, 4, 10, 0), (9, 2, 4, 4),
                                                              (0, 1, 10, 1)])
def test_prefiltered_level_starts_at_the_cell_mip(mip, cell, levels, level):
    """With the prefilter, level 1 is the filtered grid itself, read from the mip of the cell on."""
    assert grid_pyramid.level(mip, cell, levels, prefilter=True) == level


def test_prefilter_is_the_mean_of_the_bilinear_field_over_each_cell():
    """[1, 6, 1] / 8 along each axis is the exact mean of the grid's bilinear interpolant (cell values at cell
    centres, wrapping) over each cell: checked against the field sampled on a fine raster (midpoint rule)."""
    gen = torch.Generator().manual_seed(4)
    grid = torch.rand(6, 5, 2, generator=gen)
    n = 64  # samples per cell and axis
    ys, xs = torch.meshgrid(torch.arange(6 * n), torch.arange(5 * n), indexing="ij")
    pos = torch.stack([(xs.reshape(-1) + 0.5) / n - 0.5, (ys.reshape(-1) + 0.5) / n - 0.5], dim=-1)
    field = bilinear(grid, pos).reshape(6, n, 5, n, 2)
    torch.testing.assert_close(grid_pyramid.prefiltered(grid), field.mean(dim=(1, 3)), atol=1e-5, rtol=0)
    # numpy and torch bit for bit, as for `halve`
    assert np.array_equal(grid_pyramid.prefiltered(grid.numpy()), grid_pyramid.prefiltered(grid).numpy())
    for side in (1, 2, 4, 8):  # a level's footprint weights sum to 1 and are the box of the prefiltered grid
        assert sum(grid_pyramid.prefilter_weights(side)) == pytest.approx(1.0)


def test_prefiltered_levels_from_codes_start_with_the_filtered_grid():
    codes = torch.randint(0, 16, (24, 20, 6), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    levels = grid_pyramid.levels_from_codes(codes.numpy(), prefilter=True)
    assert [lv.shape[:2] for lv in levels] == [(24, 20), (12, 10), (6, 5)]
    x = grid_pyramid.prefiltered(from_codes(codes).numpy())
    np.testing.assert_array_equal(levels[0], x)  # float32: the GLSL decoder computes it from the codes
    assert levels[0].dtype == np.float32 and levels[1].dtype == np.float16
    np.testing.assert_array_equal(levels[2], grid_pyramid.halve(grid_pyramid.halve(x)).astype(np.float16))


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


def _halve_chain(grid: torch.Tensor, levels: int, prefilter: bool = False) -> list[torch.Tensor]:
    """Levels 0 .. levels by plain autograd through `prefiltered` and `halve`: the reference for training's reads."""
    out = [grid, grid_pyramid.prefiltered(grid)] if prefilter else [grid]
    while len(out) <= levels:
        out.append(grid_pyramid.halve(out[-1]))
    return out


def _reference(g0, g1, uv, mip, prefilter: bool = False) -> torch.Tensor:
    """Each texel read from its level of a pyramid built by plain autograd (G0 cell 2 as corners, G1 cell 4)."""
    rows = []
    for i in range(len(uv)):
        feats = []
        for grid, cell, read in ((g0, 2, corners), (g1, 4, bilinear)):
            chain = _halve_chain(grid, grid_pyramid.levels(*grid.shape[:2], prefilter), prefilter)
            src = chain[grid_pyramid.level(int(mip[i]), cell, len(chain) - 1, prefilter)]
            feats.append(read(src, grid_pos(src, uv[i:i + 1]))[0])
        rows.append(torch.cat(feats))
    return torch.stack(rows)


def _texel_centres(gen: torch.Generator, mip: torch.Tensor, size: int) -> torch.Tensor:
    """uv of a random texel centre of each texel's mip on a size x size texture."""
    side = (size / torch.exp2(mip)).long()
    xy = (torch.rand(len(mip), 2, generator=gen) * side[:, None]).floor()
    return (xy + 0.5) / side[:, None]


@pytest.mark.parametrize("prefilter", [False, True])
@pytest.mark.parametrize("centres", [False, True])
def test_training_reads_the_pyramid_with_its_gradient_from_the_grid_cells(prefilter, centres):
    """Training's pyramid reads each tap of levels 1 .. SPARSE_LEVELS as the (weighted) mean of its cells gathered
    from the grid: the values and the gradient of autograd through a chain of `prefiltered` and `halve`, without
    building the levels; at texel centres (one tap a texel gathered, the others weigh 0) and anywhere."""
    gen = torch.Generator().manual_seed(2)
    g0 = torch.rand(32, 32, 2, generator=gen).requires_grad_(True)
    g1 = torch.rand(16, 16, 3, generator=gen).requires_grad_(True)
    mip = torch.arange(60).remainder(SPARSE_LEVELS + 2).float()
    uv = _texel_centres(gen, mip, 64) if centres else torch.rand(60, 2, generator=gen)
    sampler = GridSampler("corners", (2, 4))
    pyramids = (Pyramid.of(g0, prefilter=prefilter), Pyramid.of(g1, prefilter=prefilter))
    feats = sampler(g0, g1, uv, mip=mip, pyramids=pyramids)
    weights = torch.rand(feats.shape, generator=gen)
    (feats * weights).sum().backward()
    grads = g0.grad.clone(), g1.grad.clone()
    g0.grad = g1.grad = None
    ref = _reference(g0, g1, uv, mip, prefilter)
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


@pytest.mark.parametrize("prefilter", [False, True])
def test_quantized_training_pyramid_is_the_stored_codes_pyramid(prefilter):
    grid = torch.rand(8, 8, 2) * 2 - 1
    stored = Pyramid.from_codes(to_codes(grid).numpy(), prefilter=prefilter)
    assert stored.levels == grid_pyramid.levels(8, 8, prefilter)
    for quantized in (True, False):  # the first level of a prefiltered pyramid is float32, the others half floats
        trained = dense(grid, quantized=quantized, prefilter=prefilter)
        same = [torch.equal(trained.level(k) if prefilter and k == 1 else trained.level(k).half().float(),
                            stored.level(k)) for k in range(1, stored.levels + 1)]
        assert all(same) if quantized else not any(same)


@pytest.mark.parametrize("prefilter", [False, True])
@pytest.mark.parametrize("size", [(64, 64), (48, 80), (8, 8)])
def test_deep_levels_are_the_dense_pyramids_levels_past_the_sparse_ones(prefilter, size):
    """Training's atlas (`deep_levels`, built straight from the grid) holds the levels `dense` builds through the
    full-size chain, past the sparse ones, at the same atlas rows; the levels before are not in it."""
    grid = torch.rand(*size, 3, generator=torch.Generator().manual_seed(4)) * 2 - 1
    for quantized in (False, True):
        full, deep = dense(grid, quantized, prefilter), deep_levels(grid, quantized, prefilter)
        assert deep.shapes == full.shapes and deep.first == SPARSE_LEVELS + int(prefilter) + 1
        for k in range(deep.first, deep.levels + 1):
            torch.testing.assert_close(deep.level(k), full.level(k), rtol=0, atol=1e-6)
        sizes, offsets = deep.geometry()
        assert torch.equal(sizes, full.geometry()[0])
        assert len(deep.atlas) == sum(h * w for h, w in deep.shapes[deep.first - 1:])
        assert deep.levels < deep.first or int(offsets[deep.first]) == 0
        with pytest.raises(IndexError):
            deep.level(deep.first - 1)


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
    order = mip.argsort(stable=True)  # training's batches come sorted by mip: the same reads, in that order
    torch.testing.assert_close(GridSampler("corners", (2, 4))(g0, g1, uv[order], mip=mip[order], pyramids=pyramids),
                               feats[order], rtol=0, atol=0)
    plain = GridSampler("corners", (2, 4))(g0, g1, uv)
    coarse = mip >= 2
    assert torch.equal(feats[~coarse], plain[~coarse]) and not torch.allclose(feats[coarse], plain[coarse])


@pytest.mark.parametrize("prefilter", [False, True])
def test_stored_decoder_reads_what_training_reads_when_straight_through(prefilter):
    """The model trained with straight-through quantization and the decoder rebuilt from its file see the same
    pyramids (of the quantized grids), so they decode alike at every mip; the noise stand-in does not."""
    torch.manual_seed(0)
    model = CompressionModel(4, msgspec.structs.replace(SHAPE, pyramid_prefilter=prefilter), encoder_channels=None)
    model.init_grids(64, 48)
    with torch.no_grad():  # fp16 weights, so that storing them changes nothing
        for p in model.texture_synthesizer.parameters():
            p.copy_(p.half().float())
    uv = torch.rand(400, 2)
    mip = torch.arange(400).remainder(7).float()
    ct = ngtc_file.from_bytes(ngtc_file.to_bytes(model.compress(64, 48, 7, LAYOUT)))
    decoder = decompress(ct)
    assert decoder.pyramids_from_codes[0].shapes == ((24, 32),) * prefilter + ((12, 16), (6, 8), (3, 4))
    with torch.no_grad():
        stored = decoder(uv, mip, quant_mode="none")
        torch.testing.assert_close(model(uv, mip, quant_mode="ste"), stored, atol=1e-5, rtol=0)
        noisy = model(uv, mip, quant_mode="noise")
    assert (noisy - stored)[mip >= 2 - prefilter].abs().max() > 1e-4


def test_pyramid_flag_is_stored_and_absent_means_off():
    model = CompressionModel(4, SHAPE, encoder_channels=None)
    model.init_grids(32, 32)
    ct = model.compress(32, 32, 6, LAYOUT)
    assert ngtc_file.from_bytes(ngtc_file.to_bytes(ct)).shape.grid_pyramid is True
    old = msgspec.structs.replace(SHAPE, grid_pyramid=False, pyramid_prefilter=False).to_dict()
    old.pop("grid_pyramid")  # a file written before the flag existed
    assert msgspec.convert(old, type(SHAPE)).grid_pyramid is False
    old = SHAPE.to_dict()
    old.pop("pyramid_prefilter")  # nor before the prefilter existed: a pyramid of the codes
    assert msgspec.convert(old, type(SHAPE)).pyramid_prefilter is False
    with pytest.raises(ValueError, match="pyramid_prefilter needs grid_pyramid"):
        msgspec.structs.replace(SHAPE, grid_pyramid=False, pyramid_prefilter=True)
