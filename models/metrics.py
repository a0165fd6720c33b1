"""Quality metrics: PSNR with peak 1.0 over channels as stored."""

from __future__ import annotations

import math

import numpy as np


def mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB, peak 1.0; identical inputs give +inf."""
    e = mse(a, b)
    return math.inf if e == 0 else -10.0 * math.log10(e)


def psnr_per_map(a: np.ndarray, b: np.ndarray, layout: list[dict]) -> dict[str, float]:
    """PSNR of each non-constant map of the layout, over its channels."""
    out = {}
    for m in layout:
        if m.get("constant") is None:
            s = slice(m["offset"], m["offset"] + m["channels"])
            out[m["name"]] = psnr(a[..., s], b[..., s])
    return out
