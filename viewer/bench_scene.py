"""`python -m viewer.bench_scene [SCENE.glb]`: the frame time of a whole glTF scene per mode, printed and as JSON.

The scene opens as `ngtc view` opens it (each material's `.ngtc` from an `ngtc compress` folder beside it, the cache,
or compressed first with `--compress-seconds`); frames of the modes are interleaved, each timed between glFinish
calls (llvmpipe's timer queries end before it rasterizes), median and p95, after 2 warm-up rounds. Also recorded:
draw calls per pass (primitives + the depth pre-pass), the scene's GPU bytes in each mode, where each .ngtc came from.
`--shot FILE`: the last frame of each mode side by side (in --modes order), cropped to where the scene is.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from .captures import read_pixels, write_image
from .headless import Headless
from .scene_materials import COMPRESS_SECONDS

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SCENE = ROOT / ".cache" / "data" / "BoomBoxWithAxes.mtlx.glb"


def side_by_side(images: list[np.ndarray], background: tuple[float, float, float], margin: int = 16) -> np.ndarray:
    """The images cropped to the union of their non-background pixels (plus a margin), left to right."""
    bg = np.round(np.asarray(background) * 255)
    mask = np.any([np.abs(im.astype(np.float64) - bg).max(axis=-1) > 3 for im in images], axis=0)
    rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    h, w = mask.shape
    y0, y1 = max(rows[0] - margin, 0), min(rows[-1] + margin + 1, h)
    x0, x1 = max(cols[0] - margin, 0), min(cols[-1] + margin + 1, w)
    gap = np.full((y1 - y0, 2, 3), 255, np.uint8)
    parts = [p for im in images for p in (im[y0:y1, x0:x1], gap)][:-1]
    return np.concatenate(parts, axis=1)


def bench_scene(path: Path, size: tuple[int, int], modes: list[str], frames: int,
                compress_seconds: float = COMPRESS_SECONDS, shot: Path | None = None) -> dict:
    host = Headless(size)
    try:
        viewer = host.viewer
        start = time.perf_counter()
        viewer.open_scene(path, compress_seconds=compress_seconds)
        for mode in modes:  # every mode loaded (and its .ngtc found or compressed) before timing
            viewer.state.mode_a = mode
            host.wait()
        load_s = time.perf_counter() - start
        if viewer.log.errors:
            raise SystemExit(f"bench_scene: {viewer.log.errors[0]}")
        g = viewer.gltf
        times: dict[str, list[float]] = {m: [] for m in modes}
        draws: dict[str, int] = {}
        images: dict[str, np.ndarray] = {}
        for i in range(frames + 2):
            for mode in modes:
                viewer.state.mode_a = mode
                ms = host.timed_frame(False)
                if i >= 2:  # warm-up: programs compiled, environment prefiltered
                    times[mode].append(ms)
                draws[mode] = g.draw.draws
                if shot is not None and i == frames + 1:
                    images[mode] = read_pixels(host.fbo, size)
        if shot is not None:
            write_image(shot, side_by_side([images[m] for m in modes], viewer.state.background))
        base = float(np.median(times[modes[0]]))
        result = {mode: {"median_ms": float(np.median(t)), "p95_ms": float(np.percentile(t, 95)),
                         "ratio": float(np.median(t)) / base, "draws_per_pass": draws[mode],
                         "gpu_bytes": g.materials.gpu_bytes(mode)[0],
                         "materials_in_mode": g.materials.gpu_bytes(mode)[1]} for mode, t in times.items()}
        materials = {f.name: {"textured": f.textured, "alpha": f.alpha_mode,
                              "size": [s.material.width, s.material.height] if (s := g.materials.scenes.get(i))
                              and s.material else None,
                              "ngtc": str(s.ngtc_path) if s is not None and s.ngtc_path else None,
                              "ngtc_psnr_mip0": (s.sets["neural"].psnr or [None])[0] if s is not None
                              and "neural" in s.sets else None}
                     for i, f in g.data.materials.items()}
        return {"scene": str(path), "primitives": len(g.data.primitives), "triangles": len(g.data.mesh.indices),
                "load_seconds": round(load_s, 1), "materials": materials, "modes": result}
    finally:
        host.release()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("scene", nargs="?", type=Path, default=DEFAULT_SCENE)
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--modes", default="reference,neural", help="comma-separated; the first is the ratios' base")
    ap.add_argument("--compress-seconds", type=float, default=COMPRESS_SECONDS,
                    help="budget of a missing .ngtc (compressed before timing)")
    ap.add_argument("-o", "--out", type=Path, default=ROOT / "bench" / "scene_llvmpipe_720p.json")
    ap.add_argument("--shot", type=Path, help="a PNG of the modes' last frames side by side")
    args = ap.parse_args(argv)
    w, h = (int(v) for v in args.size.split("x"))
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    doc = {"machine": platform.node(), "load_average_before": list(os.getloadavg()), "size": [w, h],
           "frames": args.frames, **bench_scene(args.scene, (w, h), modes, args.frames, args.compress_seconds,
                                                  args.shot)}
    doc["load_average_after"] = list(os.getloadavg())
    from .headless import headless_context

    ctx = headless_context()
    doc["renderer"] = ctx.info.get("GL_RENDERER")
    ctx.release()
    print(f"{doc['scene']}: {doc['primitives']} primitives, {doc['triangles']:,} triangles, {len(doc['materials'])} "
          f"materials ({doc['renderer']})")
    for mode, r in doc["modes"].items():
        print(f"frame {w}x{h} {mode}: median {r['median_ms']:.1f} ms, p95 {r['p95_ms']:.1f} ms, {r['ratio']:.2f}x; "
              f"{r['draws_per_pass']} draws a pass; scene on GPU {r['gpu_bytes'] / 2**20:.2f} MiB "
              f"({r['materials_in_mode']} materials)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1))
    print(f"wrote {args.out}" + (f" and {args.shot}" if args.shot else ""))


if __name__ == "__main__":
    main()
