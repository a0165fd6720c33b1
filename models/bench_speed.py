"""Training speed: `python -m models.bench_speed` times the fitting loop and the parts of a training step.

For each preset: steps per second of `fit` itself (a step budget, so the measure includes everything
a real fit does), and the milliseconds a free-grid training step spends in each part (drawing texels,
grid sampler with its pyramids, synthesizer, loss and backward, optimizer, clamping the grids), timed
around each part over `--steps` steps of the same loop (the CPU runs each part to its end before the next;
on CUDA the parts are synchronized). Prints tables and writes JSON. Quote medians of several runs on an
idle machine: a shared 2-core CPU halves PyTorch's speed, or worse.

A preset may carry shape overrides as `models.bench_capacity` variants do:
`--presets bpp4,bpp4:g0_bits=2+g0_channels=8`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from .atomic import write_atomic
from .bench_capacity import PRESET_FIELDS, variant_preset
from .decoder_shape import DecoderShape
from .fit import FitConfig, fit, fit_sampler, grid_groups, make_optimizer, pick_device, texel_loss, training_model
from .material import load_material
from .presets import Preset, get_preset

DATA = Path(__file__).resolve().parents[1] / ".cache" / "data"


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m models.bench_speed", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("material", nargs="?", default=str(DATA / "rocks"), help="a material (default: rocks)")
    p.add_argument("--presets", default="bpp2.4",
                   help="comma-separated presets, each optionally NAME:VARIANT with shape overrides (default bpp2.4)")
    p.add_argument("--steps", type=int, default=300, help="steps per timed fit (default 300)")
    p.add_argument("--repeats", type=int, default=3, help="timed fits per preset; the median is reported")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--out", type=Path, default=Path("bench/speed.json"), help="JSON results")
    return p.parse_args(argv)


def preset_of(name: str) -> Preset:
    """A preset by name, or `name:variant` for one with shape overrides (`bpp4:g0_bits=2+g0_channels=8`) and the
    preset's G0 pairs (`bpp4:g0_bits=4+g0_channels=4+g0_paired=0`, bpp4 before its digit pairs)."""
    base, _, variant = name.partition(":")
    try:
        preset = get_preset(base)
    except ValueError as e:
        raise SystemExit(f"bench_speed: {e}") from None
    # a fit setting (batch=4096) would be dropped by variant_preset, and the base preset timed under the name
    others = ({part.split("=", 1)[0] for part in variant.split("+") if variant}
              - set(DecoderShape.__struct_fields__) - PRESET_FIELDS)
    if others:
        raise SystemExit(f"bench_speed: {name!r}: only DecoderShape and preset fields here, not "
                         f"{', '.join(sorted(others))}")
    return variant_preset(preset, variant) if variant else preset


def steps_per_second(mips, preset: str, steps: int) -> float:
    model = fit(mips, FitConfig(preset_of(preset), steps=steps, seconds=None, device="cpu"))
    return steps / model.fit_seconds


# "optimizer": GridAdam, which clamps the grids and clears their gradient buffers too
PARTS = ("draw texels", "grid sampler", "synthesizer", "loss + backward", "optimizer")


def step_parts(mips, preset: str, steps: int, device: str = "cpu") -> dict[str, float]:
    """Milliseconds per step in each part of the free-grid training loop (fit's grids phase, noise
    quantization for the first 60% of the steps as in `fit`), averaged over `steps` steps."""
    cfg = FitConfig(preset_of(preset), steps=steps, seconds=None, device=device)
    dev = pick_device(device)
    gen = torch.Generator().manual_seed(cfg.seed)
    sampler = fit_sampler(mips, cfg, dev, gen)
    h, w, c = mips[0].shape
    model = training_model(c, cfg, dev)
    model.init_grids(w, h, generator=gen)
    model.train()
    opt = make_optimizer(grid_groups(model, cfg), cfg)
    spent = dict.fromkeys(PARTS, 0.0)

    def timed(part: str, work: Callable, *args):  # noqa: ANN202 - returns what work returns
        t = time.perf_counter()
        out = work(*args)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        spent[part] += time.perf_counter() - t
        return out

    for step in range(steps):
        quant = "noise" if step < cfg.noise_share * steps else "ste"
        uv, mip, target = timed("draw texels", sampler.sample, cfg.batch)
        feats = timed("grid sampler", model.grid_features, uv, mip, quant, sampler.runs(cfg.batch))
        out = timed("synthesizer", model.texture_synthesizer, feats, uv, mip)
        opt.zero_grad(set_to_none=True)
        timed("loss + backward", _backward, out, target, sampler.weights(cfg.batch))
        timed("optimizer", opt.step)
    return {part: round(1000 * t / steps, 3) for part, t in spent.items()}


def _backward(out: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None) -> None:
    texel_loss(out, target, weights).backward()


def parts_table(rows: list[dict]) -> Table:
    table = Table("preset", *PARTS, "total", title="ms per training step, by part")
    for row in rows:
        parts = row["step_ms"]
        total = sum(parts.values())
        table.add_row(row["preset"], *(f"{parts[p]:.2f} ({100 * parts[p] / total:.0f}%)" for p in PARTS),
                      f"{total:.2f}")
    return table


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    console = Console(width=None if sys.stdout.isatty() else 140)
    mips = load_material(args.material).mip_chain()
    table = Table("preset", "steps/s (median)", "runs", title=f"fit speed, {args.steps} steps, "
                  f"{torch.get_num_threads()} threads")
    rows = []
    for preset in args.presets.split(","):
        steps_per_second(mips, preset, 20)  # warm-up: allocator, first-call overheads
        runs = sorted(steps_per_second(mips, preset, args.steps) for _ in range(args.repeats))
        median = runs[len(runs) // 2]
        rows.append({"preset": preset, "steps_per_s": round(median, 2), "runs": [round(r, 2) for r in runs],
                     "step_ms": step_parts(mips, preset, args.steps)})
        table.add_row(preset, f"{median:.2f}", ", ".join(f"{r:.2f}" for r in runs))
    console.print(table)
    console.print(parts_table(rows))
    doc = {"material": args.material, "steps": args.steps, "threads": torch.get_num_threads(),
           "torch": str(torch.__version__), "time": time.strftime("%Y-%m-%d %H:%M"), "results": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out, (json.dumps(doc, indent=1) + "\n").encode())


if __name__ == "__main__":
    main()
