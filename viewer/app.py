"""The viewer application: a glfw window with an imgui panel (`ngtc view`), or headless EGL (`ngtc render`).

`Viewer` owns the scene (material, texture sets per mode, mesh, cameras), the background jobs that load
and encode, the panel, keyboard and mouse handling, timings, captures and screenshots. `Viewer.frame` is
called once per frame by either host: `run_window` (glfw, vsync) or `render_headless` (an EGL context
and an offscreen framebuffer; the panel is rendered there too, by imgui's OpenGL 3 backend).

Every GL call happens on the main thread. Loading a material (decoding PNGs, building the reference mip
chain), reading a `.ngtc`, loading a mesh and encoding ASTC (`models.astc.encode_material`, which runs the
encoder in a subprocess) run in background threads; their GPU uploads happen in `frame` when they finish.
A failure is shown in the panel and the current scene stays (and a failed mode is not retried every frame).

Modes: reference, astc-<block>, and neural / neural-trilinear / neural-stochastic of the main `.ngtc`; further
`.ngtc` files of the material (the presets `ngtc eval` wrote to report/ngtc/, found by the material's
fingerprint, or any added from the panel) are extra modes "neural@<preset>", ... loaded when first chosen.
"""

from __future__ import annotations

import csv
import ctypes
import io
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import moderngl
import numpy as np
from imgui_bundle import imgui, implot
from PIL import Image

from models.atomic import write_atomic

from .camera import FlatCamera, OrbitCamera
from .materials_gl import (
    TextureSet,
    astc_set,
    cache_root,
    find_astc_dir,
    find_ngtc_presets,
    neural_sets,
    psnr_per_mip,
    reference_set,
    report_psnr,
)
from .mesh import MeshData, load_mesh, quad_mesh
from .renderer import COLORMAPS, COMPARES, PASSES, TONEMAPS, VIEWS, Renderer, ViewState

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MATERIAL = ROOT / "assets" / "tiles"
DEFAULT_MESH = ROOT / "assets" / "meshes" / "material-sphere.obj"
ASTC_BLOCKS = ("4x4", "5x5", "6x6", "8x8", "10x10", "12x12")
NEURAL_MODES = ("neural", "neural-trilinear", "neural-stochastic")
MODES = ("reference", *(f"astc-{b}" for b in ASTC_BLOCKS), *NEURAL_MODES)
PRESET_SEP = "@"  # neural modes of further .ngtc files: "neural@bpp1.2", "neural-trilinear@bpp1.2", ...
ASTC_PRESET = "medium"
PANEL_WIDTH = 350
HISTORY = 240  # frames in the rolling timing plot
INVALID_QUERY_MS = 4294.0  # a timer query without a result reads as 2^32 - 1 ns (first use of a program)
SHORTCUTS = (
    ("F1", "show / hide this help"), ("Tab", "show / hide the panel"),
    ("M / Shift+M", "next / previous mode A"), ("N / Shift+N", "next / previous mode B"),
    ("S", "split screen A | B on / off"), ("D", "difference |A - B| on / off"),
    ("Left / Right", "move the split divider"), ("C / Shift+C", "next / previous channel view"),
    ("] / [", "force a coarser / finer mip (below 0: automatic)"), ("= / -", "LOD bias +/- 0.25"),
    ("0", "automatic mip, no bias"), ("F", "flat view (1:1 texels) / mesh"), ("R", "reframe the camera"),
    ("V", "vsync on / off"), ("P", "screenshot"), ("K", "capture timings of every loaded mode"),
    ("Esc", "quit"), ("mouse", "left drag: orbit (flat view: pan), right/middle drag: pan, wheel: zoom"),
)


class ViewerError(ValueError):
    """Something the viewer cannot show (one line); the CLI prints it and exits with status 2."""


def mode_label(mode: str) -> str:
    base, _, preset = mode.partition(PRESET_SEP)
    if preset:
        return f"{mode_label(base)} [{preset}]"
    if mode.startswith("astc-"):
        return f"ASTC {mode[5:]}"
    return {"reference": "reference", "neural": "neural (decoded on load)",
            "neural-trilinear": "neural (on sample, trilinear)",
            "neural-stochastic": "neural (on sample, stochastic)"}.get(mode, mode)


def check_mode(mode: str) -> str:
    base, sep, preset = mode.partition(PRESET_SEP)
    if mode not in MODES and not (sep and base in NEURAL_MODES and preset):
        raise ViewerError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)} (a neural mode may name "
                          f"another .ngtc of `ngtc eval` for the material by its preset: neural{PRESET_SEP}bpp1.2)")
    return mode


def preset_modes(key: str) -> tuple[str, ...]:
    return tuple(f"{base}{PRESET_SEP}{key}" for base in NEURAL_MODES)


def preset_key(path: Path, material: str, taken: dict[str, Path]) -> str:
    """The mode suffix of a further `.ngtc`: its file name less the material's ("rocks_bpp1.2" -> "bpp1.2")."""
    stem = path.stem[len(material) + 1:] if material and path.stem.startswith(f"{material}_") else path.stem
    stem = "".join(c if c.isalnum() or c in "._-" else "-" for c in stem) or "ngtc"
    key, n = stem, 1
    while key in taken:
        n += 1
        key = f"{stem}-{n}"
    return key


def resolve_inputs(target: Path | None, ngtc: Path | None = None) -> tuple[Path | None, Path | None]:
    """(material, ngtc) from a command-line argument: a material folder or glTF file (its `.ngtc` beside it,
    same stem, is picked up), or an `.ngtc` (its material beside it, same stem, when present)."""
    if target is None:
        target = DEFAULT_MATERIAL
        if ngtc is None and target.with_suffix(".ngtc").is_file():
            ngtc = target.with_suffix(".ngtc")
        return target, ngtc
    target = Path(target)
    if target.suffix.lower() == ".ngtc":
        if not target.is_file():
            raise ViewerError(f"{target}: no such file")
        sibling = target.with_suffix("")
        return (sibling if sibling.exists() else None), ngtc or target
    if not target.exists():
        raise ViewerError(f"{target}: no such file or folder")
    if ngtc is None:
        candidate = target.with_suffix(".ngtc") if target.is_file() else target.parent / f"{target.name}.ngtc"
        ngtc = candidate if candidate.is_file() else None
    return target, ngtc


# ----------------------------------------------------------------------------------------------- jobs


class Job:
    """`work()` in a daemon thread; `done(result)` runs on the main thread once it has finished.

    `modes`: the modes it makes (not asked for again once it failed); `progress()`: a fraction done, or None."""

    def __init__(self, label: str, work: Callable[[], Any], done: Callable[[Any], None],
                 modes: tuple[str, ...] = (), progress: Callable[[], float | None] | None = None):
        self.label, self.work, self.done, self.modes = label, work, done, modes
        self.started = time.perf_counter()
        self._progress, self._fraction, self._polled = progress, None, 0.0
        self.result: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=f"ngtc-{label}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.result = self.work()
        except BaseException as e:  # noqa: BLE001 - reported in the panel
            self.error = e

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def fraction(self) -> float | None:
        """`progress()`, polled at most 5 times a second (it may look at files)."""
        now = time.perf_counter()
        if self._progress is not None and now - self._polled > 0.2:
            self._polled = now
            try:
                self._fraction = self._progress()
            except OSError:
                self._fraction = None
        return self._fraction


def astc_progress(out_dir: Path, since: float, expected_bytes: int) -> float:
    """How much of an ASTC encoding into `out_dir` is written: bytes of `.astc` files newer than `since`."""
    written = 0
    for f in out_dir.glob("*.astc"):
        st = f.stat()
        if st.st_mtime >= since:
            written += st.st_size
    return min(written / max(expected_bytes, 1), 1.0)


def human_bytes(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 2**10:.1f} KiB"


def one_line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) < 400 else text[:400] + "..."


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


# ----------------------------------------------------------------------------------------------- capture


@dataclass
class Capture:
    """Records `frames` frames of every mode in `modes` (after `warmup` frames each), then writes files."""

    modes: list[str]
    frames: int
    out_dir: Path
    warmup: int = 2
    step: int = 0
    saved: ViewState | None = None
    records: list[dict] | None = None

    @property
    def per_mode(self) -> int:
        return self.warmup + self.frames

    @property
    def done(self) -> bool:
        return self.step >= len(self.modes) * self.per_mode

    def current(self) -> tuple[str, int]:
        return self.modes[self.step // self.per_mode], self.step % self.per_mode - self.warmup


# ----------------------------------------------------------------------------------------------- viewer


class Viewer:
    def __init__(self, ctx: moderngl.Context, window=None, output_dir: Path | str = "."):
        self.ctx = ctx
        self.window = window
        self.output_dir = Path(output_dir)
        self.imgui_context = imgui.create_context()
        imgui.set_current_context(self.imgui_context)  # create_context keeps another viewer's current
        self.implot_context = implot.create_context()
        implot.set_current_context(self.implot_context)
        io = imgui.get_io()
        io.set_ini_filename("")
        if window is not None:
            imgui.backends.glfw_init_for_opengl(ctypes.cast(window, ctypes.c_void_p).value, True)
        imgui.backends.opengl3_init("#version 430")
        self.renderer = Renderer(ctx)
        self.panel_query = ctx.query(time=True)
        self.state = ViewState()
        self.orbit = OrbitCamera()
        self.flat_camera = FlatCamera()
        self.sets: dict[str, TextureSet] = {}
        self.presets: dict[str, Path] = {}  # further .ngtc files of the material, by preset: modes "neural@<key>"
        self.failed: set[str] = set()  # modes whose loading failed: not asked for again until dismissed
        self.material = None
        self.fingerprint: str | None = None
        self.material_path: Path | None = None
        self.ngtc_path: Path | None = None
        self.mesh_path: Path | None = None
        self.mesh: MeshData | None = None
        self.quad: MeshData | None = None
        self.report: dict[str, list[float]] = {}
        self.jobs: list[Job] = []
        self.errors: list[str] = []
        self.messages: deque[str] = deque(maxlen=5)
        self.history = {name: deque(maxlen=HISTORY) for name in (*PASSES, "panel", "frame")}
        self.timings: dict[str, float] = {}
        self.capture: Capture | None = None
        self.last_capture: tuple[Path, Path] | None = None
        self.capture_frames = 30
        self.show_panel = True
        self.panel_width = 0.0
        self.show_help = False
        self.vsync = True
        self.quit = False
        self.path_input = ""
        self.screenshot_request: Path | None = None
        self.last_screenshot: Path | None = None
        self.size = (1, 1)
        self._last_frame = time.perf_counter()
        self.frame_ms = 0.0

    # ------------------------------------------------------------------------------------- loading

    def open(self, material: Path | None, ngtc: Path | None = None, mesh: Path | None = None,
             wait: bool = False) -> None:
        """Start loading a scene; `wait` blocks until everything (and its uploads) is done."""
        self.load_mesh(mesh or DEFAULT_MESH)
        if material is not None:
            self.load_material(material)
        elif ngtc is not None:
            self.state.mode_a = "neural"
        if ngtc is not None:
            self.load_ngtc(ngtc)
        if wait:
            self.wait()

    def wait(self, timeout: float = 600.0) -> None:
        """Finish every background job (and whatever they start), uploading their results."""
        end = time.perf_counter() + timeout
        while True:
            self.ensure_modes()
            if not self.jobs:
                return
            for job in list(self.jobs):
                job.thread.join(max(0.0, end - time.perf_counter()))
            self.poll_jobs()
            if time.perf_counter() > end:
                raise ViewerError(f"loading did not finish in {timeout:.0f} s")

    def _start(self, label: str, work: Callable[[], Any], done: Callable[[Any], None], **kwargs) -> None:
        self.jobs.append(Job(label, work, done, **kwargs))

    def busy(self, label: str) -> bool:
        return any(job.label == label for job in self.jobs)

    def poll_jobs(self) -> None:
        for job in [j for j in self.jobs if not j.thread.is_alive()]:
            self.jobs.remove(job)
            try:
                if job.error is not None:
                    raise job.error
                job.done(job.result)
            except Exception as e:  # noqa: BLE001 - any failure: show it, keep the scene
                self.failed.update(job.modes)
                self.report_error(f"{job.label}: {one_line(e)}")

    def report_error(self, message: str) -> None:
        self.errors.append(message)
        del self.errors[:-8]

    def search_roots(self, *paths: Path | None) -> list[Path]:
        """Where `ngtc eval` outputs (report/astc, report/ngtc) about the scene's files may be."""
        near = [q.parent for q in (*paths, self.material_path, self.ngtc_path) if q is not None]
        return list(dict.fromkeys([Path.cwd(), ROOT, *near, *(q.parent for q in near)]))

    def load_material(self, path: Path | str) -> None:
        from models.astc import material_fingerprint
        from models.material import load_material

        path = Path(path)

        def work():
            material = load_material(path)
            material.mip_chain()
            fingerprint = material_fingerprint(material)
            return material, fingerprint, find_ngtc_presets(self.search_roots(path), fingerprint)

        def done(result) -> None:
            material, fingerprint, presets = result
            ref = reference_set(self.ctx, material)
            stale = [m for m in self.sets if m == "reference" or m.startswith("astc-") or PRESET_SEP in m]
            for mode in sorted(stale, key=lambda m: self.sets[m].owns_neural):  # owners (shared GL data) last
                self.sets.pop(mode).release()
            self.sets["reference"] = ref
            self.material, self.fingerprint, self.material_path = material, fingerprint, path
            self.presets, self.failed = presets, set()
            self.quad = quad_mesh(material.width, material.height)
            self._read_reports()
            self.messages.append(f"material {material.name}: {material.width}x{material.height}, "
                                 f"{material.channels} channels")

        self._start(f"material {path.name}", work, done)

    def load_ngtc(self, path: Path | str, preset: str | None = None) -> None:
        """The neural modes from a `.ngtc`; with `preset`, a further set of them ("neural@<preset>", ...)."""
        from models import ngtc_file

        path = Path(path)
        modes = preset_modes(preset) if preset else NEURAL_MODES

        def done(ct) -> None:
            sets = neural_sets(self.ctx, ct)
            for mode in sorted((m for m in modes if m in self.sets), key=lambda m: self.sets[m].owns_neural):
                self.sets.pop(mode).release()  # owners (shared GL data) last
            for s, mode in zip(sets, modes, strict=True):
                s.mode = mode
                self.sets[mode] = s
            if preset:
                self.presets[preset] = path
            else:
                self.ngtc_path = path
            self._read_reports()
            self.messages.append(f"neural texture {path.name}: {ct.width}x{ct.height}, {ct.mips} mips")

        self._start(f"ngtc {path.name}", lambda: ngtc_file.load(path), done, modes=modes)

    def add_ngtc(self, path: Path | str) -> None:
        """A further `.ngtc` (another preset of the material) as extra neural modes, named after its file."""
        path = Path(path)
        if not path.is_file() or path.suffix.lower() != ".ngtc":
            self.report_error(f"{path}: not an .ngtc file")
            return
        same = [k for k, p in self.presets.items() if p.resolve() == path.resolve()]
        self.load_ngtc(path, same[0] if same else preset_key(path, self.material.name if self.material else "",
                                                             self.presets))

    def preset_keys(self) -> list[str]:
        """The further presets, less the `.ngtc` the plain neural modes show."""
        primary = self.ngtc_path.resolve() if self.ngtc_path else None
        return [k for k, p in self.presets.items() if primary is None or p.resolve() != primary]

    def modes(self) -> list[str]:
        return [*MODES, *(m for k in self.preset_keys() for m in preset_modes(k))]

    def request_preset(self, key: str) -> None:
        modes = preset_modes(key)
        if any(job.label.startswith("material ") for job in self.jobs):
            return  # the presets of the material being loaded are not known yet
        if key not in self.presets:
            self.failed.update(modes)
            self.report_error(f"no .ngtc with preset {key!r} for this material (from `ngtc eval`, in report/ngtc/, "
                              f"or added with 'add .ngtc')")
        elif not self.busy(f"ngtc {self.presets[key].name}"):
            self.load_ngtc(self.presets[key], key)

    def load_mesh(self, path: Path | str) -> None:
        path = Path(path)

        def done(mesh: MeshData) -> None:
            self.mesh, self.mesh_path = mesh, path
            self.orbit.frame(mesh.center, mesh.radius, self.size[0] / max(self.size[1], 1))
            self.messages.append(f"mesh {mesh.name}: {len(mesh.indices):,} triangles")

        self._start(f"mesh {path.name}", lambda: load_mesh(path), done)

    def request_astc(self, block: str, preset: str = ASTC_PRESET) -> None:
        """ASTC at `block`: from an `ngtc eval` folder when one matches the material, else encoded now (in a
        background thread; the encoder itself runs in a subprocess) into the cache."""
        from models import astc

        mode, label = f"astc-{block}", f"ASTC {block}"
        if mode in self.sets or self.busy(label) or self.material is None:
            return
        material, fingerprint, roots = self.material, self.fingerprint, self.search_roots()
        out = cache_root() / "astc" / f"{material.name}-{fingerprint[:16]}" / f"{block}_{preset}"
        expected = len(astc.plan_textures(material.maps)) * sum(
            astc.block_bytes(w, h, block) + astc.HEADER_BYTES for w, h in astc.mip_sizes(material.width,
                                                                                            material.height))
        since = time.time() - 1.0  # file times may be rounded

        def work():
            found = find_astc_dir(material, block, roots, fingerprint)
            if found is None:
                astc.encode_material(material, block, preset, out, fingerprint)
                found = out
            chain = astc.decode_dir(found, material.maps)
            return found, psnr_per_mip(chain, material.mip_chain())

        def done(result) -> None:
            out_dir, psnr = result
            if self.material is not material:
                return  # the material changed meanwhile; ensure_modes asks again
            tset = astc_set(self.ctx, out_dir, material.maps)
            tset.psnr = psnr
            self.sets[mode] = tset
            self.messages.append(f"{label} from {out_dir}")

        self._start(label, work, done, modes=(mode,), progress=lambda: astc_progress(out, since, expected))

    def ensure_modes(self) -> None:
        """Start whatever the chosen modes need: ASTC encodings and further .ngtc presets are loaded on demand
        (once: a mode that failed waits until the errors are dismissed)."""
        for mode in {self.state.mode_a, self.state.mode_b if self.state.compare != "single" else None}:
            if not mode or mode in self.sets or mode in self.failed:
                continue
            if mode.startswith("astc-"):
                self.request_astc(mode[5:])
            elif PRESET_SEP in mode:
                self.request_preset(mode.partition(PRESET_SEP)[2])

    def _read_reports(self) -> None:
        """PSNR per mip from an `ngtc eval` report.json about this material, when one is around."""
        candidates = [Path.cwd() / "report" / "report.json"]
        for p in (self.ngtc_path, self.material_path, *self.presets.values()):
            if p is not None:
                candidates += [p.parent / "report.json", p.parent.parent / "report.json",
                               p.parent / "report" / "report.json"]
        self.report = {}
        neural = {None: self.ngtc_path, **{k: self.presets[k] for k in self.preset_keys()}}
        for c in [c for c in dict.fromkeys(candidates) if c.is_file()]:
            for key, path in neural.items():
                for mode, values in report_psnr(c, self.fingerprint, path).items():
                    if mode == "neural":
                        for m in preset_modes(key) if key else NEURAL_MODES:
                            self.report.setdefault(m, values)
                    elif key is None:
                        self.report.setdefault(mode, values)

    def release(self) -> None:
        for tset in sorted(self.sets.values(), key=lambda s: s.owns_neural):  # owners (shared GL data) last
            tset.release()
        self.sets.clear()
        self.renderer.release()
        imgui.set_current_context(self.imgui_context)
        implot.set_current_context(self.implot_context)
        imgui.backends.opengl3_shutdown()
        if self.window is not None:
            imgui.backends.glfw_shutdown()
        implot.destroy_context(self.implot_context)
        imgui.destroy_context(self.imgui_context)

    # ------------------------------------------------------------------------------------- frame

    @property
    def camera(self):
        return self.flat_camera if self.state.flat else self.orbit

    def frame(self, target: moderngl.Framebuffer, size: tuple[int, int], panel: bool | None = None) -> None:
        """Everything of one frame: jobs, input, the render callback, the panel, captures, screenshots."""
        now = time.perf_counter()
        self.frame_ms, self._last_frame = (now - self._last_frame) * 1e3, now
        self.size = size
        imgui.set_current_context(self.imgui_context)
        implot.set_current_context(self.implot_context)
        self.poll_jobs()
        self.ensure_modes()
        if self.capture is not None:
            self._capture_before()
        imgui.backends.opengl3_new_frame()
        if self.window is not None:
            imgui.backends.glfw_new_frame()
        else:
            io = imgui.get_io()
            io.display_size = imgui.ImVec2(*size)
            io.delta_time = max(self.frame_ms / 1e3, 1e-4)
        imgui.new_frame()
        self.handle_input()  # headless: only events a test injects (io.add_key_event)
        mesh = self.quad if self.state.flat else self.mesh
        if mesh is not None and self.renderer.mesh is not mesh:
            self.renderer.set_mesh(mesh)
            if mesh.flat:
                self.flat_camera.frame(mesh.center, mesh.radius)
        show_panel = self.show_panel if panel is None else panel
        scale = imgui.get_io().display_framebuffer_scale.x if self.window is not None else 1.0
        self.renderer.offset_px = self.panel_width * scale if show_panel else 0.0
        self.timings = self.renderer.render(target, size, self.state, self.sets, self.camera)
        if show_panel:
            self.draw_panel()
        if self.show_help:
            self.draw_help()
        imgui.render()
        with self.panel_query:
            target.use()
            imgui.backends.opengl3_render_draw_data(imgui.get_draw_data())
        self.timings["panel"] = self.panel_query.elapsed / 1e6
        for name, ms in self.timings.items():
            if ms < INVALID_QUERY_MS:
                self.history[name].append(ms)
        self.history["frame"].append(self.frame_ms)
        if self.capture is not None:
            self._capture_after()
        if self.screenshot_request is not None:
            try:
                self.last_screenshot = self.save_screenshot(target, size, self.screenshot_request)
            except ViewerError as e:
                self.report_error(f"screenshot: {e}")
            self.screenshot_request = None

    def read_pixels(self, target: moderngl.Framebuffer, size: tuple[int, int]) -> np.ndarray:
        """The frame as (H, W, 3) uint8, top row first."""
        data = target.read(viewport=(0, 0, *size), components=3, alignment=1)
        return np.frombuffer(data, np.uint8).reshape(size[1], size[0], 3)[::-1].copy()

    def save_screenshot(self, target: moderngl.Framebuffer, size: tuple[int, int], path: Path) -> Path:
        write_image(path, self.read_pixels(target, size))
        self.messages.append(f"screenshot {path}")
        return path

    def request_screenshot(self) -> None:
        self.screenshot_request = self.output_dir / "screenshots" / f"ngtc-{time.strftime('%Y%m%d-%H%M%S')}.png"

    # ------------------------------------------------------------------------------------- capture

    def start_capture(self, frames: int | None = None, modes: list[str] | None = None, warmup: int = 2) -> None:
        modes = modes or [m for m in self.modes() if m in self.sets]
        if not modes:
            self.report_error("capture: nothing loaded to capture")
            return
        out = self.output_dir / "captures"
        self.capture = Capture(modes, max(1, frames or self.capture_frames), out, max(0, warmup))
        self.capture.saved = ViewState(**vars(self.state))
        self.capture.records = []

    def _capture_before(self) -> None:
        mode, _ = self.capture.current()
        self.state.mode_a, self.state.compare = mode, "single"

    def _capture_after(self) -> None:
        cap = self.capture
        mode, index = cap.current()
        if index >= 0:
            # A timer query over 2^32 ns (4.3 s, on-sample neural on a CPU rasterizer) has no valid result.
            gpu = {f"{k}_ms": round(v, 4) if v < INVALID_QUERY_MS else None for k, v in self.timings.items()}
            cap.records.append({"mode": mode, "frame": index, **gpu, "wall_ms": round(self.frame_ms, 4)})
        cap.step += 1
        if cap.done:
            self.state = cap.saved
            self.capture = None
            try:
                self.last_capture = self._write_capture(cap)
                self.messages.append(f"capture {self.last_capture[0]}")
            except OSError as e:
                self.report_error(f"capture: {one_line(e)}")

    def _write_capture(self, cap: Capture) -> tuple[Path, Path]:
        cap.out_dir.mkdir(parents=True, exist_ok=True)
        stem = cap.out_dir / f"capture-{time.strftime('%Y%m%d-%H%M%S')}"
        modes = {}
        for mode in cap.modes:
            rows = [r for r in cap.records if r["mode"] == mode]
            gpu = [r["A_ms"] for r in rows if r.get("A_ms") is not None]
            wall = np.array([r["wall_ms"] for r in rows])
            tset = self.sets.get(mode)
            modes[mode] = {
                "label": tset.label if tset else mode_label(mode), "frames": len(rows),
                "gpu_ms_mean": float(np.mean(gpu)) if gpu else None,
                "gpu_ms_median": float(np.median(gpu)) if gpu else None,
                "gpu_ms_min": float(np.min(gpu)) if gpu else None,
                "fps_gpu": float(1e3 / np.mean(gpu)) if gpu and np.mean(gpu) > 0 else None,
                "wall_ms_mean": float(np.mean(wall)), "fps_wall": float(1e3 / np.mean(wall)),
                "bits_per_texel": tset.bits_per_texel if tset else None,
                "gpu_bytes": tset.gpu_bytes if tset else None,
            }
        doc = {"renderer": self.ctx.info.get("GL_RENDERER"), "size": list(self.size),
               "frames_per_mode": cap.frames, "warmup_frames": cap.warmup, "vsync": self.vsync,
               "view": cap.saved.view, "flat": cap.saved.flat,
               "material": str(self.material_path) if self.material_path else None,
               "ngtc": str(self.ngtc_path) if self.ngtc_path else None,
               "mesh": str(self.mesh_path) if self.mesh_path else None,
               "note": "gpu_ms: GL timer query around the scene pass (mode A); wall_ms: time between frames",
               "modes": modes, "records": cap.records}
        json_path, csv_path = stem.with_suffix(".json"), stem.with_suffix(".csv")
        write_atomic(json_path, (json.dumps(doc, indent=1) + "\n").encode())
        fields = ["mode", "frame", *sorted({k for r in cap.records for k in r} - {"mode", "frame"})]
        table = io.StringIO(newline="")
        writer = csv.DictWriter(table, fieldnames=fields)
        writer.writeheader()
        writer.writerows(cap.records)
        write_atomic(csv_path, table.getvalue().encode())
        return json_path, csv_path

    # ------------------------------------------------------------------------------------- input

    def handle_input(self) -> None:
        io = imgui.get_io()
        if not io.want_capture_mouse:
            delta = io.mouse_delta
            if imgui.is_mouse_down(0) and (delta.x or delta.y):
                self.camera.orbit(delta.x, delta.y)
            if (imgui.is_mouse_down(1) or imgui.is_mouse_down(2)) and (delta.x or delta.y):
                self.camera.pan(delta.x, delta.y, int(io.display_size.y))
            if io.mouse_wheel:
                self.camera.zoom(io.mouse_wheel)
        if io.want_capture_keyboard:
            return
        shift = io.key_shift
        key = imgui.Key
        pressed = imgui.is_key_pressed
        if pressed(key.f1, False):
            self.show_help = not self.show_help
        if pressed(key.tab, False):
            self.show_panel = not self.show_panel
        if pressed(key.m, False):
            self.state.mode_a = self._cycle(self.state.mode_a, -1 if shift else 1)
        if pressed(key.n, False):
            self.state.mode_b = self._cycle(self.state.mode_b, -1 if shift else 1)
        if pressed(key.s, False):
            self.state.compare = "single" if self.state.compare == "split" else "split"
        if pressed(key.d, False):
            self.state.compare = "single" if self.state.compare == "difference" else "difference"
        if pressed(key.left_arrow):
            self.state.split = max(0.0, self.state.split - 0.02)
        if pressed(key.right_arrow):
            self.state.split = min(1.0, self.state.split + 0.02)
        if pressed(key.c, False):
            self.state.view = VIEWS[(VIEWS.index(self.state.view) + (-1 if shift else 1)) % len(VIEWS)]
        if pressed(key.right_bracket):
            self.state.force_mip = min(self.state.force_mip + 1, self._mips() - 1)
        if pressed(key.left_bracket):
            self.state.force_mip = max(self.state.force_mip - 1, -1)
        if pressed(key.equal):
            self.state.lod_bias = min(self.state.lod_bias + 0.25, 8.0)
        if pressed(key.minus):
            self.state.lod_bias = max(self.state.lod_bias - 0.25, -8.0)
        if pressed(key._0, False):
            self.state.force_mip, self.state.lod_bias = -1, 0.0
        if pressed(key.f, False):
            self.state.flat = not self.state.flat
        if pressed(key.r, False):
            self.reframe()
        if pressed(key.v, False):
            self.set_vsync(not self.vsync)
        if pressed(key.p, False) or pressed(key.f12, False):
            self.request_screenshot()
        if pressed(key.k, False) and self.capture is None:
            self.start_capture()
        if pressed(key.escape, False):
            self.quit = True

    def _cycle(self, mode: str, step: int) -> str:
        choices = [m for m in self.modes() if m in self.sets or m.startswith("astc-") or PRESET_SEP in m]
        i = choices.index(mode) if mode in choices else 0
        return choices[(i + step) % len(choices)]

    def _mips(self) -> int:
        return max((s.mips for s in self.sets.values()), default=1)

    def reframe(self) -> None:
        if self.state.flat:
            self.flat_camera.frame(np.zeros(3), 1.0)
        elif self.mesh is not None:
            self.orbit.frame(self.mesh.center, self.mesh.radius, self.size[0] / max(self.size[1], 1))

    def set_vsync(self, on: bool) -> None:
        self.vsync = on
        if self.window is not None:
            import glfw

            glfw.swap_interval(1 if on else 0)

    # ------------------------------------------------------------------------------------- panel

    def draw_panel(self) -> None:
        w, h = imgui.get_io().display_size
        imgui.set_next_window_pos(imgui.ImVec2(0, 0), imgui.Cond_.first_use_ever)
        width = min(PANEL_WIDTH, max(220.0, w * 0.4))
        imgui.set_next_window_size(imgui.ImVec2(width, h), imgui.Cond_.first_use_ever)
        # A side panel: as tall as the window whenever it is resized; its width stays the user's.
        imgui.set_next_window_size_constraints(imgui.ImVec2(min(200.0, w), h), imgui.ImVec2(max(200.0, w * 0.8), h))
        imgui.set_next_window_bg_alpha(0.92)
        visible, _ = imgui.begin("NGTC viewer  (F1: help)")
        self.panel_width = imgui.get_window_width() if not imgui.is_window_collapsed() else 0.0
        if visible:
            self._panel_status()
            if imgui.collapsing_header("Scene", imgui.TreeNodeFlags_.default_open):
                self._panel_scene()
            if imgui.collapsing_header("Compare", imgui.TreeNodeFlags_.default_open):
                self._panel_compare()
            if imgui.collapsing_header("Facts", imgui.TreeNodeFlags_.default_open):
                self._panel_facts()
            if imgui.collapsing_header("GPU timings", imgui.TreeNodeFlags_.default_open):
                self._panel_timings()
            if imgui.collapsing_header("Lighting"):
                self._panel_lighting()
            if self.messages and imgui.collapsing_header("Log"):
                for message in self.messages:
                    imgui.text_disabled(message)
        imgui.end()

    def _panel_status(self) -> None:
        for job in self.jobs:
            fraction = job.fraction()
            imgui.text(f"{job.label}..." if fraction is None else f"{job.label}: encoding")
            overlay = f"{job.elapsed:.1f} s" if fraction is None else f"{fraction:.0%}, {job.elapsed:.1f} s"
            imgui.progress_bar(-1.0 * imgui.get_time() if fraction is None else fraction, imgui.ImVec2(-1, 0),
                               overlay)
        if self.capture is not None:
            cap = self.capture
            imgui.text(f"capturing {cap.current()[0]}")
            imgui.progress_bar(cap.step / (len(cap.modes) * cap.per_mode), imgui.ImVec2(-1, 0))
        if self.errors:
            imgui.push_text_wrap_pos(0.0)
            for message in self.errors:
                imgui.text_colored(imgui.ImVec4(1.0, 0.35, 0.3, 1.0), f"error: {message}")
            imgui.pop_text_wrap_pos()
            if imgui.small_button("dismiss errors (and retry failed modes)"):
                self.errors.clear()
                self.failed.clear()

    def _panel_scene(self) -> None:
        m = self.material
        imgui.text(f"material: {m.name} {m.width}x{m.height}" if m else "material: none")
        imgui.text(f".ngtc: {self.ngtc_path.name}" if self.ngtc_path else ".ngtc: none")
        imgui.text(f"mesh: {self.mesh.name}" if self.mesh else "mesh: none")
        imgui.set_next_item_width(-1)
        _, self.path_input = imgui.input_text_with_hint("##path", "path to a material, .ngtc or mesh",
                                                       self.path_input)
        path = Path(self.path_input.strip()) if self.path_input.strip() else None
        actions = (("load material", self.load_material), ("load .ngtc", self.load_ngtc),
                   ("add .ngtc", self.add_ngtc), ("load mesh", self.load_mesh))
        for i, (label, action) in enumerate(actions):
            if i:
                imgui.same_line()
            if imgui.button(label) and path is not None:
                action(path)
            if i == 2 and imgui.is_item_hovered():
                imgui.set_tooltip("another .ngtc of this material (e.g. another preset) as extra neural modes")
        keys = self.preset_keys()
        if keys:
            imgui.push_text_wrap_pos(0.0)
            imgui.text_disabled(f"more presets (modes neural{PRESET_SEP}...): {', '.join(keys)}")
            imgui.pop_text_wrap_pos()
        _, self.state.flat = imgui.checkbox("flat view, 1:1 texels (F)", self.state.flat)
        imgui.same_line()
        if imgui.button("reframe"):
            self.reframe()
        if self.state.flat:
            imgui.text_disabled(f"zoom {self.flat_camera.scale:.3g} pixels per texel (wheel; reframe: 1:1)")

    def _mode_combo(self, label: str, current: str) -> str:
        modes = self.modes()
        items = [self.sets[m].label if m in self.sets else f"{mode_label(m)}  (not loaded)" for m in modes]
        _, i = imgui.combo(label, modes.index(current) if current in modes else 0, items)
        return modes[i]

    def _panel_compare(self) -> None:
        s = self.state
        s.mode_a = self._mode_combo("mode A", s.mode_a)
        for i, name in enumerate(COMPARES):
            if i:
                imgui.same_line()
            if imgui.radio_button(name, s.compare == name):
                s.compare = name
        if s.compare != "single":
            s.mode_b = self._mode_combo("mode B", s.mode_b)
        if s.compare == "split":
            _, s.split = imgui.slider_float("split", s.split, 0.0, 1.0, "%.2f")
        if s.compare == "difference":
            _, s.gain = imgui.slider_float("gain", s.gain, 1.0, 64.0, "%.1f", imgui.SliderFlags_.logarithmic)
            _, c = imgui.combo("color map", COLORMAPS.index(s.colormap), list(COLORMAPS))
            s.colormap = COLORMAPS[c]
        _, v = imgui.combo("channel", VIEWS.index(s.view), list(VIEWS))
        s.view = VIEWS[v]
        forced = s.force_mip >= 0
        changed, forced = imgui.checkbox("force mip", forced)
        if changed:
            s.force_mip = 0 if forced else -1
        if forced:
            imgui.same_line()
            imgui.set_next_item_width(-1)
            _, s.force_mip = imgui.slider_int("##mip", s.force_mip, 0, self._mips() - 1)
        _, s.lod_bias = imgui.slider_float("LOD bias", s.lod_bias, -4.0, 8.0, "%.2f")

    def _panel_facts(self) -> None:
        flags = (imgui.TableFlags_.borders_inner_h | imgui.TableFlags_.row_bg | imgui.TableFlags_.sizing_fixed_fit
                 | imgui.TableFlags_.scroll_x)  # long mode names: scroll sideways, not cut off
        loaded = [m for m in self.modes() if m in self.sets]
        style = imgui.get_style()
        row = imgui.get_text_line_height() + 2 * style.cell_padding.y
        height = (len(loaded) + 1) * row + style.scrollbar_size + 2 * style.cell_padding.y
        if imgui.begin_table("facts", 4, flags, imgui.ImVec2(0, height)):
            imgui.table_setup_scroll_freeze(1, 1)
            for title in ("mode", "bpp", "on GPU", "PSNR mip 0 1"):
                imgui.table_setup_column(title)
            imgui.table_headers_row()
            for mode in loaded:
                tset = self.sets[mode]
                psnr = self.report.get(mode) or tset.psnr
                imgui.table_next_row()
                imgui.table_next_column()
                imgui.text(mode)
                imgui.table_next_column()
                imgui.text(f"{tset.bits_per_texel:.2f}" if tset.bits_per_texel else "-")
                imgui.table_next_column()
                imgui.text(human_bytes(tset.gpu_bytes))
                imgui.table_next_column()
                imgui.text(" ".join(f"{p:.1f}" for p in psnr[:2]) if psnr else "ref" if mode == "reference" else "-")
                if imgui.is_item_hovered():
                    where = "report.json" if mode in self.report else "the stored file / computed on load"
                    per_mip = "  ".join(f"{k}: {p:.2f}" for k, p in enumerate(psnr or []))
                    imgui.set_tooltip("\n".join([tset.label, *tset.notes, f"PSNR (dB) per mip, from {where}:",
                                                  per_mip or "-"]))
            imgui.end_table()

    def _panel_timings(self) -> None:
        t = self.timings
        fps = 1e3 / np.mean(self.history["frame"]) if self.history["frame"] else 0.0
        imgui.text(" ".join(f"{k} {t[k]:.2f}" if t[k] < INVALID_QUERY_MS else f"{k} >4295"  # 32-bit ns overflow
                            for k in (*PASSES, "panel") if k in t) + " ms")
        imgui.text(f"frame {np.mean(self.history['frame'] or [0]):.1f} ms ({fps:.1f} FPS), "
                   f"{self.size[0]}x{self.size[1]}")
        if implot.begin_plot("##timings", imgui.ImVec2(-1, 130), implot.Flags_.no_title):
            implot.setup_axes("frame", "ms", implot.AxisFlags_.auto_fit, implot.AxisFlags_.auto_fit)
            implot.setup_legend(implot.Location_.north, implot.LegendFlags_.horizontal)
            for name in (*PASSES, "panel"):
                if self.history[name]:
                    implot.plot_line(name, np.asarray(self.history[name], np.float32))
            implot.end_plot()
        changed, vsync = imgui.checkbox("vsync (V)", self.vsync)
        if changed:
            self.set_vsync(vsync)
        imgui.same_line()
        if imgui.button("screenshot (P)"):
            self.request_screenshot()
        imgui.set_next_item_width(90)
        _, self.capture_frames = imgui.input_int("frames", self.capture_frames, 10)
        self.capture_frames = max(1, min(self.capture_frames, 10000))
        imgui.same_line()
        if imgui.button("capture (K)") and self.capture is None:
            self.start_capture()
        if self.last_capture:
            imgui.text_disabled(f"{self.last_capture[0].name} (+ .csv)")

    def _panel_lighting(self) -> None:
        s = self.state
        _, t = imgui.combo("tone map", TONEMAPS.index(s.tonemap), list(TONEMAPS))
        s.tonemap = TONEMAPS[t]
        _, s.exposure = imgui.slider_float("exposure", s.exposure, 0.05, 8.0, "%.2f", imgui.SliderFlags_.logarithmic)
        _, s.light_yaw = imgui.slider_float("light yaw", s.light_yaw, -180.0, 180.0, "%.0f")
        _, s.light_pitch = imgui.slider_float("light pitch", s.light_pitch, -10.0, 90.0, "%.0f")
        _, s.light_intensity = imgui.slider_float("light", s.light_intensity, 0.0, 10.0, "%.2f")
        _, s.normal_strength = imgui.slider_float("normal strength", s.normal_strength, 0.0, 2.0, "%.2f")
        _, s.uv_scale = imgui.slider_float("UV tiling", s.uv_scale, 0.25, 8.0, "%.2f")

    def draw_help(self) -> None:
        io = imgui.get_io()
        imgui.set_next_window_pos(imgui.ImVec2(io.display_size.x / 2, io.display_size.y / 2), imgui.Cond_.always,
                                  imgui.ImVec2(0.5, 0.5))
        flags = imgui.WindowFlags_.always_auto_resize | imgui.WindowFlags_.no_collapse
        visible, opened = imgui.begin("Keyboard shortcuts", True, flags)
        if visible and imgui.begin_table("keys", 2, imgui.TableFlags_.row_bg):
            for keys, what in SHORTCUTS:
                imgui.table_next_row()
                imgui.table_next_column()
                imgui.text(keys)
                imgui.table_next_column()
                imgui.text(what)
            imgui.end_table()
        imgui.end()
        if opened is False:
            self.show_help = False


# ----------------------------------------------------------------------------------------------- hosts


def _window_hints(glfw, visible: bool = True) -> None:
    glfw.window_hint(glfw.CONTEXT_VERSION_MAJOR, 4)
    glfw.window_hint(glfw.CONTEXT_VERSION_MINOR, 3)
    glfw.window_hint(glfw.OPENGL_PROFILE, glfw.OPENGL_CORE_PROFILE)
    glfw.window_hint(glfw.OPENGL_FORWARD_COMPAT, True)
    glfw.window_hint(glfw.VISIBLE, visible)


def _release_current_egl() -> None:
    """Unbind a current EGL context (a headless one made earlier in this process): GLVND refuses to make a
    GLX context current on a thread that still has an EGL one (X error BadAccess in glXMakeCurrent)."""
    try:
        egl = ctypes.CDLL("libEGL.so.1")
    except OSError:
        return
    egl.eglGetCurrentDisplay.restype = ctypes.c_void_p
    egl.eglMakeCurrent.argtypes = [ctypes.c_void_p] * 4
    display = egl.eglGetCurrentDisplay()
    if display:
        egl.eglMakeCurrent(display, None, None, None)


def open_window(size: tuple[int, int], title: str = "NGTC viewer"):
    """(glfw window, moderngl context), or None when no display can be opened."""
    import glfw

    glfw.ERROR_REPORTING = "ignore"
    if not glfw.init():
        return None
    _release_current_egl()
    _window_hints(glfw)
    window = glfw.create_window(size[0], size[1], title, None, None)
    if not window:
        glfw.terminate()
        return None
    glfw.make_context_current(window)
    return window, moderngl.create_context(require=430)


def run_window(material: Path | None, ngtc: Path | None, mesh: Path | None, size: tuple[int, int] = (1280, 720),
               max_frames: int | None = None, on_frame: Callable[..., None] | None = None) -> Viewer | None:
    """The interactive viewer; returns None when there is no display (nothing opened).

    `on_frame(viewer, framebuffer, size, index)` runs after each frame is drawn, before the swap (tests)."""
    import glfw

    opened = open_window(size)
    if opened is None:
        return None
    window, ctx = opened
    viewer = Viewer(ctx, window)
    try:
        viewer.set_vsync(True)
        viewer.open(material, ngtc, mesh)
        frames = 0
        while not glfw.window_should_close(window) and not viewer.quit:
            glfw.poll_events()
            fb = glfw.get_framebuffer_size(window)
            if fb[0] > 0 and fb[1] > 0:
                viewer.frame(ctx.screen, fb)
                if on_frame is not None:
                    on_frame(viewer, ctx.screen, fb, frames)
                glfw.swap_buffers(window)
            else:
                glfw.wait_events_timeout(0.1)  # minimized: nothing to draw
            frames += 1
            if max_frames is not None and frames >= max_frames:
                break
    finally:
        viewer.release()
        glfw.destroy_window(window)
        glfw.terminate()
    return viewer


def headless_context() -> moderngl.Context:
    try:
        return moderngl.create_standalone_context(backend="egl", require=430)
    except Exception as e:  # noqa: BLE001 - any driver failure becomes one line
        raise ViewerError(f"cannot create a headless OpenGL 4.3 context (EGL): {one_line(e)}") from None


class Headless:
    """A viewer on an EGL context drawing into an offscreen framebuffer of `size`."""

    def __init__(self, size: tuple[int, int] = (1280, 720), output_dir: Path | str = ".", ctx=None):
        self.ctx = ctx or headless_context()
        self.size = size
        self.color = self.ctx.texture(size, 4)
        self.fbo = self.ctx.framebuffer([self.color])
        self.viewer = Viewer(self.ctx, output_dir=output_dir)
        self.viewer.size = size

    def activate(self) -> None:
        """Make the EGL context current again (a window opened meanwhile in this process unbinds it)."""
        self.ctx.__enter__()

    def wait(self) -> None:
        """Finish the viewer's background jobs (their GPU uploads need the context current)."""
        self.activate()
        self.viewer.wait()

    def frame(self, panel: bool | None = None) -> np.ndarray:
        self.activate()
        self.viewer.frame(self.fbo, self.size, panel)
        return self.viewer.read_pixels(self.fbo, self.size)

    def release(self) -> None:
        self.activate()
        self.viewer.release()
        self.fbo.release()
        self.color.release()


def render_headless(material: Path | None, ngtc: Path | None, output: Path, *, mesh: Path | None = None,
                    size: tuple[int, int] = (1280, 720), state: dict | None = None, panel: bool = True,
                    frames: int = 2) -> Path:
    """Render one picture offscreen and save it; errors (loading included) raise ViewerError."""
    host = Headless(size)
    try:
        viewer = host.viewer
        viewer.open(material, ngtc, mesh)
        for k, v in (state or {}).items():
            setattr(viewer.state, k, v)
        host.wait()
        if viewer.errors:
            raise ViewerError(viewer.errors[0])
        for mode in {viewer.state.mode_a, viewer.state.mode_b if viewer.state.compare != "single" else None}:
            if mode and mode not in viewer.sets:
                raise ViewerError(f"mode {mode} is not available (load a material for reference/ASTC, "
                                  f"an .ngtc for neural modes)")
        image = None
        for _ in range(max(1, frames)):
            image = host.frame(panel)
        return write_image(output, image)
    finally:
        host.release()


# ----------------------------------------------------------------------------------------------- commands


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ViewerError(f"size {text!r}: expected WxH, e.g. 1280x720") from None
    if not (16 <= w <= 8192 and 16 <= h <= 8192):
        raise ViewerError(f"size {text!r}: width and height must be 16 .. 8192")
    return w, h


def view_command(target: Path | None, mesh: Path | None, ngtc: Path | None, size: str = "1280x720",
                 fallback_dir: Path = Path("ngtc-view")) -> None:
    """`ngtc view`: the window; without a display, headless renders and a capture in `fallback_dir`."""
    import os
    import sys

    material, ngtc = resolve_inputs(target, ngtc)
    dims = parse_size(size)
    if mesh is not None and not Path(mesh).is_file():
        raise ViewerError(f"{mesh}: no such mesh file")
    if run_window(material, ngtc, mesh, dims) is not None:
        return
    print(f"ngtc view: no display to open a window on (DISPLAY={os.environ.get('DISPLAY') or 'unset'}); "
          f"writing headless renders and a timing capture to {fallback_dir}/ instead", file=sys.stderr)
    for path in headless_captures(material, ngtc, mesh, fallback_dir, dims):
        print(f"wrote {path}", file=sys.stderr)


def headless_captures(material: Path | None, ngtc: Path | None, mesh: Path | None, out_dir: Path,
                      size: tuple[int, int], frames: int = 3) -> list[Path]:
    """What `ngtc view` writes without a display: each loaded mode (with the panel), A | B split, a capture."""
    host = Headless(size, output_dir=out_dir)
    written = []
    try:
        viewer = host.viewer
        viewer.open(material, ngtc, mesh)
        host.wait()
        if viewer.errors:
            raise ViewerError(viewer.errors[0])
        modes = [m for m in ("reference", "neural") if m in viewer.sets]
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ViewerError(f"{out_dir}: cannot create the folder ({e.strerror or one_line(e)})") from None
        for mode in modes:
            viewer.state.mode_a, viewer.state.compare = mode, "single"
            host.frame()
            written.append(viewer.save_screenshot(host.fbo, size, out_dir / f"{mode}.png"))
        if len(modes) == 2:
            viewer.state.mode_a, viewer.state.mode_b, viewer.state.compare = "reference", "neural", "split"
            host.frame()
            written.append(viewer.save_screenshot(host.fbo, size, out_dir / "split.png"))
        viewer.start_capture(frames, modes)
        while viewer.capture is not None:
            host.frame(panel=False)
        if viewer.last_capture:
            written += list(viewer.last_capture)
    finally:
        host.release()
    return written


def render_command(target: Path, output: Path, *, mode: str = "reference", mip: int = -1, view: str = "shaded",
                   mesh: Path | None = None, ngtc: Path | None = None, panel: bool = False, size: str = "1280x720",
                   split: str | None = None, diff: str | None = None, flat: bool = False,
                   lod_bias: float = 0.0) -> Path:
    """`ngtc render`: one picture, headless (EGL)."""
    material, ngtc = resolve_inputs(target, ngtc)
    dims = parse_size(size)
    if view not in VIEWS:
        raise ViewerError(f"unknown view {view!r}; choose one of {', '.join(VIEWS)}")
    if split and diff:
        raise ViewerError("--split and --diff exclude each other")
    if output.suffix.lower() not in (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"):
        raise ViewerError(f"{output}: expected an image file name (.png)")
    if mesh is not None and not Path(mesh).is_file():
        raise ViewerError(f"{mesh}: no such mesh file")
    try:  # fail before rendering, not after
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ViewerError(f"{output}: cannot write the image ({e.strerror or one_line(e)})") from None
    state = {"mode_a": check_mode(mode), "view": view, "force_mip": mip, "lod_bias": lod_bias, "flat": flat}
    if split or diff:
        state.update(mode_b=check_mode(split or diff), compare="split" if split else "difference")
    return render_headless(material, ngtc, output, mesh=mesh, size=dims, state=state, panel=panel)
