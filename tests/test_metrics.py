"""models.metrics: PSNR, SSIM, FLIP and Bjontegaard deltas on hand-checked cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models import metrics as M
from models.layout import MapInfo

RATES = [0.5, 1.0, 2.0, 4.0, 8.0]
PSNRS = [28.0, 31.5, 34.0, 37.5, 40.0]


# ------------------------------------------------------------------------------------------- PSNR


def test_psnr_hand_values():
    a = np.zeros((4, 4, 3), np.float32)
    assert M.psnr(a, a) == math.inf
    assert M.psnr(a, a + 0.1) == pytest.approx(20.0)  # MSE 0.01 -> 20 dB
    assert M.psnr(a, a + 0.01) == pytest.approx(40.0)
    b = a.copy()
    b[0, 0, 0] = 1.0  # one wrong value of 48: MSE 1/48
    assert M.psnr(a, b) == pytest.approx(10 * math.log10(48))
    assert M.psnr(a, a + 0.5, peak=2.0) == pytest.approx(10 * math.log10(4 / 0.25))


def test_psnr_per_map_skips_constants():
    layout = [MapInfo("basecolor", 3, "srgb", "b.png", 8, 0), MapInfo("roughness", 1, "linear", "r.png", 8, 3),
              MapInfo("metallic", 1, "linear", "m.png", 8, -1, (0.0,))]
    a = np.zeros((2, 2, 4), np.float32)
    b = a.copy()
    b[..., 3] = 0.1
    out = M.psnr_per_map(a, b, layout)
    assert set(out) == {"basecolor", "roughness"}
    assert out["basecolor"] == math.inf and out["roughness"] == pytest.approx(20.0)


def test_astc_uses_the_same_psnr():
    from models import astc

    assert astc.psnr is M.psnr


# ------------------------------------------------------------------------------------------- SSIM / FLIP


def _image(h=32, w=32, c=3, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / 8.0
    base = 0.5 + 0.3 * np.sin(xx[..., None] + yy[..., None] * 0.7 + np.arange(c))
    return np.clip(base + 0.05 * rng.standard_normal((h, w, c)), 0, 1).astype(np.float32)


def test_ssim_identical_is_one_and_degrades():
    img = _image()
    assert M.ssim(img, img) == pytest.approx(1.0)
    assert M.ssim(img[..., 0], img[..., 0]) == pytest.approx(1.0)
    assert M.ssim(img[..., :1], img[..., :1]) == pytest.approx(1.0)  # a 1-channel map as (H, W, 1)
    noisy = np.clip(img + 0.1 * np.random.default_rng(1).standard_normal(img.shape), 0, 1)
    assert 0 < M.ssim(img, noisy) < 0.95


def test_ssim_small_mips():
    assert M.ssim_window(64, 64) == 7
    assert M.ssim_window(4, 4) == 3
    assert M.ssim_window(6, 9) == 5
    assert M.ssim_window(2, 2) is None
    img = _image(4, 4)
    assert M.ssim(img, img) == pytest.approx(1.0)
    assert math.isnan(M.ssim(img[:2, :2], img[:2, :2]))


def test_ssim_per_map():
    layout = [MapInfo("basecolor", 3, "srgb", "b.png", 8, 0), MapInfo("height", 1, "linear", "h.png", 8, 3)]
    img = _image(c=4)
    other = img.copy()
    other[..., 3] = 1 - other[..., 3]
    out = M.ssim_per_map(img, other, layout)
    assert out["basecolor"] == pytest.approx(1.0) and out["height"] < 0.5


def test_flip_identical_is_zero_and_positive_otherwise():
    img = _image(48, 48)
    assert M.flip(img, img) == 0.0
    worse = np.clip(img + 0.2, 0, 1)
    slightly = np.clip(img + 0.02, 0, 1)
    assert 0 < M.flip(img, slightly) < M.flip(img, worse) <= 1
    with pytest.raises(ValueError):
        M.flip(img[..., :2], img[..., :2])


# ------------------------------------------------------------------------------------------- RD curves, BD


def test_bd_rate_against_itself_is_zero():
    assert M.bd_rate(RATES, PSNRS, RATES, PSNRS) == pytest.approx(0.0, abs=1e-9)
    assert M.bd_psnr(RATES, PSNRS, RATES, PSNRS) == pytest.approx(0.0, abs=1e-9)


def test_bd_rate_half_the_rate_is_minus_50_percent():
    half = [r / 2 for r in RATES]
    assert M.bd_rate(RATES, PSNRS, half, PSNRS) == pytest.approx(-50.0)
    assert M.bd_rate(half, PSNRS, RATES, PSNRS) == pytest.approx(100.0)


def test_bd_psnr_of_a_curve_one_db_higher_is_plus_one():
    up = [p + 1 for p in PSNRS]
    assert M.bd_psnr(RATES, PSNRS, RATES, up) == pytest.approx(1.0)
    assert M.bd_psnr(RATES, up, RATES, PSNRS) == pytest.approx(-1.0)
    assert M.bd_rate(RATES, PSNRS, RATES, up) < 0  # more PSNR at the same rate: fewer bits at equal PSNR


def test_bd_with_different_point_counts_and_order():
    rates_t, psnrs_t = [6.0, 1.5, 3.0], [38.0, 30.0, 34.5]  # unsorted, 3 points against 5
    value = M.bd_rate(RATES, PSNRS, rates_t, psnrs_t)
    assert math.isfinite(value)
    assert value == pytest.approx(M.bd_rate(RATES, PSNRS, sorted(rates_t), sorted(psnrs_t)))


def test_bd_undefined_without_overlap_or_points():
    far = [p + 30 for p in PSNRS]
    assert math.isnan(M.bd_rate(RATES, PSNRS, RATES, far))  # no shared PSNR interval
    assert math.isnan(M.bd_psnr(RATES, PSNRS, [r * 100 for r in RATES], PSNRS))  # no shared rate interval
    assert math.isnan(M.bd_rate(RATES, PSNRS, [1.0], [30.0]))  # one point is no curve


def test_rd_curve_keeps_the_points_nothing_beats():
    rates, psnrs = M.rd_curve([4, 1, 2, 3, 2, 8, math.inf], [35, 30, 33, 32, 31, 34, 50])
    assert rates.tolist() == [1, 2, 4]  # 3 bpp / 32 dB is beaten by 2 bpp / 33 dB; 8 bpp by 4 bpp
    assert psnrs.tolist() == [30, 33, 35]


def test_rate_at_psnr_interpolates_in_log_rate():
    assert M.rate_at_psnr(RATES, PSNRS, 34.0) == pytest.approx(2.0)  # a point itself
    two_r, two_p = [1.0, 4.0], [30.0, 40.0]  # two points: linear in log rate
    assert M.rate_at_psnr(two_r, two_p, 35.0) == pytest.approx(2.0)
    assert M.rate_at_psnr(two_r, two_p, 41.0) is None  # no extrapolation
    assert M.rate_at_psnr([], [], 30.0) is None


def test_shared_interval():
    assert M.shared_interval([1, 5], [3, 9]) == (3, 5)
    assert M.shared_interval([1, 2], [3, 4]) is None
    assert M.shared_interval([], [3, 4]) is None
