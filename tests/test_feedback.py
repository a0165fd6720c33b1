"""Neural on feedback (viewer/feedback.py): the tile cache against the PyTorch decoder, the fallback with a cache far
too small, budgets, and which tiles a view requests. Small tiles (16 texels) cut conftest's 64x48 crop into
4 x 3 tiles at mip 0 and 2 x 2 at mip 1; mips 2+ are the resident tail."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys

import numpy as np
import pytest

moderngl = pytest.importorskip("moderngl")

from models import ngtc_file  # noqa: E402
from models.decoder import NeuralTexture  # noqa: E402
from tests.viewer_shots import object_mask, psnr, render  # noqa: E402
from viewer.errors import ViewerError  # noqa: E402
from viewer.feedback import BORDER, TileCache, TileLayout, check_cache_mib, slot_size  # noqa: E402
from viewer.neural_gl import read_texture_mip, upload_ngtc  # noqa: E402

TILE = 16
TOL = 1 / 255


def slot_mib(ngl, slots: float) -> float:
    return slots * slot_size(TILE, ngl.channels) / 2**20


def request_all(cache: TileCache) -> None:
    cache.needed.write(np.full(cache.needed.size // 4, 0xFFFFFFFF, np.uint32).tobytes())


@pytest.fixture(scope="module")
def gl(egl, small_ngtc):
    ctx = moderngl.create_standalone_context(backend="egl", require=430)
    ngl = upload_ngtc(ctx, ngtc_file.from_bytes(small_ngtc))
    yield ctx, ngl
    ngl.release()
    ctx.release()


def test_layout_pages_and_tail():
    layout = TileLayout(64, 48, 7, TILE)
    assert layout.tail == 2 and layout.offsets == [0, 12, 16]
    assert [layout.tile_of(p) for p in (0, 5, 11, 12, 15)] == [(0, 0, 0), (0, 1, 1), (0, 3, 2), (1, 0, 0), (1, 1, 1)]
    assert all(layout.page(*layout.tile_of(p)) == p for p in range(layout.pages))


def test_resident_tiles_match_torch(gl, small_ngtc):
    """Every texel of every resident slot, borders and level 1 (the next mip) included, and the tail equal the
    PyTorch decoder within 1/255."""
    ctx, ngl = gl
    cache = TileCache(ctx, ngl, 1.0, tile=TILE, decodes_per_frame=100)
    try:
        request_all(cache)
        assert cache.update().decoded == cache.layout.pages == 16
        torch = [NeuralTexture(ngl.compressed, "cpu").decode_mip(m) for m in range(ngl.mips)]
        diffs = []
        for level in (0, 1):
            tile, border = TILE >> level, BORDER >> level
            for (mip, tx, ty), texels in cache.resident(level).items():
                h, w = torch[mip + level].shape[:2]
                ys = (ty * tile - border + np.arange(tile + 2 * border)) % h  # the border wraps: materials tile
                xs = (tx * tile - border + np.arange(tile + 2 * border)) % w
                ref = np.round(torch[mip + level][np.ix_(ys, xs)] * 255) / 255
                diffs.append(float(np.abs(texels[..., :ngl.channels] - ref).max()))
        for k, m in enumerate(range(cache.layout.tail, ngl.mips)):
            tail = np.concatenate([read_texture_mip(t, k) for t in cache.tail], -1)[..., :ngl.channels]
            diffs.append(float(np.abs(tail - np.round(torch[m] * 255) / 255).max()))
        print(f"max |cache - round(torch)| in 1/255: {max(diffs) * 255:.3f}")
        assert len(diffs) == 2 * 16 + ngl.mips - 2 and max(diffs) <= TOL + 1e-6
    finally:
        cache.release()


@pytest.mark.parametrize("mib", [0.0, -1.0, math.nan, math.inf, 1e9])
def test_absurd_budgets_fail_in_one_line(mib):
    with pytest.raises(ViewerError, match="cache-mib") as e:
        check_cache_mib(mib)
    assert "\n" not in str(e.value)


def test_budget_below_one_tile_fails(gl):
    ctx, ngl = gl
    with pytest.raises(ViewerError, match="holds no tile"):
        TileCache(ctx, ngl, slot_mib(ngl, 0.5), tile=TILE)


def test_cli_rejects_a_zero_budget(scene, tmp_path):
    folder, ngtc = scene
    r = subprocess.run([sys.executable, "-m", "viewer.cli", "render", str(folder), "--ngtc", str(ngtc), "--mode",
                        "neural-feedback", "--cache-mib", "0", "-o", str(tmp_path / "x.png")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "cache-mib" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


@pytest.fixture
def small_tiles(host):
    """The host's neural-feedback set with 16-texel tiles in a cache of `slots` slots (restored after)."""
    scene, made = host.viewer.scene, []
    before = scene.sets["neural-feedback"]

    def use(slots: int, decodes: int = 16) -> TileCache:
        cache = TileCache(host.ctx, before.neural, slot_mib(before.neural, slots), tile=TILE, decodes_per_frame=decodes)
        made.append(cache)
        scene.sets["neural-feedback"] = dataclasses.replace(before, feedback=cache, textures=cache.tail)
        return cache

    yield use
    scene.sets["neural-feedback"] = before
    for cache in made:
        cache.release()


def test_cache_far_too_small_falls_back_without_black(host, small_tiles):
    decoded = render(host, mode_a="neural", view="basecolor", uv_scale=2.0)
    cache = small_tiles(1, decodes=1)
    assert cache.slots.count == 1
    for _ in range(4):
        shown = render(host, mode_a="neural-feedback", view="basecolor", uv_scale=2.0)
        assert cache.last.requested > 1 and cache.last.decoded <= 1
    mask = object_mask(decoded)
    assert np.array_equal(mask, object_mask(shown))
    assert shown[mask].sum(-1).min() > 60, "no black texels: missing tiles read a coarser resident mip"
    assert psnr(decoded, shown, mask) > 20


def test_feedback_converges_to_decode_on_load(host, small_tiles):
    decoded = render(host, mode_a="neural")
    cache = small_tiles(16)
    for _ in range(3):
        shown = render(host, mode_a="neural-feedback")
    assert cache.last.decoded == 0 and cache.last.hits == cache.last.requested > 0
    # The same 8-bit texels, filtered by the same hardware trilinear read (a slot's level 1 is the next mip)
    assert np.array_equal(decoded, shown)
    render(host, panel=True, mode_a="neural-feedback")  # the panel shows the cache's last frame
    assert "/16 slots (16 tiles)" in cache.summary() and "100% resident, 0 decoded" in cache.summary()


def test_flat_quad_at_one_to_one_requests_the_tiles_on_screen(scene):
    from viewer.headless import Headless

    h = Headless((32, 24))
    try:
        h.viewer.open(*scene)
        h.wait()
        base = h.viewer.scene.sets["neural-feedback"]
        cache = TileCache(h.ctx, base.neural, 1.0, tile=TILE)
        h.viewer.scene.sets["neural-feedback"] = dataclasses.replace(base, feedback=cache, textures=cache.tail)
        render(h, mode_a="neural-feedback", flat=True)
        # 32 x 24 pixels of the 64 x 48 texels, centred: texels 16..47 x 12..35, tiles x 1..2, y 0..2 of mip 0
        expected = sorted(cache.layout.page(0, x, y) for x in (1, 2) for y in (0, 1, 2))
        assert cache.last_pages.tolist() == expected
        h.viewer.scene.sets["neural-feedback"] = base
        cache.release()
    finally:
        h.release()
