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

import argparse
import json
import sys
import time
from pathlib import Path

import moderngl
import numpy as np

from .bench_common import load_scene, write_json
from .captures import read_pixels
from .commands import parse_size
from .errors import ViewerError, one_line
from .feedback import FrameStats, TileCache
from .headless import Headless
from .materials_gl import TextureSet
from .renderer import ViewState
from .scene import resolve_inputs

FEEDBACK_MODE = "neural-feedback"
COLD_FRAMES = 40  # at most, until a frame decodes nothing
ORBIT_STEP = 10.0  # degrees of yaw a frame
PIPELINE_ROUNDS, PIPELINE_FRAMES = 5, 4  # back-to-back frames (pipelined): rounds of each variant, frames a round
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
    while len(cold) < COLD_FRAMES and not (cold and cache.settled):  # until lag + 1 frames decode nothing
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
        frame(host, tset, fbo, size, clock, timer)
        if cache.settled:
            break
    return {"cold": frames_json(cold), "orbit": frames_json(orbit)}


def steady_image(host: Headless, tset: TextureSet, decoded: TextureSet, fbo, size: tuple[int, int]) -> dict:
    """The warm steady view against decoded on load's (the same texels when every tile it asks for is resident):
    PSNR over the object's pixels (8-bit RGB, those not the background's colour), the share of them that differ,
    and the cache's hit rate in that frame (its missing tiles show a coarser mip)."""
    viewer = host.viewer
    shots = []
    for t in (decoded, tset):
        viewer.renderer.scene_pass(fbo, size, None, ViewState(mode_a=t.mode), t, viewer.orbit)
        if t.feedback is not None:
            t.feedback.update()
        shots.append(read_pixels(fbo, size).astype(np.float64))
    ref, shown = shots
    mask = np.abs(ref - ref[0, 0]).sum(-1) > 3
    diff = (ref - shown)[mask]
    mse = float(np.mean(diff**2)) if diff.size else 0.0
    return {"psnr_vs_decoded_on_load": round(10 * np.log10(255.0**2 / mse), 2) if mse else None,
            "pixels": int(mask.sum()), "pixels_differing": round(float((np.abs(diff).sum(-1) > 0).mean()), 4)
            if diff.size else 0.0, "hit_rate": round(tset.feedback.last.hit_rate, 4)}


def back_to_back(host: Headless, tset: TextureSet, fbo, size: tuple[int, int], frames: int) -> float:
    """ms a frame over `frames` frames submitted back to back (scene pass, then the cache's update) with one glFinish
    at the end, as a renderer that does not wait for each frame draws: a readback that waits for its own pass
    stalls that pipeline every frame."""
    viewer = host.viewer
    state = ViewState(mode_a=tset.mode)
    host.ctx.finish()
    t0 = time.perf_counter()
    for _ in range(frames):
        viewer.renderer.scene_pass(fbo, size, None, state, tset, viewer.orbit)
        if tset.feedback is not None:
            tset.feedback.update()
    host.ctx.finish()
    return (time.perf_counter() - t0) * 1e3 / frames


def pipelined(host: Headless, tset: TextureSet, astc: TextureSet | None, fbo, size: tuple[int, int],
              rounds: int = PIPELINE_ROUNDS, frames: int = PIPELINE_FRAMES) -> dict:
    """The warm steady view back to back (`back_to_back`): ASTC, and the feedback mode reading its requests back at
    once (lag 0, a stall) and `lag` frames later (fenced copies), in interleaved rounds; medians and ratios."""
    cache: TileCache = tset.feedback
    lag = cache.lag
    runs: dict[str, list[float]] = {"astc": [], "lag0": [], f"lag{max(lag, 1)}": []}
    try:
        for _ in range(rounds):
            for name in runs:
                if name == "astc":
                    if astc is not None:
                        runs[name].append(back_to_back(host, astc, fbo, size, frames))
                    continue
                cache.set_lag(int(name[3:]))
                back_to_back(host, tset, fbo, size, 1)  # the switch's first frame reads nothing back
                runs[name].append(back_to_back(host, tset, fbo, size, frames))
    finally:
        cache.set_lag(lag)
    med = {k: float(np.median(v)) for k, v in runs.items() if v}
    async_name = f"lag{max(lag, 1)}"
    return {"rounds": rounds, "frames": frames, "ms": {k: [round(x, 3) for x in v] for k, v in runs.items()},
            "ms_median": {k: round(v, 3) for k, v in med.items()},
            "x_astc": {k: round(v / med["astc"], 3) for k, v in med.items() if k != "astc"} if "astc" in med else None,
            "async_over_sync": round(med[async_name] / med["lag0"], 3)}


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
            "cache_mib": round(cache.cache_mib, 4), "default_budget": cache.default_budget,
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
            f"{f['pages']} tiles, {f['cache_mib']:.2f} MiB{' by default' if f['default_budget'] else ''}); "
            f"steady view against decoded on load: {psnr_text(f['steady_image'])}{pipelined_text(f.get('pipelined'))}")


def pipelined_text(p: dict | None) -> str:
    if not p:
        return ""
    ms, x = p["ms_median"], p["x_astc"] or {}
    ratios = ", ".join(f"{k} {v:.1f} ms{f' = {x[k]:.3f}x ASTC' if k in x else ''}" for k, v in ms.items()
                       if k != "astc")
    return (f"; back to back ({p['rounds']} x {p['frames']} frames, one glFinish): ASTC {ms.get('astc', 0):.1f} ms, "
            f"{ratios}; async / sync readback {p['async_over_sync']:.3f}")


def psnr_text(shot: dict | None) -> str:
    if not shot:
        return "-"
    db = shot["psnr_vs_decoded_on_load"]
    return (f"{'identical' if db is None else f'{db:.2f} dB'} ({shot['pixels_differing']:.1%} of the object's pixels "
            f"differ, hit rate {shot['hit_rate']:.2f})")


def main(argv: list[str] | None = None) -> int:
    """`python -m viewer.bench_feedback`: the warm view drawn back to back (`pipelined`) alone: ASTC, and the feedback
    mode reading its requests back at once and a frame later, without the rest of `ngtc bench`; JSON."""
    parser = argparse.ArgumentParser(prog="python -m viewer.bench_feedback", description=main.__doc__.split(":")[0])
    parser.add_argument("target", nargs="?", type=Path, default=None, help="material (default: the bundled tiles)")
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--astc", default="12x12")
    parser.add_argument("--rounds", type=int, default=PIPELINE_ROUNDS)
    parser.add_argument("--frames", type=int, default=PIPELINE_FRAMES)
    parser.add_argument("--cache-mib", type=float, default=None)
    parser.add_argument("-o", "--out", type=Path, default=Path("feedback_pipelined.json"))
    args = parser.parse_args(argv)
    host = fbo = None
    try:
        if args.rounds < 1 or args.frames < 1:
            raise ViewerError("--rounds and --frames must be at least 1")
        size = parse_size(args.size)
        material, ngtc = resolve_inputs(args.target, None)
        host = Headless(size)
        astc = f"astc-{args.astc}"
        load_scene(host, material, ngtc, None, [astc, FEEDBACK_MODE], args.cache_mib)
        scene = host.viewer.scene
        host.viewer.renderer.set_mesh(scene.mesh)
        color, depth = host.ctx.texture(size, 4), host.ctx.depth_renderbuffer(size)
        fbo = host.ctx.framebuffer([color], depth)
        tset, timer = scene.sets[FEEDBACK_MODE], host.ctx.query(time=True)
        for _ in range(COLD_FRAMES):  # warm: until the view's tiles are in
            frame(host, tset, fbo, size, "wall", timer)
            if tset.feedback.settled:
                break
        doc = {"renderer": host.ctx.info.get("GL_RENDERER"), "size": list(size), "material": str(material),
               "astc_mode": astc, "slots": tset.feedback.slots.count, "cache_mib": tset.feedback.cache_mib,
               **pipelined(host, tset, scene.sets[astc], fbo, size, args.rounds, args.frames)}
        write_json(doc, args.out)
    except (ViewerError, OSError, ValueError) as e:
        print(f"bench_feedback: error: {one_line(e)}", file=sys.stderr)
        return 2
    finally:
        if fbo is not None:
            fbo.release()
        if host is not None:
            host.release()
    print(json.dumps({k: doc[k] for k in ("ms_median", "x_astc", "async_over_sync")}))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
