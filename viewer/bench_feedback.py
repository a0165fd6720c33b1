"""`ngtc bench`'s entry for neural on feedback (`viewer.feedback`): cold cache, steady state, a scripted orbit.

- cold: the cache emptied (the tail alone resident), then frames until one decodes nothing: per frame its time,
  tiles decoded and hit rate;
- steady: the same view once everything it needs is resident, timed like every other mode (its `ModeResult`
  joins the modes table, with its ratio to ASTC);
- orbit: the camera turning `ORBIT_STEP` degrees a frame for a full turn: tiles decoded per frame, hit rate,
  frame p95 while moving;
- bytes: the cache, page table and tail beside the grids and weights, against decoded on load.
Every frame is the scene pass plus the cache's update (read back the requests, decode); the clock is the run's.
"""

from __future__ import annotations

import time

import moderngl
import numpy as np

from .feedback import FrameStats, TileCache
from .headless import Headless
from .materials_gl import TextureSet
from .renderer import ViewState

FEEDBACK_MODE = "neural-feedback"
COLD_FRAMES = 40  # at most, until a frame decodes nothing
ORBIT_STEP = 10.0  # degrees of yaw a frame
STEADY_TARGET, ORBIT_TARGET, BYTES_TARGET = 1.5, 3.0, 0.25  # issue 11: x ASTC frame, x ASTC p95, x decoded on load


def frame(host: Headless, tset: TextureSet, fbo, size: tuple[int, int], clock: str,
          timer: moderngl.Query) -> tuple[float, FrameStats]:
    """One frame (scene pass, then the cache's update) by `clock`: ms, and what the cache did."""
    viewer = host.viewer
    host.ctx.finish()
    t0 = time.perf_counter()
    with timer:
        viewer.renderer.scene_pass(fbo, size, None, ViewState(mode_a=tset.mode), tset, viewer.orbit)
        stats = tset.feedback.update()
    host.ctx.finish()
    wall = (time.perf_counter() - t0) * 1e3
    return (wall if clock == "wall" else timer.elapsed / 1e6), stats


def frames_json(rows: list[tuple[float, FrameStats]]) -> dict:
    ms = np.array([r[0] for r in rows])
    requested = sum(s.requested for _, s in rows)
    return {"frames": len(rows), "ms": [round(v, 3) for v, _ in rows], "ms_median": round(float(np.median(ms)), 3),
            "ms_p95": round(float(np.percentile(ms, 95)), 3),
            "decoded_per_frame": [s.decoded for _, s in rows], "requested_per_frame": [s.requested for _, s in rows],
            "hit_rate": round(sum(s.hits for _, s in rows) / requested, 4) if requested else 1.0}


def cold_and_orbit(host: Headless, tset: TextureSet, fbo, size: tuple[int, int], clock: str) -> dict:
    """The cold-cache frames, then a full orbit (the camera put back after); the view is left warm."""
    cache: TileCache = tset.feedback
    cache.reset()
    timer = host.ctx.query(time=True)
    cold = []
    while len(cold) < COLD_FRAMES and (not cold or cold[-1][1].decoded):
        cold.append(frame(host, tset, fbo, size, clock, timer))
    camera, yaw = host.viewer.orbit, host.viewer.orbit.yaw
    orbit = []
    try:
        for k in range(1, int(360 / ORBIT_STEP) + 1):
            camera.yaw = (yaw + k * ORBIT_STEP) % 360.0
            orbit.append(frame(host, tset, fbo, size, clock, timer))
    finally:
        camera.yaw = yaw
    for _ in range(COLD_FRAMES):  # back to the steady view, warm
        if not frame(host, tset, fbo, size, clock, timer)[1].decoded:
            break
    return {"cold": frames_json(cold), "orbit": frames_json(orbit)}


def feedback_summary(entry: dict, steady: dict, astc: dict | None, decoded_on_load: int, tset: TextureSet) -> dict:
    """The issue's three figures against their targets, and the bytes by part."""
    cache: TileCache = tset.feedback
    x_astc = steady["ms_median"] / astc["ms_median"] if astc else None
    orbit_x = entry["orbit"]["ms_p95"] / astc["ms_p95"] if astc else None
    ratio = tset.gpu_bytes / decoded_on_load
    return {**entry, "steady_ms_median": steady["ms_median"], "steady_ms_p95": steady["ms_p95"],
            "x_astc": round(x_astc, 3) if x_astc else None,
            "orbit_p95_x_astc_p95": round(orbit_x, 3) if orbit_x else None,
            "gpu_bytes": tset.gpu_bytes, "gpu_bytes_parts": {**cache.parts, "grids_weights": tset.neural.gpu_bytes},
            "decoded_on_load_bytes": decoded_on_load, "x_decoded_on_load_bytes": round(ratio, 4),
            "tile": cache.layout.tile, "slots": cache.slots.count, "pages": cache.layout.pages,
            "tail_mip": cache.layout.tail, "decodes_per_frame": cache.decodes_per_frame,
            "targets": {"x_astc": STEADY_TARGET, "orbit_p95_x_astc_p95": ORBIT_TARGET,
                        "x_decoded_on_load_bytes": BYTES_TARGET}}


def feedback_line(doc: dict) -> str:
    f = doc.get("feedback")
    if not f:
        return ""

    def met(value, target) -> str:
        return "-" if value is None else f"{value:.3f} ({'met' if value <= target else 'NOT met'} <= {target})"

    return (f"neural-feedback: steady {f['steady_ms_median']:.1f} ms = {met(f['x_astc'], STEADY_TARGET)} x ASTC; "
            f"cold {f['cold']['frames']} frames ({sum(f['cold']['decoded_per_frame'])} tiles, first "
            f"{f['cold']['ms'][0]:.0f} ms); orbit p95 {f['orbit']['ms_p95']:.1f} ms = "
            f"{met(f['orbit_p95_x_astc_p95'], ORBIT_TARGET)} x ASTC p95, hit rate {f['orbit']['hit_rate']:.3f}, "
            f"{np.mean(f['orbit']['decoded_per_frame']):.1f} tiles/frame; {f['gpu_bytes']:,} B on the GPU = "
            f"{met(f['x_decoded_on_load_bytes'], BYTES_TARGET)} x decoded on load ({f['slots']} slots of "
            f"{f['pages']} tiles)")
