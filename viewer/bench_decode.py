"""`python -m viewer.bench_decode`: the GLSL decoder's throughput in a compute shader (texels decoded per second,
GFLOP/s, and the share of the chip's FP32 peak when it is known or given).

Decode on load and decode on feedback both run the decoder in compute (`shaders/ngtc_bake.comp`,
`feedback_decode.comp`), and a datacenter GPU runs fragment shaders on few of its units, so this figure, not the
on-sample modes' GFLOP/s in `ngtc bench`, is the one that carries over between GPUs. One run decodes every texel of
`--mip` into RGBA8 images (the decode-on-load pass); runs are batched between two glFinish calls, the batch doubled
until it takes `MIN_BATCH_SECONDS`, then `--repeats` batches are timed (median). FLOPs per texel: 2 x the
synthesizer's multiply-adds (`flops_per_decode`, as `ngtc bench`).

`--variants` times the decoder built other ways, one after the other in the same context (the first gives the
document's top-level figures): `default` (as `upload_ngtc` chooses: weights in a storage buffer on a GPU, in a
uniform block on a software renderer; the MLP unrolled on a GPU), `ubo` / `ssbo` (the weights in a uniform block /
a storage buffer), `no-unroll` (the MLP as loops, as software renderers run it).

    python -m viewer.bench_decode [NGTC] [--mip 0] [--repeats 5] [--variants default,ubo,ssbo,no-unroll]
        [--peak-tflops T] -o bench_decode.json
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import moderngl
import numpy as np

from models.ngtc_file import CompressedTexture
from models.spec import mip_size

from .bench_common import write_json
from .errors import ViewerError, one_line
from .neural_gl import _bake_program, _run_bake, decode_flops, is_software_renderer, upload_ngtc

DEFAULT_NGTC = Path(__file__).resolve().parents[1] / "assets" / "tiles.ngtc"
MIN_BATCH_SECONDS = 0.25  # a timed batch at least this long: glFinish's own latency stays small beside it
MAX_BATCH = 4096
PEAK_TFLOPS = {"h200": 66.9, "h100 80gb hbm3": 66.9}  # FP32 (non-tensor) peaks by GL_RENDERER substring: SXM
# How each variant uploads the .ngtc: upload_ngtc's arguments.
VARIANTS = {"default": {}, "ubo": {"weights_block": "ubo"}, "ssbo": {"weights_block": "ssbo"},
            "no-unroll": {"unroll": False}}


def peak_for(renderer: str) -> float | None:
    name = renderer.lower()
    return next((v for k, v in PEAK_TFLOPS.items() if k in name), None)


def time_batch(ctx: moderngl.Context, run, batch: int) -> float:
    ctx.finish()
    t0 = time.perf_counter()
    for _ in range(batch):
        run()
    ctx.finish()
    return time.perf_counter() - t0


def parse_variants(text: str) -> list[str]:
    names = [v.strip() for v in text.split(",") if v.strip()]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown or not names:
        raise ViewerError(f"--variants {text}: choose from {', '.join(VARIANTS)}")
    return names


def time_variant(ctx: moderngl.Context, ngtc: Path, mip: int, repeats: int,
                 variant: str) -> tuple[dict, CompressedTexture]:
    """Throughput of one variant of the decoder, uploaded for it and released after: its figures, and the file."""
    ngl = upload_ngtc(ctx, Path(ngtc), **VARIANTS[variant])
    textures = []
    try:
        if not 0 <= mip < ngl.mips:
            raise ViewerError(f"--mip {mip}: {Path(ngtc).name} has mips 0 .. {ngl.mips - 1}")
        w, h = mip_size(ngl.width, ngl.height, mip)
        textures = [ctx.texture((w, h), 4, dtype="f1") for _ in range(-(-ngl.channels // 4))]
        program = _bake_program(ngl, to_buffer=False, overrides=None)

        def run() -> None:
            for i, tex in enumerate(textures):
                tex.bind_to_image(i, read=False, write=True, level=0)
            _run_bake(ngl, program, mip)

        first = time_batch(ctx, run, 1)  # compiles, uploads: not timed
        batch, seconds = 1, time_batch(ctx, run, 1)
        while seconds < MIN_BATCH_SECONDS and batch < MAX_BATCH:
            batch *= 2
            seconds = time_batch(ctx, run, batch)
        times = [time_batch(ctx, run, batch) for _ in range(repeats)]
        rate = w * h * batch / float(np.median(times))
        return {"variant": variant, "weights_block": ngl.weights_block, "unrolled": "NGTC_NO_UNROLL" not in ngl.defines,
                "size": [w, h], "runs_per_batch": batch, "batch_seconds": [round(t, 5) for t in times],
                "first_run_seconds": round(first, 4), "texels_per_s": round(rate, 1)}, ngl.compressed
    finally:
        for tex in textures:
            tex.release()
        ngl.release()


def bench_decode(ngtc: Path, mip: int = 0, repeats: int = 5, peak_tflops: float | None = None,
                 ctx: moderngl.Context | None = None, variants: tuple[str, ...] = ("default",)) -> dict:
    """The decoder's compute throughput on `ngtc`'s mip `mip`, per variant (`VARIANTS`); the JSON document, whose
    top-level figures are the first variant's."""
    from .headless import headless_context

    if repeats < 1:
        raise ViewerError("--repeats must be at least 1")
    if peak_tflops is not None and not peak_tflops > 0:
        raise ViewerError(f"--peak-tflops {peak_tflops:g}: must be more than 0")
    if not Path(ngtc).is_file():
        raise ViewerError(f"{ngtc}: no such .ngtc file")
    own = ctx is None
    ctx = ctx or headless_context()
    try:
        rows, ct = [], None
        for variant in variants:
            row, ct = time_variant(ctx, ngtc, mip, repeats, variant)
            rows.append(row)
        flops, channels = decode_flops(ct), ct.out_channels
        renderer = str(ctx.info.get("GL_RENDERER"))
        peak = peak_tflops or peak_for(renderer)
        for row in rows:
            row["gflops"] = round(row["texels_per_s"] * flops / 1e9, 3)
            row["of_peak"] = round(row["gflops"] / (peak * 1e3), 5) if peak else None
        top = rows[0]
        return {"renderer": renderer, "vendor": ctx.info.get("GL_VENDOR"), "gl": ctx.info.get("GL_VERSION"),
                "software": is_software_renderer(ctx), "host": f"{platform.machine()}, {platform.system()}",
                "ngtc": str(ngtc), "mip": mip, "size": top["size"], "channels": channels,
                "texels_per_run": top["size"][0] * top["size"][1], "runs_per_batch": top["runs_per_batch"],
                "batch_seconds": top["batch_seconds"], "first_run_seconds": top["first_run_seconds"],
                "texels_per_s": top["texels_per_s"], "flops_per_decode": flops, "gflops": top["gflops"],
                "peak_tflops": peak, "of_peak": top["of_peak"], "variants": rows,
                "note": "one run: every texel of the mip decoded by ngtc_bake.comp (decode on load) into RGBA8 "
                        "images; batches of runs_per_batch runs between two glFinish calls, median of the batches; "
                        "gflops: texels_per_s x flops_per_decode (2 x the synthesizer's multiply-adds); of_peak: "
                        "against peak_tflops FP32 (--peak-tflops, or known for the renderer); the top-level figures "
                        "are the first variant's"}
    finally:
        if own:
            ctx.release()


def summary_line(doc: dict, row: dict | None = None) -> str:
    row = row or doc
    peak = f", {row['of_peak']:.2%} of {doc['peak_tflops']:g} TFLOP/s FP32" if row["of_peak"] is not None else ""
    variant = f" [{row['variant']}]" if "variant" in row else ""
    return (f"decoder in compute on {doc['renderer']}{variant}: {row['texels_per_s'] / 1e6:.3f} M texels/s, "
            f"{row['gflops']:.2f} GFLOP/s{peak} (mip {doc['mip']}, {doc['size'][0]}x{doc['size'][1]}, "
            f"{row['runs_per_batch']} runs a batch, {doc['flops_per_decode']:,} FLOPs a texel)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m viewer.bench_decode", description=__doc__.split("\n\n")[0])
    parser.add_argument("ngtc", nargs="?", type=Path, default=DEFAULT_NGTC)
    parser.add_argument("--mip", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--variants", default="default",
                        help=f"comma-separated, timed in turn: {', '.join(VARIANTS)} (default: default)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the chip's FP32 peak (default: known ones)")
    parser.add_argument("-o", "--out", type=Path, default=Path("bench_decode.json"))
    args = parser.parse_args(argv)
    try:
        doc = bench_decode(args.ngtc, args.mip, args.repeats, args.peak_tflops,
                           variants=tuple(parse_variants(args.variants)))
        write_json(doc, args.out)
    except Exception as e:  # noqa: BLE001 - bad input and driver failures in one line
        from models.ngtc_file import NgtcError
        from viewer.neural_gl import NgtcGLError

        if not isinstance(e, ViewerError | NgtcError | NgtcGLError | OSError | ValueError):
            raise
        print(f"bench_decode: error: {one_line(e)}", file=sys.stderr)
        return 2
    for row in doc["variants"]:
        print(summary_line(doc, row))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
