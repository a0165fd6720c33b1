"""How stochastic filtering converges: `python -m viewer.convergence [MATERIAL] [--size WxH] [--frames N] [-o F]
[--flat --zoom Z] [--lod-bias B]`.

The viewer's stochastic mode shows the mean of its frames while the view is still (`viewer.accumulation`). This
renders the material on the sphere (or, `--flat`, the flat quad at `--zoom` pixels per texel) once with trilinear
on-sample filtering, then `--frames` still frames in the stochastic mode through the viewer's own frame (no panel),
and reports the PSNR of the shown image against the trilinear one after 1, 2, 4, ... frames: over the whole frame
and over the object alone (the pixels that are not background in the trilinear image). A table on stdout and a
JSON file. A hard case: `--flat --zoom 2 --lod-bias 1.5` (magnified 2x, LOD 0.5: both mips weigh half everywhere).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from models.atomic import write_atomic
from models.metrics import psnr

from .commands import parse_size
from .errors import ViewerError
from .headless import Headless
from .renderer import ViewState
from .scene import resolve_inputs

TARGET_DB, TARGET_FRAMES = 45.0, 64  # issue 11: after 64 still frames, 45 dB against the trilinear image


def object_mask(image: np.ndarray, background: tuple[float, float, float]) -> np.ndarray:
    """The pixels that differ from the background colour (cleared, not shaded: 8-bit levels of it)."""
    return np.abs(image.astype(np.int32) - np.round(np.asarray(background) * 255)).sum(axis=-1) > 3


def measure(host: Headless, frames: int, view: dict) -> dict:
    """PSNR of the stochastic mode's shown image against the trilinear image after 1, 2, 4, ... `frames`; `view`:
    ViewState fields, and "zoom" for the flat view."""
    viewer, zoom = host.viewer, view.pop("zoom", 1.0)
    viewer.state = ViewState(mode_a="neural-trilinear", **view)
    host.frame(panel=False)  # the flat quad, if asked for, (re)frames its camera: zoom after that
    viewer.flat_camera.scale = zoom
    trilinear = host.frame(panel=False)
    mask = object_mask(trilinear, viewer.state.background)
    viewer.state = ViewState(mode_a="neural-stochastic", **view)
    rows, start = [], time.perf_counter()
    for n in range(1, frames + 1):
        image = host.frame(panel=False)
        if n & (n - 1) == 0 or n == frames:
            rows.append({"frames": n, "accumulated": viewer.renderer.accumulated.get("A"),
                         "psnr_frame": round(psnr(image, trilinear, 255.0), 3),
                         "psnr_object": round(psnr(image[mask], trilinear[mask], 255.0), 3),
                         "mean_difference": round(float(np.mean(image[mask].astype(float) - trilinear[mask])), 4)})
    return {"object_fraction": round(float(mask.mean()), 4), "rows": rows,
            "seconds_per_frame": round((time.perf_counter() - start) / frames, 3)}


def run(material: Path | None, ngtc: Path | None, size: tuple[int, int], frames: int, view: dict) -> dict:
    host = Headless(size)
    try:
        host.viewer.open(material, ngtc)
        host.wait()
        if host.viewer.log.errors:
            raise ViewerError(host.viewer.log.errors[0])
        missing = {"neural-trilinear", "neural-stochastic"} - set(host.viewer.scene.sets)
        if missing:
            raise ViewerError("the stochastic and trilinear modes need an .ngtc")
        result = measure(host, frames, dict(view))
        scene = host.viewer.scene
        return {"renderer": host.ctx.info.get("GL_RENDERER"), "size": list(size), "frames": frames, "view": view,
                "material": str(scene.material_path), "ngtc": str(scene.ngtc_path), **result,
                "note": "psnr_*: dB of the stochastic mode's shown image (the mean of its still frames) against "
                        "the trilinear on-sample image, 8-bit RGB, over the frame or the object's pixels; "
                        "mean_difference: stochastic minus trilinear on the object, in 8-bit levels"}
    finally:
        host.release()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m viewer.convergence", description=__doc__.splitlines()[0])
    parser.add_argument("target", nargs="?", type=Path, help="material folder, .glb/.gltf or .ngtc (default tiles)")
    parser.add_argument("--ngtc", type=Path, help="the .ngtc, if not beside the material")
    parser.add_argument("--size", default="1280x720", help="frame size WxH")
    parser.add_argument("--frames", type=int, default=TARGET_FRAMES, help="still stochastic frames")
    parser.add_argument("--flat", action="store_true", help="the flat quad instead of the sphere")
    parser.add_argument("--zoom", type=float, default=1.0, help="flat view: pixels per texel")
    parser.add_argument("--lod-bias", type=float, default=0.0, help="added to the mip level")
    parser.add_argument("-o", "--out", type=Path, default=Path("convergence.json"), help="JSON results")
    args = parser.parse_args(argv)
    try:
        if args.frames < 1:
            raise ViewerError("--frames must be at least 1")
        if not 1 / 64 <= args.zoom <= 64:
            raise ViewerError("--zoom must be 1/64 .. 64 pixels per texel")
        view = {"flat": args.flat, "zoom": args.zoom, "lod_bias": args.lod_bias}
        doc = run(*resolve_inputs(args.target, args.ngtc), parse_size(args.size), args.frames, view)
        write_atomic(args.out, (json.dumps(doc, indent=1) + "\n").encode())
    except (ViewerError, OSError) as e:
        sys.exit(f"viewer.convergence: error: {e}")
    where = f"flat view at {args.zoom:g} pixels per texel" if args.flat else "sphere"
    print(f"stochastic vs trilinear on sample, {where}, LOD bias {args.lod_bias:g}, "
          f"{doc['size'][0]}x{doc['size'][1]}, {doc['renderer']}, "
          f"{doc['seconds_per_frame']} s a frame (object: {doc['object_fraction']:.0%} of the frame)")
    print("frames  PSNR frame dB  PSNR object dB  mean difference")
    for r in doc["rows"]:
        print(f"{r['frames']:6d}  {r['psnr_frame']:13.2f}  {r['psnr_object']:14.2f}  {r['mean_difference']:15.3f}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
