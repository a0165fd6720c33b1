"""How stochastic filtering converges: `python -m viewer.convergence [MATERIAL] [--size WxH] [--frames N] [-o F]`.

The viewer's stochastic mode shows the mean of its frames while the view is still (`viewer.accumulation`). This
renders the material on the sphere once with trilinear on-sample filtering, then `--frames` still frames in the
stochastic mode through the viewer's own frame (no panel), and reports the PSNR of the shown image against the
trilinear one after 1, 2, 4, ... frames: over the whole frame and over the object alone (the pixels that are not
background in the trilinear image). A table on stdout and a JSON file.
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


def object_mask(image: np.ndarray) -> np.ndarray:
    """The pixels that differ from the background (the top left pixel's colour)."""
    return np.abs(image.astype(np.int32) - image[0, 0]).sum(axis=-1) > 3


def measure(host: Headless, frames: int) -> dict:
    """PSNR of the stochastic mode's shown image against the trilinear image after 1, 2, 4, ... `frames`."""
    viewer = host.viewer
    viewer.state = ViewState(mode_a="neural-trilinear")
    trilinear = host.frame(panel=False)
    mask = object_mask(trilinear)
    viewer.state = ViewState(mode_a="neural-stochastic")
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


def run(material: Path | None, ngtc: Path | None, size: tuple[int, int], frames: int) -> dict:
    host = Headless(size)
    try:
        host.viewer.open(material, ngtc)
        host.wait()
        if host.viewer.log.errors:
            raise ViewerError(host.viewer.log.errors[0])
        missing = {"neural-trilinear", "neural-stochastic"} - set(host.viewer.scene.sets)
        if missing:
            raise ViewerError("the stochastic and trilinear modes need an .ngtc")
        result = measure(host, frames)
        scene = host.viewer.scene
        return {"renderer": host.ctx.info.get("GL_RENDERER"), "size": list(size), "frames": frames,
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
    parser.add_argument("-o", "--out", type=Path, default=Path("convergence.json"), help="JSON results")
    args = parser.parse_args(argv)
    try:
        if args.frames < 1:
            raise ViewerError("--frames must be at least 1")
        doc = run(*resolve_inputs(args.target, args.ngtc), parse_size(args.size), args.frames)
        write_atomic(args.out, (json.dumps(doc, indent=1) + "\n").encode())
    except (ViewerError, OSError) as e:
        sys.exit(f"viewer.convergence: error: {e}")
    print(f"stochastic vs trilinear on sample, {doc['size'][0]}x{doc['size'][1]}, {doc['renderer']}, "
          f"{doc['seconds_per_frame']} s a frame (object: {doc['object_fraction']:.0%} of the frame)")
    print("frames  PSNR frame dB  PSNR object dB  mean difference")
    for r in doc["rows"]:
        print(f"{r['frames']:6d}  {r['psnr_frame']:13.2f}  {r['psnr_object']:14.2f}  {r['mean_difference']:15.3f}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
