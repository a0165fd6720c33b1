"""Quality metrics, in one place: PSNR, SSIM and FLIP on channels as stored, and Bjontegaard deltas.

- PSNR: peak 1.0 over the channels as stored (basecolor sRGB-encoded, normals as XY in [0, 1]).
- SSIM: `skimage.metrics.structural_similarity`, data_range 1, the channels of a map as `channel_axis`;
  the Gaussian-free 7x7 window shrinks (odd, >= 3) on mips smaller than 7 texels; below 3 it is undefined.
- FLIP: NVIDIA's LDR-FLIP (`flip_evaluator`) on sRGB-encoded RGB in [0, 1] (base color as stored), mean
  error over the image: 0 is identical, 1 is the worst.
- Rate-distortion curves: a codec's (rate, PSNR) points reduced to the ones no other point beats (more
  PSNR at no more rate), sorted by rate. Bjontegaard deltas (package `bjontegaard`, piecewise cubic
  'pchip' interpolation) are computed on those curves over the interval both curves cover:
  BD-rate over the shared PSNR interval (percent, negative = the test codec needs fewer bits), BD-PSNR
  over the shared log-rate interval (dB, positive = the test codec is better).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np

from .layout import MapInfo, map_slice

BD_METHOD = "pchip"


# ------------------------------------------------------------------------------------------- images


def mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 1.0) -> float:
    """PSNR in dB over all texels and channels; identical inputs give +inf."""
    e = mse(a, b)
    return math.inf if e == 0 else 10.0 * math.log10(peak * peak / e)


def per_map(metric, a: np.ndarray, b: np.ndarray, layout: Sequence[MapInfo]) -> dict[str, float]:
    """`metric(a, b)` of each non-constant map of the layout, over that map's channels."""
    return {m.name: metric(a[..., map_slice(m)], b[..., map_slice(m)]) for m in layout if m.constant is None}


def psnr_per_map(a: np.ndarray, b: np.ndarray, layout: Sequence[MapInfo]) -> dict[str, float]:
    """PSNR of each non-constant map of the layout, over its channels."""
    return per_map(psnr, a, b, layout)


def ssim_window(height: int, width: int) -> int | None:
    """SSIM window side for an image: 7, or the largest odd side that fits; None below 3 texels."""
    side = min(7, height, width)
    side -= 1 - side % 2
    return side if side >= 3 else None


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of (H, W) or (H, W, C) images in [0, 1] (data_range 1); NaN when smaller than 3x3."""
    from skimage.metrics import structural_similarity

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"ssim: shapes differ, {a.shape} vs {b.shape}")
    if a.ndim == 3 and a.shape[-1] == 1:
        a, b = a[..., 0], b[..., 0]
    win = ssim_window(*a.shape[:2])
    if win is None:
        return math.nan
    if a.ndim == 3:
        return float(structural_similarity(a, b, data_range=1.0, channel_axis=-1, win_size=win))
    return float(structural_similarity(a, b, data_range=1.0, win_size=win))


def ssim_per_map(a: np.ndarray, b: np.ndarray, layout: Sequence[MapInfo]) -> dict[str, float]:
    """SSIM of each non-constant map of the layout (its channels as the channel axis)."""
    return per_map(ssim, a, b, layout)


def flip(reference: np.ndarray, test: np.ndarray) -> float:
    """Mean LDR-FLIP error of sRGB-encoded images (H, W, 3) in [0, 1]: 0 when identical."""
    import flip_evaluator

    ref = np.ascontiguousarray(np.clip(reference, 0, 1), np.float32)
    tst = np.ascontiguousarray(np.clip(test, 0, 1), np.float32)
    if ref.shape != tst.shape or ref.ndim != 3 or ref.shape[-1] != 3:
        raise ValueError(f"flip: expected two (H, W, 3) images, got {ref.shape} and {tst.shape}")
    if np.array_equal(ref, tst):
        return 0.0
    _, mean, _ = flip_evaluator.evaluate(ref, tst, "LDR", inputsRGB=True, applyMagma=False, computeMeanError=True)
    return float(mean)


# ---------------------------------------------------------------------------------- rate-distortion


def rd_curve(rates: Sequence[float], psnrs: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """The points of a rate-distortion curve that no other point beats, sorted by rate (both strictly
    increasing). Points with a non-finite or non-positive rate, or a non-finite PSNR, are dropped."""
    pts = sorted((float(r), -float(p)) for r, p in zip(rates, psnrs, strict=True)
                 if math.isfinite(r) and r > 0 and math.isfinite(p))
    keep_r: list[float] = []
    keep_p: list[float] = []
    for r, neg_p in pts:  # by rate, and by PSNR descending among equal rates
        p = -neg_p
        if keep_p and p <= keep_p[-1]:
            continue
        if keep_r and r == keep_r[-1]:
            continue
        keep_r.append(r)
        keep_p.append(p)
    return np.array(keep_r), np.array(keep_p)


def shared_interval(a: Sequence[float], b: Sequence[float]) -> tuple[float, float] | None:
    """[max of minima, min of maxima] of two value sets, or None when they do not overlap."""
    if len(a) == 0 or len(b) == 0:
        return None
    lo, hi = max(min(a), min(b)), min(max(a), max(b))
    return (float(lo), float(hi)) if hi >= lo else None


def _bd(fn: str, rate_anchor, psnr_anchor, rate_test, psnr_test) -> float:
    """bjontegaard's `fn` ("bd_rate" over the shared PSNR interval, "bd_psnr" over the shared rate one) on
    the curves' useful points; NaN when a curve has < 2 points or the intervals do not overlap."""
    import bjontegaard

    ra, pa = rd_curve(rate_anchor, psnr_anchor)
    rt, pt = rd_curve(rate_test, psnr_test)
    span = shared_interval(pa, pt) if fn == "bd_rate" else shared_interval(ra, rt)
    if len(ra) < 2 or len(rt) < 2 or span is None or span[1] <= span[0]:
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = getattr(bjontegaard, fn)(ra, pa, rt, pt, method=BD_METHOD, require_matching_points=False,
                                         min_overlap=0)
    return float(value)


def bd_rate(rate_anchor: Sequence[float], psnr_anchor: Sequence[float], rate_test: Sequence[float],
            psnr_test: Sequence[float]) -> float:
    """Bjontegaard-delta rate of test against anchor in percent over their shared PSNR interval
    (negative: test needs fewer bits); NaN when a curve has < 2 points or the intervals do not overlap."""
    return _bd("bd_rate", rate_anchor, psnr_anchor, rate_test, psnr_test)


def bd_psnr(rate_anchor: Sequence[float], psnr_anchor: Sequence[float], rate_test: Sequence[float],
            psnr_test: Sequence[float]) -> float:
    """Bjontegaard-delta PSNR of test against anchor in dB over their shared log-rate interval (positive:
    test is better); NaN when a curve has < 2 points or the rate intervals do not overlap."""
    return _bd("bd_psnr", rate_anchor, psnr_anchor, rate_test, psnr_test)


def rate_at_psnr(rates: Sequence[float], psnrs: Sequence[float], target: float) -> float | None:
    """The rate a curve needs for `target` dB: piecewise cubic (pchip) in the log-rate domain over its
    points; None outside the curve's PSNR range (no extrapolation)."""
    from scipy.interpolate import PchipInterpolator

    r, p = rd_curve(rates, psnrs)
    if len(r) == 0 or not p[0] <= target <= p[-1]:
        return None
    if len(r) == 1:
        return float(r[0])
    return float(10 ** PchipInterpolator(p, np.log10(r))(target))
