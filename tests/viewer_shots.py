"""Pictures of the headless viewer for tests: a frame in a given state, PSNR in 8-bit levels, the object's pixels."""

from __future__ import annotations

import numpy as np


def render(host, panel: bool = False, **state) -> np.ndarray:
    from viewer.renderer import ViewState

    host.viewer.state = ViewState(**state)
    host.wait()
    assert not host.viewer.log.errors, host.viewer.log.errors
    return host.frame(panel=panel).astype(np.float64)


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    d = (a - b)[mask] if mask is not None else a - b
    mse = float(np.mean(d**2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def object_mask(image: np.ndarray) -> np.ndarray:
    """Pixels that are not the background (the first pixel's color)."""
    return np.abs(image - image[0, 0]).sum(axis=-1) > 3
