"""`ngtc bench`: GPU frame times of every way the viewer can hold a material, on the material-preview sphere.

Each mode draws the sphere filling a 1920x1080 frame (3840x2160 with --4k) for N frames with the viewer's
own PBR pass (`Renderer.scene_pass`). Two clocks per frame: a GL_TIME_ELAPSED query around the pass (read
as 64 bits) and the wall clock between two glFinish calls. The frame time reported is the timer query on a
hardware GPU and the wall clock on a software rasterizer (llvmpipe), whose timer queries end before its
threads have rasterized anything (measured: 9 ms by query, 380 ms by glFinish for the same draw). Modes:
- reference: RGBA8 mip chains of the material;
- astc-<block>: the real ASTC textures (native compressed upload when GL_KHR_texture_compression_astc_ldr
  is there; otherwise decoded to RGBA8 on the CPU, which the report says);
- neural-trilinear / neural-stochastic: the GLSL decoder run per pixel (8 or 1 texel decodes per pixel);
- neural: the same decoder run once at load into RGBA8 mip chains (its decode time is reported separately,
  measured by the wall clock around the compute dispatches and a glFinish: timer queries do not time compute
  dispatches on every driver);
- neural-astc-<block>: those chains transcoded to ASTC (`viewer.transcode`) at each ASTC block size timed;
  `transcoded` compares each with the ASTC mode of its block size in the same run (frame time, GPU bytes) and
  gives the PSNR of the plain decode and of the transcoding against the reference.
A GL_SAMPLES_PASSED query counts the shaded fragments, which turns on-sample times into texel decodes per
second. Results: a table on stdout and a JSON file.
"""

from __future__ import annotations

import contextlib
import ctypes
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import moderngl
import numpy as np

from .bench_common import load_scene, write_json
from .bench_feedback import FEEDBACK_MODE, cold_and_orbit, feedback_summary, pipelined, steady_image
from .errors import ViewerError
from .feedback import check_cache_mib
from .gl_upload import RawGL, chain_bytes
from .headless import Headless
from .materials_gl import ASTC_EXTENSION, TextureSet
from .modes import ASTC_PREFIX, REGISTRY, TRANSCODE_PREFIX, astc_block, mode_label, transcode_block
from .neural_gl import decode_flops, is_software_renderer
from .renderer import ViewState
from .scene import DEFAULT_MESH, resolve_inputs
from .transcode import check_block

GL_TIME_ELAPSED = 0x88BF
GL_SAMPLES_PASSED = 0x8914
GL_QUERY_RESULT = 0x8866
NEURAL_MODES = ("neural-trilinear", "neural-stochastic", "neural", FEEDBACK_MODE)  # on sample first
TRANSCODE_TARGET = 1.1  # issue 11: the transcoded frame within 1.1x the ASTC frame of its block size (printed)


class GLQuery:
    """One GL query object read back as 64 bits (moderngl's Query reads 32)."""

    def __init__(self, target: int):
        gl = RawGL.lib()
        for name, args in (("glGenQueries", [ctypes.c_int, ctypes.c_void_p]), ("glBeginQuery", [ctypes.c_uint] * 2),
                           ("glEndQuery", [ctypes.c_uint]), ("glDeleteQueries", [ctypes.c_int, ctypes.c_void_p]),
                           ("glGetQueryObjectui64v", [ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p])):
            getattr(gl, name).argtypes = args
        self.gl, self.target = gl, target
        self.name = ctypes.c_uint(0)
        gl.glGenQueries(1, ctypes.byref(self.name))

    def __enter__(self) -> GLQuery:
        self.gl.glBeginQuery(self.target, self.name.value)
        return self

    def __exit__(self, *exc) -> None:
        self.gl.glEndQuery(self.target)

    @property
    def result(self) -> int:
        """Nanoseconds (GL_TIME_ELAPSED) or samples (GL_SAMPLES_PASSED); waits for the GPU."""
        value = ctypes.c_uint64(0)
        self.gl.glGetQueryObjectui64v(self.name.value, GL_QUERY_RESULT, ctypes.byref(value))
        return int(value.value)

    def release(self) -> None:
        self.gl.glDeleteQueries(1, ctypes.byref(self.name))


@dataclass
class ModeResult:
    mode: str
    label: str
    gpu_ms: list[float] = field(default_factory=list)  # timer query
    wall_ms: list[float] = field(default_factory=list)  # glFinish to glFinish
    fragments: int = 0
    gpu_bytes: int = 0
    bits_per_texel: float | None = None
    notes: list[str] = field(default_factory=list)

    def frame_ms(self, clock: str) -> np.ndarray:
        return np.asarray(self.gpu_ms if clock == "query" else self.wall_ms, np.float64)

    def viewer_summary(self) -> dict:
        """For `--viewer`: the whole frame by the wall clock (what limits the frame rate), GPU time beside."""
        wall, gpu = np.asarray(self.wall_ms), np.asarray(self.gpu_ms)
        median = float(np.median(wall))
        return {"label": self.label, "frames": len(wall), "ms_median": round(median, 4),
                "ms_p95": round(float(np.percentile(wall, 95)), 4), "fps": round(1e3 / median, 2),
                "gpu_ms_median": round(float(np.median(gpu)), 4), "wall_ms": [round(v, 4) for v in wall],
                "query_ms": [round(v, 4) for v in gpu], "notes": self.notes}

    def summary(self, clock: str, astc_median: float | None, flops_per_decode: int = 0) -> dict:
        ms = self.frame_ms(clock)
        median = float(np.median(ms))
        decodes = REGISTRY[self.mode].decodes_per_pixel
        rate = self.fragments * decodes / (median / 1e3) if decodes and median > 0 else None  # texel decodes/s
        return {
            "label": self.label, "frames": len(ms), "clock": clock, "ms_median": round(median, 4),
            "ms_p95": round(float(np.percentile(ms, 95)), 4), "ms_mean": round(float(ms.mean()), 4),
            "ms_min": round(float(ms.min()), 4), "fps": round(1e3 / median, 2) if median > 0 else None,
            "query_ms": [round(v, 4) for v in self.gpu_ms], "wall_ms": [round(v, 4) for v in self.wall_ms],
            "fragments": self.fragments, "gpu_bytes": self.gpu_bytes, "bits_per_texel": self.bits_per_texel,
            "decodes_per_fragment": decodes,
            "texel_decodes_per_s": rate,
            "decoder_gflops": round(rate * flops_per_decode / 1e9, 2) if rate else None,
            "x_astc": round(median / astc_median, 3) if astc_median else None,
            "notes": self.notes,
        }


def bench_modes(astc_blocks: list[str], only: list[str] | None = None) -> list[str]:
    """The modes timed, in order: all of them, or those in `only` (and the ASTC mode of each transcoded one, its
    yardstick); an unknown name is a one-line ViewerError."""
    every = ["reference", *(f"{ASTC_PREFIX}{b}" for b in astc_blocks), *NEURAL_MODES,
             *(f"{TRANSCODE_PREFIX}{b}" for b in astc_blocks)]
    if only is None:
        return every
    unknown = [m for m in only if m not in every]
    if unknown or not only:
        raise ViewerError(f"--modes {','.join(only)}: choose from {', '.join(every)} (ASTC and transcoded modes at "
                          f"the --astc block sizes)")
    wanted = {*only, *(f"{ASTC_PREFIX}{transcode_block(m)}" for m in only if transcode_block(m))}
    return [m for m in every if m in wanted]


def time_frames(host: Headless, draw: Callable[[GLQuery | None], None], result: ModeResult, frames: int,
                warmup: int, max_seconds: float, progress=None) -> ModeResult:
    """Call `draw` `warmup + frames` times (fewer when `max_seconds` runs out), timing each into `result`. The
    first timed frame also counts the fragments shaded: `draw` gets a samples query to wrap around its shading
    draw then (None otherwise)."""
    timer, samples = GLQuery(GL_TIME_ELAPSED), GLQuery(GL_SAMPLES_PASSED)
    try:
        start = time.perf_counter()
        for i in range(warmup + frames):
            if i == warmup:
                start = time.perf_counter()
            counting = i == warmup  # one measured frame also counts fragments (a second query target)
            host.ctx.finish()
            t0 = time.perf_counter()
            with timer:
                draw(samples if counting else None)
            host.ctx.finish()
            wall = (time.perf_counter() - t0) * 1e3
            if counting:
                result.fragments = samples.result
            if i >= warmup:
                result.gpu_ms.append(timer.result / 1e6)
                result.wall_ms.append(wall)
                if progress:
                    progress()
                if time.perf_counter() - start > max_seconds and i + 1 < warmup + frames:
                    result.notes.append(f"stopped after {len(result.gpu_ms)} frames (--max-seconds {max_seconds:g})")
                    break
    finally:
        timer.release()
        samples.release()
    return result


def time_mode(host: Headless, tset: TextureSet, fbo: moderngl.Framebuffer, size: tuple[int, int], frames: int,
              warmup: int, max_seconds: float, progress=None) -> ModeResult:
    """The PBR scene pass alone in `tset`'s mode, into `fbo`."""
    viewer = host.viewer
    state = ViewState(mode_a=tset.mode, compare="single")
    result = ModeResult(tset.mode, mode_label(tset.mode), gpu_bytes=tset.gpu_bytes,
                        bits_per_texel=tset.bits_per_texel, notes=list(tset.notes))

    def draw(shaded: GLQuery | None) -> None:
        viewer.renderer.scene_pass(fbo, size, None, state, tset, viewer.orbit, shaded)
        viewer.renderer.frame_index += 1  # stochastic filtering draws a new pattern each frame
        if tset.feedback is not None:
            tset.feedback.update()  # as the viewer does after a pass (nothing to decode once warm)

    return time_frames(host, draw, result, frames, warmup, max_seconds, progress)


def time_viewer_mode(host: Headless, mode: str, frames: int, warmup: int, max_seconds: float,
                     progress=None) -> ModeResult:
    """The viewer's whole frame in `mode` (scene pass, composite, the panel, its Python included), as the
    window draws it with vsync off; the wall clock is what an interactive user gets."""
    viewer = host.viewer
    viewer.state.mode_a, viewer.state.compare = mode, "single"
    result = ModeResult(mode, mode_label(mode), gpu_bytes=viewer.scene.sets[mode].gpu_bytes)

    def draw(shaded: GLQuery | None) -> None:
        with shaded or contextlib.nullcontext():  # fragments of the whole frame: not reported
            viewer.frame(host.fbo, host.size, panel=True)

    return time_frames(host, draw, result, frames, warmup, max_seconds, progress)


def bake_seconds(host: Headless, ngtc_set: TextureSet, repeats: int = 3) -> float:
    """Wall time of decoding the whole mip chain on load (median of `repeats`), through glFinish."""
    from .neural_gl import decode_to_textures

    times = []
    for _ in range(repeats):
        host.ctx.finish()
        t0 = time.perf_counter()
        textures = decode_to_textures(host.ctx, ngtc_set.neural)
        host.ctx.finish()
        times.append(time.perf_counter() - t0)
        for tex in textures:
            tex.release()
    return float(np.median(times))


def run_bench(material: Path | None, ngtc: Path | None, mesh: Path | None, size: tuple[int, int],
              astc_blocks: list[str], frames: int, warmup: int, max_seconds: float, progress=None,
              viewer_frames: bool = False, cache_mib: float | None = None, only: list[str] | None = None) -> dict:
    """Every mode's scene pass timed (or those of `only`; with `viewer_frames`, the viewer's whole frame too); the
    JSON document."""
    modes = bench_modes(astc_blocks, only)
    host = Headless(size)
    fbo = color = depth = None
    try:
        load_scene(host, material, ngtc, mesh, [*modes, "neural"], cache_mib)  # neural: bytes, decode on load
        viewer, scene = host.viewer, host.viewer.scene
        viewer.renderer.set_mesh(scene.mesh)
        color, depth = host.ctx.texture(size, 4), host.ctx.depth_renderbuffer(size)
        fbo = host.ctx.framebuffer([color], depth)
        clock = "wall" if is_software_renderer(host.ctx) else "query"
        results, feedback = {}, {}
        for m in modes:
            if m == FEEDBACK_MODE:  # cold cache and orbit first; timed below once warm
                feedback = cold_and_orbit(host, scene.sets[m], fbo, size, clock)
                feedback["steady_image"] = steady_image(host, scene.sets[m], scene.sets["neural"], fbo, size)
                astc_sets = [scene.sets[a] for a in modes if astc_block(a)]
                feedback["pipelined"] = pipelined(host, scene.sets[m], astc_sets[-1] if astc_sets else None, fbo,
                                                  size)
            results[m] = time_mode(host, scene.sets[m], fbo, size, frames, warmup, max_seconds,
                                   progress and (lambda m=m: progress(m)))
        whole = {m: time_viewer_mode(host, m, frames, warmup, max_seconds, progress and (lambda m=m: progress(m)))
                 for m in modes} if viewer_frames else {}
        astc = [results[m] for m in modes if astc_block(m)]
        astc_median = float(np.median(astc[-1].frame_ms(clock))) if astc else None
        neural = scene.sets["neural"]
        flops = decode_flops(neural.neural.compressed)
        bake = bake_seconds(host, neural)
        chain_texels = chain_bytes(neural.width, neural.height, neural.mips, 1)
        info = host.ctx.info
        summaries = {m: r.summary(clock, astc_median, flops) for m, r in results.items()}
        return {
            "renderer": info.get("GL_RENDERER"), "vendor": info.get("GL_VENDOR"), "gl": info.get("GL_VERSION"),
            "astc_native": ASTC_EXTENSION in host.ctx.extensions, "size": list(size),
            "frames": frames, "warmup": warmup, "material": str(scene.material_path),
            "ngtc": str(scene.ngtc_path), "mesh": str(scene.mesh_path or DEFAULT_MESH),
            "host": f"{platform.machine()}, {platform.system()}",
            "astc_reference_mode": astc[-1].mode if astc else None,
            "clock": clock, "flops_per_decode": flops,
            "modes": summaries,
            "feedback": feedback and feedback_summary(feedback, summaries[FEEDBACK_MODE],
                                                      summaries[astc[-1].mode] if astc else None,
                                                      neural.gpu_bytes, scene.sets[FEEDBACK_MODE]),
            "transcoded": {m: transcoded_summary(m, results, scene.sets, clock) for m in modes if transcode_block(m)},
            "viewer": {m: r.viewer_summary() for m, r in whole.items()},
            "decode_on_load": {"seconds": round(bake, 4), "texels": chain_texels,
                               "texel_decodes_per_s": chain_texels / bake if bake > 0 else None},
            "note": "ms_*: frame time of the PBR scene pass by `clock` (query: GL_TIME_ELAPSED; wall: glFinish "
                    "to glFinish, for software rasterizers); fragments: GL_SAMPLES_PASSED of one frame; x_astc: "
                    "median frame time over the ASTC mode's; flops_per_decode: 2 x the synthesizer's multiply-adds "
                    "per texel; decoder_gflops: what on-sample decoding sustained; viewer (--viewer): the viewer's "
                    "whole frame with its panel, wall clock through glFinish (ms_*, fps) and timer query "
                    "(gpu_ms_median); decode_on_load: wall clock of the compute pass that fills the RGBA8 chains, "
                    "through glFinish; transcoded: each neural-astc mode against the ASTC mode of its block size "
                    "(x_astc_same_block: median over median; target_x_astc: the issue's bound), PSNR dB per mip over "
                    "all channels against the reference chain",
        }
    finally:
        for obj in (fbo, color, depth):
            if obj is not None:
                obj.release()
        host.release()


def transcoded_summary(mode: str, results: dict[str, ModeResult], sets: dict[str, TextureSet], clock: str) -> dict:
    """A transcoded mode against the ASTC mode of its block size in the same run; its loss against the reference."""
    astc_mode = f"{ASTC_PREFIX}{transcode_block(mode)}"
    ms, astc_ms = results[mode].frame_ms(clock), results[astc_mode].frame_ms(clock)
    ratio = float(np.median(ms) / np.median(astc_ms))
    return {"astc_mode": astc_mode, "ms_median": round(float(np.median(ms)), 4),
            "ms_p95": round(float(np.percentile(ms, 95)), 4), "astc_ms_median": round(float(np.median(astc_ms)), 4),
            "astc_ms_p95": round(float(np.percentile(astc_ms, 95)), 4), "x_astc_same_block": round(ratio, 3),
            "target_x_astc": TRANSCODE_TARGET, "meets_target": ratio <= TRANSCODE_TARGET,
            "gpu_bytes": sets[mode].gpu_bytes, "astc_gpu_bytes": sets[astc_mode].gpu_bytes,
            "gpu_bytes_equal": sets[mode].gpu_bytes == sets[astc_mode].gpu_bytes, **sets[mode].loss.to_json()}


def transcoded_lines(doc: dict) -> list[str]:
    """One line per transcoded mode: the frame against the target, the bytes, the extra loss at mip 0."""
    lines = []
    for mode, t in doc["transcoded"].items():
        plain, coded = t["psnr_plain_decode"], t["psnr_transcoded"]
        quality = (f"PSNR at mip 0 {coded[0]:.2f} dB, plain decode {plain[0]:.2f} dB ({coded[0] - plain[0]:+.2f} dB)"
                   if plain and coded and None not in (plain[0], coded[0]) else "no reference PSNR")
        lines.append(f"{mode}: {t['x_astc_same_block']:.3f}x {t['astc_mode']} (target <= {t['target_x_astc']}: "
                     f"{'met' if t['meets_target'] else 'NOT met'}), {t['gpu_bytes']:,} bytes on the GPU "
                     f"({'=' if t['gpu_bytes_equal'] else '!='} {t['astc_mode']}'s {t['astc_gpu_bytes']:,}); "
                     f"{quality}")
    return lines


def table_rows(doc: dict) -> list[list[str]]:
    rows = []
    for mode, r in doc["modes"].items():
        decodes = r["texel_decodes_per_s"]
        rows.append([mode, f"{r['ms_median']:.2f}", f"{r['ms_p95']:.2f}", f"{r['fps']:.2f}" if r["fps"] else "-",
                     f"{r['x_astc']:.2f}" if r["x_astc"] else "-",
                     si(decodes) if decodes else "-",
                     f"{r['decoder_gflops']:.1f}" if r["decoder_gflops"] else "-",
                     f"{r['gpu_bytes'] / 2**20:.2f} MiB",
                     f"{r['bits_per_texel']:.2f}" if r["bits_per_texel"] else "-"])
    return rows


def bench_command(target: Path | None, ngtc: Path | None, mesh: Path | None, dims: tuple[int, int], astc: str,
                  frames: int, warmup: int, max_seconds: float, out: Path, console,
                  viewer_frames: bool = False, cache_mib: float | None = None, only: list[str] | None = None) -> dict:
    from rich.progress import Progress
    from rich.table import Table

    material, ngtc = resolve_inputs(target, ngtc)
    if mesh is not None and not Path(mesh).is_file():
        raise ViewerError(f"{mesh}: no such mesh file")
    if frames < 1 or warmup < 0:
        raise ViewerError("--frames must be at least 1 and --warmup at least 0")
    if cache_mib is not None:
        check_cache_mib(cache_mib)
    blocks = [check_block(b.strip()) for b in astc.split(",") if b.strip()]
    with Progress(console=console, transient=True) as bar:
        total = frames * len(bench_modes(blocks, only)) * (2 if viewer_frames else 1)
        task = bar.add_task(f"bench at {dims[0]}x{dims[1]}: loading", total=total)
        doc = run_bench(material, ngtc, mesh, dims, blocks, frames, warmup, max_seconds,
                        lambda m: bar.update(task, advance=1, description=f"bench at {dims[0]}x{dims[1]}: {m}"),
                        viewer_frames, cache_mib, only)
    write_json(doc, out)
    clock = "timer queries" if doc["clock"] == "query" else "wall clock + glFinish (software rasterizer)"
    table = Table(title=f"ngtc bench: {doc['renderer']}, {dims[0]}x{dims[1]}, up to {frames} frames per mode, "
                        f"{clock}")
    for col in ("mode", "frame ms median", "p95", "fps", "x ASTC", "texel decodes/s", "GFLOP/s", "on GPU", "bpp"):
        table.add_column(col, justify="left" if col == "mode" else "right")
    for row in table_rows(doc):
        table.add_row(*row)
    return {"doc": doc, "table": table, "viewer_table": viewer_table(doc, dims) if doc["viewer"] else None}


def viewer_table(doc: dict, dims: tuple[int, int]):
    from rich.table import Table

    table = Table(title=f"ngtc view's whole frame (scene, composite, panel; no vsync) at {dims[0]}x{dims[1]}, "
                        "wall clock through glFinish")
    for col in ("mode", "frame ms median", "p95", "fps", "GPU ms (query)", "60 fps"):
        table.add_column(col, justify="left" if col == "mode" else "right")
    for mode, r in doc["viewer"].items():
        table.add_row(mode, f"{r['ms_median']:.2f}", f"{r['ms_p95']:.2f}", f"{r['fps']:.2f}",
                      f"{r['gpu_ms_median']:.2f}", "yes" if r["fps"] >= 60 else "no")
    return table


def si(value: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value:.3g}"
