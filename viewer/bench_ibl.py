"""`python -m viewer.bench_ibl`: what image-based lighting costs (issue 13's targets), printed and written as JSON.

- prefiltering each bundled 1024x512 environment on a fresh context (upload, specular mips, irradiance; the file's
  read and the once-per-context BRDF table apart), target at most 2 s on llvmpipe;
- the frame at 1280x720 in the decoded-on-load mode (`neural`) with IBL against the hemisphere lighting of before,
  and with the environment as background, target at most 1.2x; frames interleaved, each timed between glFinish
  calls (llvmpipe's timer queries end before it rasterizes), median and p95.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from .environment import bundled, load_environment
from .headless import Headless, headless_context
from .ibl import brdf_lut, prefilter

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {"hemisphere (before)": {"ibl": False}, "IBL": {"ibl": True},
            "IBL + background": {"ibl": True, "env_background": True}}


def prefilter_times(repeats: int) -> dict[str, dict[str, float]]:
    ctx = headless_context()
    start = time.perf_counter()
    lut = brdf_lut(ctx)
    ctx.finish()
    out = {"brdf_table_ms": {"once": (time.perf_counter() - start) * 1e3}}
    for name, path in bundled().items():
        start = time.perf_counter()
        pixels = load_environment(path)
        read_ms = (time.perf_counter() - start) * 1e3
        runs = []
        for _ in range(repeats):
            maps = prefilter(ctx, pixels, name, lut)
            runs.append(maps.prefilter_ms)
            maps.release()
        out[name] = {"size": list(pixels.shape[1::-1]), "read_ms": read_ms, "prefilter_ms_first": runs[0],
                     "prefilter_ms_median": float(np.median(runs))}
    lut.release()
    ctx.release()
    return out


def frame_times(size: tuple[int, int], frames: int, mode: str) -> dict[str, dict[str, float]]:
    host = Headless(size)
    try:
        viewer = host.viewer
        viewer.open(ROOT / "assets" / "tiles", ROOT / "assets" / "tiles.ngtc")
        viewer.state.mode_a = mode
        host.wait()
        times: dict[str, list[float]] = {name: [] for name in VARIANTS}
        for i in range(frames + 2):
            for name, state in VARIANTS.items():
                for k, v in {"ibl": True, "env_background": False, **state}.items():
                    setattr(viewer.state, k, v)
                ms = host.timed_frame(False)
                if i >= 2:  # warm-up: programs compiled, environment prefiltered
                    times[name].append(ms)
        base = float(np.median(times["hemisphere (before)"]))
        return {name: {"median_ms": float(np.median(t)), "p95_ms": float(np.percentile(t, 95)),
                       "ratio": float(np.median(t)) / base} for name, t in times.items()}
    finally:
        host.release()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--mode", default="neural", help="the display mode (default: decoded on load)")
    ap.add_argument("-o", "--out", type=Path, default=ROOT / "bench" / "ibl_llvmpipe_720p.json")
    args = ap.parse_args(argv)
    w, h = (int(v) for v in args.size.split("x"))
    ctx = headless_context()
    renderer = ctx.info.get("GL_RENDERER")
    ctx.release()
    doc = {"renderer": renderer, "machine": platform.node(), "load_average": list(os.getloadavg()),
           "prefilter": prefilter_times(args.repeats), "frame": {"size": [w, h], "mode": args.mode,
                                                                 "frames": args.frames,
                                                                 **frame_times((w, h), args.frames, args.mode)}}
    for name, r in doc["prefilter"].items():
        if "size" in r:
            print(f"prefilter {name} {r['size'][0]}x{r['size'][1]}: {r['prefilter_ms_median']:.0f} ms "
                  f"(first {r['prefilter_ms_first']:.0f} ms; file read {r['read_ms']:.0f} ms)")
    print(f"BRDF table (once per context): {doc['prefilter']['brdf_table_ms']['once']:.0f} ms")
    for name in VARIANTS:
        r = doc["frame"][name]
        print(f"frame {w}x{h} {args.mode}, {name}: median {r['median_ms']:.1f} ms, p95 {r['p95_ms']:.1f} ms, "
              f"{r['ratio']:.2f}x")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
