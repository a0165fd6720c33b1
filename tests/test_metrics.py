"""models.metrics: PSNR, SSIM, FLIP and Bjontegaard deltas on hand-checked cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

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
    # The definition computed here independently (below) gives 0.56050 (RGB), 0.54946 (one channel); they agree
    # to 1e-14. A data range of 2 instead of 1 gives 0.611, Gaussian weights 0.496, a 3x3 window 0.412.
    assert M.ssim(img, noisy) == pytest.approx(reference_ssim(img, noisy), abs=1e-9)
    assert M.ssim(img, noisy) == pytest.approx(0.56050, abs=1e-4)
    assert M.ssim(img[..., 0], noisy[..., 0]) == pytest.approx(reference_ssim(img[..., :1], noisy[..., :1]), abs=1e-9)
    assert M.ssim(img[:5, :6], noisy[:5, :6]) == pytest.approx(reference_ssim(img[:5, :6], noisy[:5, :6], 5), abs=1e-9)


def reference_ssim(a: np.ndarray, b: np.ndarray, win: int = 7) -> float:
    """SSIM (Wang et al. 2004) as models.metrics documents it: a win x win box window over the valid region,
    sample (co)variances, K1 0.01, K2 0.03, data range 1, the mean over windows and channels of (H, W, C)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mean = lambda x: sliding_window_view(x, (win, win)).mean(axis=(-2, -1))  # noqa: E731
    n = win * win / (win * win - 1)
    c1, c2 = 0.01**2, 0.03**2
    out = []
    for x, y in zip(np.moveaxis(a, -1, 0), np.moveaxis(b, -1, 0), strict=True):
        ux, uy = mean(x), mean(y)
        vx, vy, vxy = n * (mean(x * x) - ux**2), n * (mean(y * y) - uy**2), n * (mean(x * y) - ux * uy)
        out.append((((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))).mean())
    return float(np.mean(out))


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


def reference_bd(rate_a, psnr_a, rate_t, psnr_t, kind: str) -> float:
    """Bjontegaard deltas computed here, independently of the `bjontegaard` package: each curve's log10(rate)
    against PSNR ("rate") or PSNR against log10(rate) ("psnr") as a monotone piecewise cubic (pchip), both
    integrated exactly over the interval the two share; BD-rate = 10^(mean difference) - 1, in percent."""
    from scipy.interpolate import PchipInterpolator

    curves = []
    for r, p in ((rate_a, psnr_a), (rate_t, psnr_t)):
        r, p = np.log10(np.asarray(r, np.float64)), np.asarray(p, np.float64)
        x, y = (p, r) if kind == "rate" else (r, p)
        order = np.argsort(x)
        curves.append((x[order], y[order]))
    lo, hi = max(c[0][0] for c in curves), min(c[0][-1] for c in curves)
    a, t = (PchipInterpolator(x, y).integrate(lo, hi) for x, y in curves)
    mean = (t - a) / (hi - lo)
    return (10**mean - 1) * 100 if kind == "rate" else mean


def test_bd_rate_against_itself_is_zero():
    assert M.bd_rate(RATES, PSNRS, RATES, PSNRS) == pytest.approx(0.0, abs=1e-9)
    assert M.bd_psnr(RATES, PSNRS, RATES, PSNRS) == pytest.approx(0.0, abs=1e-9)
    # and not zero whatever the curves: rates cut by 10% to 40% along the curve (reference: -24.673 %, +1.2914 dB)
    cut = [r * f for r, f in zip(RATES, [0.9, 0.8, 0.75, 0.7, 0.6], strict=True)]
    rate, dpsnr = M.bd_rate(RATES, PSNRS, cut, PSNRS), M.bd_psnr(RATES, PSNRS, cut, PSNRS)
    assert rate == pytest.approx(reference_bd(RATES, PSNRS, cut, PSNRS, "rate"), abs=1e-9)
    assert rate == pytest.approx(-24.673, abs=1e-3)
    assert dpsnr == pytest.approx(reference_bd(RATES, PSNRS, cut, PSNRS, "psnr"), abs=1e-9)


def test_bd_rate_half_the_rate_is_minus_50_percent():
    half = [r / 2 for r in RATES]
    assert M.bd_rate(RATES, PSNRS, half, PSNRS) == pytest.approx(-50.0)
    assert M.bd_rate(half, PSNRS, RATES, PSNRS) == pytest.approx(100.0)


def test_bd_psnr_of_a_curve_one_db_higher_is_plus_one():
    up = [p + 1 for p in PSNRS]
    assert M.bd_psnr(RATES, PSNRS, RATES, up) == pytest.approx(1.0)
    assert M.bd_psnr(RATES, up, RATES, PSNRS) == pytest.approx(-1.0)
    # more PSNR at the same rate: fewer bits at equal PSNR (reference: -20.617 %)
    assert M.bd_rate(RATES, PSNRS, RATES, up) == pytest.approx(reference_bd(RATES, PSNRS, RATES, up, "rate"), abs=1e-9)
    assert M.bd_rate(RATES, PSNRS, RATES, up) == pytest.approx(-20.617, abs=1e-3)


def test_bd_with_different_point_counts_and_order():
    rates_t, psnrs_t = [6.0, 1.5, 3.0], [38.0, 30.0, 34.5]  # unsorted, 3 points against 5
    value = M.bd_rate(RATES, PSNRS, rates_t, psnrs_t)
    # reference: +51.956 % over the shared 30-38 dB (pchip; an Akima interpolation gives +51.983 %)
    assert value == pytest.approx(reference_bd(RATES, PSNRS, rates_t, psnrs_t, "rate"), abs=1e-9)
    assert value == pytest.approx(51.956, abs=1e-3)
    assert value == pytest.approx(M.bd_rate(RATES, PSNRS, sorted(rates_t), sorted(psnrs_t)), abs=1e-9)
    assert M.bd_psnr(RATES, PSNRS, rates_t, psnrs_t) == pytest.approx(
        reference_bd(RATES, PSNRS, rates_t, psnrs_t, "psnr"), abs=1e-9)  # -1.6887 dB


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
