"""`ngtc`: compress PBR material sets with a neural codec, inspect, decode and benchmark them."""

from __future__ import annotations

import logging
import shlex
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from models.ngtc_file import CompressedTexture

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help=__doc__, context_settings={"help_option_names": ["-h", "--help"]})
console = Console(stderr=True)


def stdout_console() -> Console:
    """Tables on stdout; wide enough not to fold when piped to a file or a log."""
    return Console(width=None if sys.stdout.isatty() else 140)


class UserError(Exception):
    """A problem with the user's input or environment: one line, exit status 2."""


def fail(message: str) -> None:
    raise UserError(message)


def _mips_label(psnrs: list[float], count: int = 5) -> str:
    return "  ".join(f"{v:.2f}" for v in psnrs[:count])


def summary_table(ct: CompressedTexture, path: Path | None, size: int) -> Table:
    """What a stored file holds and measured: one row per map, with where it was read from."""
    info, q = ct.info, ct.info.quality
    title = f"{info.material or ''}  {ct.width}x{ct.height}, {ct.mips} mips" + (f"  ->  {path}" if path else "")
    t = Table(title=escape(title), title_justify="left")
    t.add_column("map")
    t.add_column("channels")
    t.add_column("space")
    t.add_column("source (channel)")
    t.add_column("bits", justify="right")
    t.add_column("PSNR dB at mip 0 1 2 3 4", justify="right")
    for m in ct.layout:
        psnrs = q.psnr_maps.get(m.name)
        detail = "constant " + ", ".join(f"{v:.3f}" for v in m.constant) if m.constant else (
            _mips_label(psnrs) if psnrs else "")
        t.add_row(m.name, str(m.channels), m.color_space, escape(m.describe_source(file_name_only=True)),
                  str(m.bit_depth), detail)
    if q.psnr:
        t.add_row("[b]all channels[/b]", "", "", "", "", f"[b]{_mips_label(q.psnr)}[/b]")
    t.caption = escape(f"stored {size:,} bytes = {size * 8 / (ct.width * ct.height):.3f} bits per texel (full mip "
                       f"chain) | preset {info.preset} | method {info.method} | {info.steps} steps in {info.seconds} s "
                       f"on {info.device}")
    t.caption_justify = "left"
    return t


# Options of the commands that run a library on Ray (`ngtc compress` to a folder, `ngtc eval` of several materials).
RayAddress = Annotated[str | None, typer.Option(
    "--address", help="Library: join this Ray cluster (`ray start --head` prints its address; see README) instead of "
    "starting a local Ray on this machine.")]
RayCpus = Annotated[int | None, typer.Option(
    "--cpus", help="Library: CPUs of the local Ray (default: all of this machine's).")]
CpusPerTask = Annotated[int | None, typer.Option(
    help="Library: CPUs (torch threads) per task (default: the cores split between the tasks, so that tasks x "
    "threads never exceeds them; 1 with a GPU).")]
GpusPerTask = Annotated[float | None, typer.Option(
    help="Library: GPUs per task (default: 1 when the cluster has GPUs; 0: CPUs only).")]
Retries = Annotated[int, typer.Option(help="Library: runs of a task whose worker died, after the first.")]


@app.command()
def compress(
    paths: Annotated[list[Path], typer.Argument(
        help="Material folders (maps: basecolor, normal, roughness...), .glb/.gltf files (each material of one with "
        "several) or library roots (every material folder and glTF below them); one or more.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="The .ngtc file to write (one material), or a "
                                         "folder: one .ngtc per material, library.json and library.html.")],
    bpp: Annotated[float | None, typer.Option(help="Target bits per texel of the stored file (met within 10%: "
                                                "grid channels and, on small textures, the network are sized "
                                                "for this material).")] = None,
    psnr: Annotated[float | None, typer.Option(help="Target PSNR in dB at mip 0 over all channels: the lowest rate "
                                                 "that reaches it, found by short probe fits (1/5 of the budget "
                                                 "each, about 3), then the full fit.")] = None,
    preset: Annotated[str | None, typer.Option(help="Preset name (see `ngtc presets`), instead of --bpp.")] = None,
    method: Annotated[str, typer.Option(help="grids | warm | encoder+refine | encoder (see README).")] = "grids",
    steps: Annotated[int | None, typer.Option(help="Training steps (exactly reproducible budget).")] = None,
    seconds: Annotated[float, typer.Option(help="Training time budget when --steps is not given.")] = 300.0,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    maps: Annotated[str | None, typer.Option(help="Comma-separated maps to keep, e.g. basecolor,normal.")] = None,
    channel: Annotated[list[str] | None, typer.Option(
        "--channel", metavar="MAP=CH", help="Image channel of a scalar map: MAP=R|G|B|A|luminance, e.g. "
        "roughness=R (repeatable or comma-separated). Without it a scalar map (roughness, gloss, metallic, ao, "
        "height, opacity) is read from R when its other channels are constant or equal to R, and refused when they "
        "differ (a packed map). For a whole folder: a channels.json in it, e.g. {\"roughness\": \"G\"}; "
        "--channel wins over it.")] = None,
    device: Annotated[str | None, typer.Option(help="cpu or cuda (default: cuda when present).")] = None,
    address: RayAddress = None,
    cpus: RayCpus = None,
    cpus_per_task: CpusPerTask = None,
    gpus_per_task: GpusPerTask = None,
    retries: Retries = 2,
) -> None:
    """Compress a material set into one .ngtc file, with a progress bar and a quality summary; or a library
    (several inputs, or -o a folder) on Ray: one task per material, resumable, library.json and library.html."""
    from models.library import Settings
    from models.material import parse_channel_choices

    settings = Settings(preset, bpp, psnr, method, steps, seconds, seed, tuple(maps.split(",")) if maps else None,
                        tuple(parse_channel_choices(channel or []).items()))
    if len(paths) > 1 or output.suffix.lower() != ".ngtc" or output.is_dir():
        from models.library_run import RayOptions

        _compress_library(paths, output, settings, RayOptions(address, cpus, cpus_per_task, gpus_per_task, device,
                                                              retries))
    else:
        _compress_one(paths[0], output, settings, device)


def _compress_one(path: Path, output: Path, settings, device: str | None) -> None:
    from models import ngtc_file
    from models.library import compress, fit_config
    from models.material import has_maps, load_material
    from models.rate import stored_bytes

    if path.is_dir() and not has_maps(path):
        fail(f"{path}: no maps in this folder; to compress the materials below it, give -o a folder")
    _check_writable(output)
    material = load_material(path, list(settings.maps) if settings.maps else None, channels=dict(settings.channels))
    chosen = fit_config(material, settings, device).preset
    w, h = material.width, material.height
    target = f"target {settings.psnr} dB at mip 0" if settings.psnr is not None else (
        f"preset {chosen.name} ({stored_bytes(chosen.shape, w, h, material.layout()) * 8 / (w * h):.2f} bpp)")
    console.print(f"[b]{escape(material.name)}[/b]: {w}x{h}, {material.channels} channels "
                  f"({', '.join(m.name for m in material.maps if m.constant is None)}), {target}, method "
                  f"{settings.method}")
    data, ct, probes = _with_progress(lambda cb: compress(material, settings, device, cb), settings.steps)
    if settings.psnr is not None:
        tried = ", ".join(f"{p.bits_per_texel:.2f} bpp: {p.psnr_mip0:.2f} dB" for p in probes)
        console.print(f"probes (short fits) {tried or 'none'}; chose {ct.info.preset} "
                      f"({len(data) * 8 / (w * h):.3f} bpp): {ct.info.quality.psnr[0]:.2f} dB at mip 0"
                      + ("" if ct.info.quality.psnr[0] >= settings.psnr else
                         f", short of the {settings.psnr} dB asked for"))
    ngtc_file.write_atomic(output, data)
    stdout_console().print(summary_table(ct, output, len(data)))


def _compress_library(paths: list[Path], output: Path, settings, ray) -> None:
    from models.library_run import compress_library, summary

    try:
        doc = compress_library(paths, output, settings, ray, shlex.join(["ngtc", *sys.argv[1:]]))
    except KeyboardInterrupt:
        console.print(f"ngtc: interrupted; the materials done are in {escape(str(output))} with a valid library.json: "
                      "the same command resumes")
        raise
    stdout_console().print(escape(summary(doc, output)))
    if doc["summary"]["failed"]:
        sys.exit(1)  # some materials failed (each named above and in library.json); the others are done


def _with_progress(run, steps: int | None):
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    columns = [TextColumn("{task.fields[phase]:>7}"), BarColumn(), TextColumn("step {task.fields[step]:>6}"),
               TextColumn("loss {task.fields[loss]:.5f}"), TextColumn("PSNR {task.fields[psnr]:5.2f} dB"),
               TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("fit", total=1.0, phase="fit", step=0, loss=0.0, psnr=0.0)

        def callback(p) -> None:
            progress.update(task, completed=p.fraction, phase=p.phase, step=p.step, loss=p.loss, psnr=p.psnr)

        result = run(callback)
        progress.update(task, completed=1.0, phase="stored")
    return result


def _check_writable(output: Path) -> None:
    parent = output.parent if str(output.parent) else Path(".")
    if not parent.is_dir():
        fail(f"{output}: cannot write (folder {parent} does not exist)")
    if output.is_dir():
        fail(f"{output}: is a folder, expected a file path")


@app.command()
def info(path: Annotated[Path, typer.Argument(help="An .ngtc file.")]) -> None:
    """Print what is inside an .ngtc file: layout, sizes, preset, bitrate and recorded PSNR."""
    from models import ngtc_file

    ct = ngtc_file.load(path)
    out = stdout_console()
    out.print(summary_table(ct, path, ct.info.stored_bytes))
    s, (g0, g1) = ct.shape, ct.shape.grid_shapes(ct.width, ct.height)
    out.print(f"grids: G0 {g0[1]}x{g0[0]}x{g0[2]} (cell {s.g0_cell}, {s.g0_bits}-bit, read as {s.g0_sampling}), "
              f"G1 {g1[1]}x{g1[0]}x{g1[2]} (cell {s.g1_cell}, {s.g1_bits}-bit) | synthesizer: hidden {s.hidden_dim}, "
              f"{s.num_residual_blocks} residual blocks, {s.positional_encoding_levels} PE levels, {s.activation}, "
              f"fp16 weights")


@app.command()
def decode(
    path: Annotated[Path, typer.Argument(help="An .ngtc file.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Folder for the PNG maps.")],
    mip: Annotated[int, typer.Option(help="Mip level to write.")] = 0,
    all_mips: Annotated[bool, typer.Option("--all-mips", help="Write every mip level (suffix _mipK).")] = False,
    astc: Annotated[str | None, typer.Option("--astc", metavar="BLOCK", help="Also transcode: the whole decoded mip "
                                             "chain encoded by astcenc (medium) at this block size (4x4, 5x5, 6x6, "
                                             "8x8, 10x10, 12x12) into OUTPUT/astc_BLOCK/ (.astc files and a "
                                             "manifest), with its PSNR against the reference next to the plain "
                                             "decode's.")] = None,
    reference: Annotated[Path | None, typer.Option(help="The material the .ngtc was made from, for --astc's PSNR "
                                                        "(default: the one beside the .ngtc, same name, if any).")
                         ] = None,
    device: Annotated[str | None, typer.Option(help="cpu or cuda.")] = None,
) -> None:
    """Decode every map back to PNG (8- or 16-bit as the source was); with --astc, transcode to ASTC too."""
    from models.decoder import NeuralTexture
    from models.material import save_maps

    if astc is not None:
        from viewer.transcode import check_block

        check_block(astc)  # before the decoding
    nt = NeuralTexture.load(path, device)
    if not 0 <= mip < nt.mips:
        fail(f"{path}: mip {mip} out of range 0..{nt.mips - 1}")
    maps = nt.compressed.layout
    levels = range(nt.mips) if all_mips or astc else [mip]
    chain = {m: nt.decode_mip(m) for m in levels}
    written = []
    for m in levels if all_mips else [mip]:
        suffix = f"_mip{m}" if all_mips or m else ""
        written += save_maps(chain[m], maps, output, suffix)
    console.print(f"wrote {len(written)} PNG files to {escape(str(output))}")
    if astc is not None:
        decoded = [chain[m] for m in levels]
        _transcode(nt.compressed, path.stem, decoded, astc, output / f"astc_{astc}", reference or _beside(path))


def _beside(ngtc: Path) -> Path | None:
    """The material a `.ngtc` was made from, when it lies beside it under the same name (as `ngtc view` finds it)."""
    candidate = ngtc.with_suffix("")
    return candidate if candidate.exists() else None


def _transcode(ct: CompressedTexture, name: str, chain: list, block: str, out: Path, reference: Path | None) -> None:
    """`ngtc decode --astc`: the decoded chain encoded to ASTC into `out`, and a table of what that costs."""
    from models.material import load_material
    from viewer.transcode import DecodedChain, measure, transcode

    ref = load_material(reference).mip_chain() if reference is not None else None
    if ref is not None and ref[0].shape != chain[0].shape:
        fail(f"{reference}: {ref[0].shape[1]}x{ref[0].shape[0]} with {ref[0].shape[2]} channels; the .ngtc holds "
             f"{ct.width}x{ct.height} with {ct.out_channels} (not its material? give --reference)")
    decoded = DecodedChain(ct.info.material or name, list(ct.layout), chain)
    result = transcode(decoded, block, out)
    loss = measure(chain, result.decoded(), ref)
    table = Table(title=escape(f"ASTC {block} of the decoded chain: {result.bits_per_texel:.2f} bpp, "
                               f"{result.manifest['block_bytes']:,} bytes  ->  {out}"), title_justify="left")
    columns = ("mip", "plain decode dB", "transcoded dB", "extra loss dB", "transcoded vs plain dB")
    for col in columns:
        table.add_column(col, justify="right")
    rows = loss.to_json()
    for m in range(len(chain)):
        table.add_row(str(m), *(_db(rows[k], m) for k in ("psnr_plain_decode", "psnr_transcoded", "extra_loss_db",
                                                          "psnr_transcoded_vs_plain_decode")))
    table.caption = "PSNR over all channels against " + (escape(str(reference)) if ref is not None else
                                                         "no reference (give --reference for it)")
    table.caption_justify = "left"
    stdout_console().print(table)


def _db(values: list | None, mip: int) -> str:
    if not values:
        return "-"
    return "inf" if values[mip] is None else f"{values[mip]:.2f}"  # None: identical, +inf dB


@app.command()
def presets() -> None:
    """List the bitrate presets."""
    from models.presets import PRESETS

    t = Table("preset", "G0 channels x cell, bits", "G0 pairs", "G1 channels x cell, bits",
              "synthesizer width x blocks", "coarse mips", "mip falloff", "synthesizer lr", "grid bpp", "~bpp at 1024²")
    for p in PRESETS.values():
        s = p.shape
        t.add_row(p.name, f"{s.g0_channels} x {s.g0_cell}, {s.g0_bits}", str(p.g0_pairs or "-"),
                  f"{s.g1_channels} x {s.g1_cell}, {s.g1_bits}",
                  f"{s.hidden_dim} x {s.num_residual_blocks}, {s.activation}",
                  "pyramid" if s.grid_pyramid else "strided", f"{p.mip_falloff:g}", f"{p.lr_synthesizer:g}",
                  f"{s.grid_bits_per_texel:.3f}", f"{p.nominal_bpp():.2f}")
    stdout_console().print(t)
    stdout_console().print("coarse mips: past its cell a grid is read from its pyramid of 2x2 means or with a "
                           "larger stride. mip falloff: training draws texels of mip m in proportion to "
                           "falloff^m. synthesizer lr: its learning rate with free grids. G0 pairs: channel pairs "
                           "trained as one feature of twice the bits (models/digit_pairs.py). How "
                           "each shape and setting was chosen: docs/benchmarks.md.")


@app.command("bench-codec", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench_codec(ctx: typer.Context) -> None:
    """Rate-distortion benchmark of the codec (same as `python -m models.bench`; see its --help)."""
    from models import bench

    bench.main(ctx.args)


@app.command("eval", help=(
    "Rate-distortion of the neural codec against ASTC: a report folder per run.\n\n"
    "Encodes every material with each neural preset and each ASTC block size (full mip chains), decodes what was "
    "stored and writes report.md and report.json (bits per texel of the whole set incl. mips; PSNR per map and mip; "
    "SSIM; base color FLIP; BD-rate and BD-PSNR of neural against every ASTC curve (one per astcenc preset and "
    "packing) at mips 0-4, with the PSNR interval the curves share), rd_<material>.png, "
    "compare_<material>_<map>_mip<k>.png, the ASTC textures (astc/) and the .ngtc files (ngtc/). Encodings made "
    "earlier with the same settings are reused.\n\n"
    "Several materials (several paths, a library root, a multi-material glTF) or --address: a library, on Ray: "
    "every ASTC encode and neural preset is a task, each material gets its report in <out>/<material>/, and <out> "
    "the library's report.md/json (BD-rate distribution per mip), rd_library.png and library.html.\n\n"
    "Example: ngtc eval .cache/data/rocks --presets bpp2.4,bpp8 --blocks 8x8,12x12 --steps 300 --out report/"))
def eval_(
    paths: Annotated[list[Path], typer.Argument(help="Material folders or .glb/.gltf files, one or more.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Report folder (created; a report.md is replaced).")] = Path(
        "report"),
    quick: Annotated[bool, typer.Option(help="Quick check: 64 px centred crop, presets bpp2.4,bpp8 at 60 steps, "
                                             "blocks 6x6,12x12, ASTC medium compact only (explicit options still "
                                             "win).")] = False,
    presets: Annotated[str | None, typer.Option(help="Neural presets, comma-separated (default: all; see "
                                                     "`ngtc presets`).")] = None,
    blocks: Annotated[str | None, typer.Option(help="ASTC block sizes, comma-separated (default "
                                                    "4x4,5x5,6x6,8x8,10x10,12x12).")] = None,
    quality: Annotated[str | None, typer.Option(help="astcenc presets, comma-separated, one ASTC curve each: fastest, "
                                                     "fast, medium, thorough, verythorough, exhaustive (default "
                                                     "medium,thorough).")] = None,
    astc_packing: Annotated[str | None, typer.Option(help="ASTC packing: compact (color, normal, orm textures), "
                                                          "fewest (as few RGBA textures as the maps fit in) or both; "
                                                          "one ASTC curve each (default both).")] = None,
    method: Annotated[str, typer.Option(help="Neural fitting method: grids | warm | encoder+refine | encoder.")
                      ] = "grids",
    seconds: Annotated[float | None, typer.Option(help="Neural training budget per preset, in seconds (default 300; "
                                                       "with --quick: 60 steps unless given).")] = None,
    steps: Annotated[int | None, typer.Option(help="Step budget instead of --seconds (bit-exact with --seed).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed of the neural fits.")] = 0,
    crop: Annotated[int | None, typer.Option(help="Evaluate a centred crop of this many texels a side.")] = None,
    compare_bpp: Annotated[float, typer.Option(help="Rate of the side-by-side images: the nearest setting of each "
                                                    "codec.")] = 2.4,
    compare_mips: Annotated[str, typer.Option(help="Mips of the side-by-side images, comma-separated.")] = "0",
    device: Annotated[str | None, typer.Option(help="cpu or cuda (default: cuda when present).")] = None,
    address: RayAddress = None,
    cpus: RayCpus = None,
    cpus_per_task: CpusPerTask = None,
    gpus_per_task: GpusPerTask = None,
    retries: Retries = 2,
) -> None:
    """Rate-distortion of the neural codec against ASTC (see the help above)."""
    from models import evaluate
    from models.library import discover

    command = shlex.join(["ngtc", *sys.argv[1:]])
    options = dict(out=out, quick=quick, presets=presets, blocks=blocks, quality=quality, astc_packing=astc_packing,
                   method=method, seconds=seconds, steps=steps, seed=seed, crop=crop, compare_bpp=compare_bpp,
                   compare_mips=compare_mips, device=device)
    items = discover(paths, exclude=out)
    if len(items) > 1 or address:
        from models.library_eval import evaluate_library
        from models.library_report import summary_lines
        from models.library_run import RayOptions

        ray = RayOptions(address, cpus, cpus_per_task, gpus_per_task, device, retries)
        try:
            doc = evaluate_library(paths, evaluate.make_options(**options), ray, command)
        except KeyboardInterrupt:
            console.print("ngtc: interrupted; the encodes and fits done are kept: the same command resumes")
            raise
        for line in summary_lines(doc):
            stdout_console().print(escape(line))
        stdout_console().print(escape(f"wrote {out / 'report.md'}, {out / 'report.json'} and {out / 'library.html'}"))
        if doc["failed"]:
            sys.exit(1)  # some materials failed (named above and in report.md); the others are in the report
        return
    # One material: evaluated here, in this process (an unusable input keeps its own one-line error).
    one = [items[0].source] if len(items) == 1 and items[0].error is None else paths
    evaluate.run_cli(one, command, **options)


ENV_OPTION = typer.Option(help="The HDR environment lighting the object: any equirectangular .exr or .hdr "
                                "(default: the bundled neutral studio).")
CACHE_OPTION = typer.Option(help="neural-feedback: the tile cache budget in MiB (default: 8, or less so that the "
                                 "mode holds at most a quarter of decoded on load's bytes).")
SCENE_OPTION = typer.Option("--scene/--no-scene", help="A .glb/.gltf as a whole scene: every mesh at its node, each "
                            "primitive with its own material (default: when it has several materials or meshes and "
                            "no --mesh; --no-scene: its most textured material on the mesh).")


@app.command()
def view(
    target: Annotated[Path | None, typer.Argument(help="A material folder, .glb/.gltf or .ngtc (default: the "
                                                       "bundled tiles); a same-named .ngtc / material beside it "
                                                       "is used too. A library folder (material folders and glTF "
                                                       "files below it, or `ngtc compress` output): the gallery and "
                                                       "a material picker.")] = None,
    mesh: Annotated[Path | None, typer.Option(help="OBJ, glTF/GLB or PLY with UVs (default: preview sphere).")] = None,
    ngtc: Annotated[Path | None, typer.Option(help="The .ngtc to compare, if not beside the material.")] = None,
    size: Annotated[str, typer.Option(help="Window size WxH.")] = "1280x720",
    env: Annotated[Path | None, ENV_OPTION] = None,
    cache_mib: Annotated[float | None, CACHE_OPTION] = None,
    scene: Annotated[bool | None, SCENE_OPTION] = None,
) -> None:
    """Open the viewer: reference, ASTC and neural side by side across mips (F1 in the window lists the keys).
    Without a display: headless renders and a timing capture in ./ngtc-view/ instead."""
    from viewer.commands import view_command

    view_command(target, mesh, ngtc, size, env=env, cache_mib=cache_mib, scene=scene)


@app.command()
def render(
    target: Annotated[Path, typer.Argument(help="A material folder, .glb/.gltf or .ngtc; or a library folder "
                                                "(the gallery).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="The image to write (.png).")],
    mode: Annotated[str | None, typer.Option(help="reference | astc-<block> (4x4 .. 12x12) | neural | "
                                                  "neural-trilinear | neural-stochastic | neural-feedback | "
                                                  "neural-astc-<block> (decoded, then transcoded to ASTC); append "
                                                  "@<preset> (neural@bpp0.5) to a neural mode for another .ngtc of "
                                                  "the material from `ngtc eval` (default: reference; a library's "
                                                  "gallery: neural).")] = None,
    mip: Annotated[int, typer.Option(help="Forced mip level; -1: automatic (from derivatives).")] = -1,
    view: Annotated[str, typer.Option(help="shaded, basecolor, normal, roughness, metallic, ao, height, opacity, "
                                           "emissive, specular or 'mip level'.")] = "shaded",
    mesh: Annotated[Path | None, typer.Option(help="OBJ, glTF/GLB or PLY with UVs (default: preview sphere).")] = None,
    ngtc: Annotated[Path | None, typer.Option(help="The .ngtc, if not beside the material.")] = None,
    panel: Annotated[bool, typer.Option("--panel/--no-panel", help="Draw the control panel too.")] = False,
    size: Annotated[str, typer.Option(help="Image size WxH.")] = "1280x720",
    split: Annotated[str | None, typer.Option(help="Split screen: --mode left, this mode right.")] = None,
    diff: Annotated[str | None, typer.Option(help="Difference |mode - this mode| through a color map.")] = None,
    flat: Annotated[bool, typer.Option(help="The flat quad at 1:1 texels instead of the mesh.")] = False,
    lod_bias: Annotated[float, typer.Option(help="LOD bias added to the mip level.")] = 0.0,
    cache_mib: Annotated[float | None, CACHE_OPTION] = None,
    env: Annotated[Path | None, ENV_OPTION] = None,
    gallery: Annotated[bool, typer.Option("--gallery", help="TARGET is a library (a folder of materials, or the "
                                                            "output of `ngtc compress` of several): every material "
                                                            "on a grid of spheres in --mode.")] = False,
    sort: Annotated[str, typer.Option(help="The gallery's order: worst (PSNR, worst first), best, name, "
                                           "library.")] = "worst",
    scene: Annotated[bool | None, SCENE_OPTION] = None,
) -> None:
    """Render one image headless (EGL, no window), e.g. for reports and tests."""
    from viewer.commands import render_command
    from viewer.library_index import is_library

    if gallery or is_library(target):
        from viewer.gallery_render import render_gallery

        path, left_out = render_gallery(target, output, mode=mode or "neural", view=view, size=size, sort=sort,
                                        panel=panel, env=env)
        for line in left_out:  # materials that cannot be shown: one line each, the others are in the picture
            print(f"ngtc: warning: not shown: {one_line(Exception(line))}", file=sys.stderr)
        console.print(f"wrote {escape(str(path))}")
        return
    mode = mode or "reference"
    path = render_command(target, output, mode=mode, mip=mip, view=view, mesh=mesh, ngtc=ngtc, panel=panel,
                          size=size, split=split, diff=diff, flat=flat,
                          lod_bias=lod_bias, cache_mib=cache_mib, env=env, scene=scene)
    console.print(f"wrote {escape(str(path))}")


@app.command()
def bench(
    target: Annotated[Path | None, typer.Argument(help="A material folder, .glb/.gltf or .ngtc (default: the "
                                                       "bundled tiles and its .ngtc).")] = None,
    ngtc: Annotated[Path | None, typer.Option(help="The .ngtc, if not beside the material.")] = None,
    mesh: Annotated[Path | None, typer.Option(help="OBJ, glTF/GLB or PLY with UVs (default: preview sphere).")] = None,
    four_k: Annotated[bool, typer.Option("--4k", help="3840x2160 instead of 1920x1080.")] = False,
    astc: Annotated[str, typer.Option(help="ASTC block sizes to time, comma-separated (from `ngtc eval` when "
                                           "there, else encoded).")] = "12x12",
    size: Annotated[str | None, typer.Option(help="Frame size WxH instead (e.g. for a quick check).")] = None,
    frames: Annotated[int, typer.Option(help="Timed frames per mode.")] = 20,
    warmup: Annotated[int, typer.Option(help="Untimed frames first, per mode (the first compiles shaders).")] = 1,
    max_seconds: Annotated[float, typer.Option(help="Stop timing a mode after this long (one frame at least): "
                                                    "on-sample decoding takes seconds a frame on a CPU "
                                                    "rasterizer.")] = 60.0,
    out: Annotated[Path, typer.Option("-o", "--out", help="JSON results.")] = Path("ngtc_bench.json"),
    viewer: Annotated[bool, typer.Option("--viewer", help="Also time `ngtc view`'s whole frame (scene, panel) in "
                                                          "every mode: frames per second at this size.")] = False,
    cache_mib: Annotated[float | None, CACHE_OPTION] = None,
    modes: Annotated[str | None, typer.Option(help="Only these modes, comma-separated (e.g. "
                                                   "astc-12x12,neural,neural-feedback; default: every one).")] = None,
) -> None:
    """GPU frame times (timer queries, median and p95) of the sphere filling the frame in every mode:
    reference RGBA8, ASTC, neural on sample (trilinear, stochastic), neural decoded on load and transcoded on load
    to ASTC (at the --astc block sizes); texel decodes per second and GPU memory per mode. Headless (EGL)."""
    from viewer.bench import bench_command, si, transcoded_lines
    from viewer.bench_feedback import feedback_line
    from viewer.commands import parse_size

    dims = parse_size(size) if size else (3840, 2160) if four_k else (1920, 1080)
    only = [m.strip() for m in modes.split(",") if m.strip()] if modes is not None else None
    result = bench_command(target, ngtc, mesh, dims, astc, frames, warmup, max_seconds, out, console, viewer,
                           cache_mib, only)
    stdout_console().print(result["table"])
    if result["viewer_table"] is not None:
        stdout_console().print(result["viewer_table"])
    doc = result["doc"]
    load = doc["decode_on_load"]
    for line in [*transcoded_lines(doc), *filter(None, [feedback_line(doc)])]:
        stdout_console().print(escape(line))
    stdout_console().print(f"decode on load: {load['texels']:,} texels in {load['seconds'] * 1e3:.1f} ms "
                           f"({si(load['texel_decodes_per_s'])} texels/s); wrote {out}")


INPUT_ERRORS = {  # module -> exception classes that mean bad input or environment (a file, an option, no GPU)
    "models.material": ("MaterialError",), "models.ngtc_file": ("NgtcError",), "models.astc": ("AstcError",),
    "models.evaluate": ("EvalError",), "models.warm_start": ("WarmStartError",),
    "viewer.mesh": ("MeshError",), "viewer.neural_gl": ("NgtcGLError",),
    "viewer.materials_gl": ("TextureSetError",), "viewer.gl_upload": ("GLUploadError",),
    "viewer.errors": ("ViewerError",),
}


def input_errors() -> tuple[type[BaseException], ...]:
    """The exceptions reported in one line with exit status 2; anything else is a bug. Only modules already
    imported can have raised theirs, so none is imported here (the viewer's may not import without X11)."""
    found = [getattr(sys.modules[m], name) for m, names in INPUT_ERRORS.items() if m in sys.modules for name in names]
    return (UserError, OSError, ValueError, *found)


def one_line(e: BaseException) -> str:
    """The message on one line, with control characters (and undecodable file-name bytes) made visible."""
    text = " ".join(str(e).split()) or type(e).__name__
    return "".join(c if c.isprintable() else c.encode("unicode_escape", "backslashreplace").decode() for c in text)


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"ngtc: {record.levelname.lower()}: {one_line(Exception(record.getMessage()))}"


def main() -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(_Formatter())
    logging.basicConfig(level=logging.WARNING, handlers=[handler])  # the library's warnings, one line each
    try:
        app()
    except KeyboardInterrupt:
        console.print("ngtc: interrupted")
        sys.exit(130)
    except Exception as e:  # noqa: BLE001 - sorted below: input errors in one line, bugs with a traceback
        if isinstance(e, input_errors()):
            print(f"ngtc: error: {one_line(e)}", file=sys.stderr)
            sys.exit(2)
        print("ngtc: internal error (a bug in ngtc, not a problem with your input); please report it with the "
              "traceback below", file=sys.stderr)
        traceback.print_exc()
        sys.exit(70)


if __name__ == "__main__":
    main()
