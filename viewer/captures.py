"""Screenshots and timing captures of the viewer's frames.

A capture shows each mode in turn for `warmup` + `frames` frames (mode A alone), records the GPU time of every
pass and the wall time between frames, then writes `captures/capture-<time>.json` (a summary per mode and every
record) and `.csv` (the records) under the viewer's output folder. Screenshots go to `screenshots/`.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import moderngl
import numpy as np
from PIL import Image

from models.atomic import write_atomic

from .errors import ViewerError, one_line
from .log import Log
from .materials_gl import TextureSet
from .modes import mode_label
from .renderer import ViewState

INVALID_QUERY_MS = 4294.0  # a timer query without a result reads as 2^32 - 1 ns (first use of a program)
CAPTURE_NOTE = "gpu_ms: GL timer query around the scene pass (mode A); wall_ms: time between frames"


def read_pixels(target: moderngl.Framebuffer, size: tuple[int, int]) -> np.ndarray:
    """The frame as (H, W, 3) uint8, top row first."""
    data = target.read(viewport=(0, 0, *size), components=3, alignment=1)
    return np.frombuffer(data, np.uint8).reshape(size[1], size[0], 3)[::-1].copy()


def write_image(path: Path, pixels: np.ndarray) -> Path:
    """An image file (format from the suffix), written atomically; a failure is one ViewerError line."""
    buf = io.BytesIO()
    try:
        Image.fromarray(pixels).save(buf, format=Image.registered_extensions().get(path.suffix.lower(), "PNG"))
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, buf.getvalue())
    except (OSError, ValueError) as e:
        raise ViewerError(f"{path}: cannot write the image ({getattr(e, 'strerror', None) or one_line(e)})") from None
    return path


def _stat(of: Callable[[np.ndarray], float], values: list[float]) -> float | None:
    return float(of(values)) if values else None


@dataclass
class Capture:
    """Records `frames` frames of every mode in `modes` (after `warmup` frames each)."""

    modes: list[str]
    frames: int
    out_dir: Path
    saved: ViewState  # the view to restore when done
    warmup: int = 2
    step: int = 0
    records: list[dict] = field(default_factory=list)

    @property
    def per_mode(self) -> int:
        return self.warmup + self.frames

    @property
    def done(self) -> bool:
        return self.step >= len(self.modes) * self.per_mode

    @property
    def fraction(self) -> float:
        return self.step / (len(self.modes) * self.per_mode)

    def current(self) -> tuple[str, int]:
        """The mode shown now and the index of the frame among its recorded ones (negative: warming up)."""
        return self.modes[self.step // self.per_mode], self.step % self.per_mode - self.warmup

    def show(self, state: ViewState) -> None:
        state.mode_a, state.compare = self.current()[0], "single"

    def record(self, timings: Mapping[str, float], frame_ms: float) -> None:
        mode, index = self.current()
        if index >= 0:
            # A timer query over 2^32 ns (4.3 s, on-sample neural on a CPU rasterizer) has no valid result.
            gpu = {f"{k}_ms": round(v, 4) if v < INVALID_QUERY_MS else None for k, v in timings.items()}
            self.records.append({"mode": mode, "frame": index, **gpu, "wall_ms": round(frame_ms, 4)})
        self.step += 1

    def summary(self, mode: str, tset: TextureSet | None) -> dict:
        rows = [r for r in self.records if r["mode"] == mode]
        gpu = [r["A_ms"] for r in rows if r.get("A_ms") is not None]
        wall = np.array([r["wall_ms"] for r in rows])
        return {
            "label": tset.label if tset else mode_label(mode), "frames": len(rows),
            "gpu_ms_mean": _stat(np.mean, gpu), "gpu_ms_median": _stat(np.median, gpu),
            "gpu_ms_min": _stat(np.min, gpu),
            "fps_gpu": float(1e3 / np.mean(gpu)) if gpu and np.mean(gpu) > 0 else None,
            "wall_ms_mean": float(np.mean(wall)), "fps_wall": float(1e3 / np.mean(wall)),
            "bits_per_texel": tset.bits_per_texel if tset else None,
            "gpu_bytes": tset.gpu_bytes if tset else None,
        }

    def write(self, header: Mapping[str, object], sets: Mapping[str, TextureSet]) -> tuple[Path, Path]:
        """JSON (`header`: renderer, size, vsync, material, ngtc, mesh; a summary per mode; the records) and CSV."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        stem = self.out_dir / f"capture-{time.strftime('%Y%m%d-%H%M%S')}"
        h = header
        doc = {"renderer": h["renderer"], "size": h["size"], "frames_per_mode": self.frames,
               "warmup_frames": self.warmup, "vsync": h["vsync"], "view": self.saved.view, "flat": self.saved.flat,
               "material": h["material"], "ngtc": h["ngtc"], "mesh": h["mesh"], "note": CAPTURE_NOTE,
               "modes": {m: self.summary(m, sets.get(m)) for m in self.modes}, "records": self.records}
        json_path, csv_path = stem.with_suffix(".json"), stem.with_suffix(".csv")
        write_atomic(json_path, (json.dumps(doc, indent=1) + "\n").encode())
        fields = ["mode", "frame", *sorted({k for r in self.records for k in r} - {"mode", "frame"})]
        table = io.StringIO(newline="")
        writer = csv.DictWriter(table, fieldnames=fields)
        writer.writeheader()
        writer.writerows(self.records)
        write_atomic(csv_path, table.getvalue().encode())
        return json_path, csv_path


class Captures:
    """The viewer's screenshots and captures: what the P and K keys and the panel's buttons ask for."""

    def __init__(self, output_dir: Path, log: Log):
        self.output_dir, self.log = output_dir, log
        self.frames = 30  # frames per mode of a capture started from the panel or the K key
        self.running: Capture | None = None
        self.last: tuple[Path, Path] | None = None
        self.screenshot_request: Path | None = None
        self.last_screenshot: Path | None = None

    def request_screenshot(self) -> None:
        self.screenshot_request = self.output_dir / "screenshots" / f"ngtc-{time.strftime('%Y%m%d-%H%M%S')}.png"

    def save_screenshot(self, target: moderngl.Framebuffer, size: tuple[int, int], path: Path) -> Path:
        write_image(path, read_pixels(target, size))
        self.log.note(f"screenshot {path}")
        return path

    def take_requested(self, target: moderngl.Framebuffer, size: tuple[int, int]) -> None:
        """The screenshot asked for since the last frame, if any, of the frame just drawn."""
        if self.screenshot_request is None:
            return
        try:
            self.last_screenshot = self.save_screenshot(target, size, self.screenshot_request)
        except ViewerError as e:
            self.log.error(f"screenshot: {e}")
        self.screenshot_request = None

    def start(self, modes: list[str], state: ViewState, frames: int | None = None, warmup: int = 2) -> None:
        if not modes:
            self.log.error("capture: nothing loaded to capture")
            return
        self.running = Capture(modes, max(1, frames or self.frames), self.output_dir / "captures",
                               ViewState(**vars(state)), max(0, warmup))

    def record(self, timings: Mapping[str, float], frame_ms: float) -> Capture | None:
        """Record the frame just drawn; returns the capture once it is complete (and no longer running)."""
        cap = self.running
        cap.record(timings, frame_ms)
        if not cap.done:
            return None
        self.running = None
        return cap

    def save(self, cap: Capture, header: Mapping[str, object], sets: Mapping[str, TextureSet]) -> None:
        try:
            self.last = cap.write(header, sets)
            self.log.note(f"capture {self.last[0]}")
        except OSError as e:
            self.log.error(f"capture: {one_line(e)}")
