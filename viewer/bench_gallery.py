"""`python -m viewer.bench_gallery LIBRARY_DIR`: the gallery's frame against the normal view's one sphere.

Headless, every material loaded first; then frames of the gallery and of one material on the sphere alternate
(glFinish between frames: the wall clock, which a software rasterizer needs), in the mode given. Prints, and
writes with -o, the median frame times, their ratio and the cells drawn (each a depth pre-pass and a shaded draw
of the one sphere mesh)."""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from .commands import parse_size
from .gallery import Library
from .headless import Headless
from .scene import DEFAULT_MESH


def timed(host: Headless) -> float:
    start = time.perf_counter()
    host.frame(panel=False)  # reads the pixels back: the frame is finished
    return (time.perf_counter() - start) * 1e3


def bench_gallery(path: Path, mode: str, size: tuple[int, int], frames: int) -> dict:
    host = Headless(size)
    try:
        viewer = host.viewer
        viewer.state.mode_a = mode
        viewer.library = library = Library(viewer.ctx, path)
        viewer.scene.load_mesh(DEFAULT_MESH)  # the normal view: the first material on the sphere
        library.choose(viewer, library.first())
        library.gallery = True
        host.wait()
        times: dict[str, list[float]] = {"gallery": [], "sphere": []}
        for i in range(frames + 1):  # the first of each: compiles, warms up; not counted
            for view in ("gallery", "sphere"):
                library.gallery = view == "gallery"
                ms = timed(host)
                if i:
                    times[view].append(ms)
        cells = len(library.renderer.rects)
        med = {k: statistics.median(v) for k, v in times.items()}
        return {"library": str(path), "mode": mode, "size": list(size), "cells": cells,
                "renderer": viewer.ctx.info.get("GL_RENDERER"), "frames": frames,
                "gallery_ms": med["gallery"], "sphere_ms": med["sphere"], "ratio": med["gallery"] / med["sphere"],
                "times_ms": times, "left_out": list(library.log.errors)}
    finally:
        host.release()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("library", type=Path)
    parser.add_argument("--mode", default="neural")
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("-o", "--out", type=Path)
    args = parser.parse_args()
    doc = bench_gallery(args.library, args.mode, parse_size(args.size), args.frames)
    print(f"{doc['cells']} cells in mode {doc['mode']} at {args.size} on {doc['renderer']}: gallery "
          f"{doc['gallery_ms']:.1f} ms, one sphere {doc['sphere_ms']:.1f} ms ({doc['ratio']:.2f}x), medians of "
          f"{doc['frames']} frames")
    for line in doc["left_out"]:
        print(f"not shown: {line}")
    if args.out:
        args.out.write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
