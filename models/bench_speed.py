"""Training speed: `python -m models.bench_speed` times the fitting loop and profiles one training step.

For each preset: steps per second of `fit` itself (a step budget, so the measure includes everything
a real fit does), and the share of a step spent in each part (sampling, grid sampler, synthesizer,
backward, optimizer), from PyTorch's profiler. Prints a table and writes JSON. Quote medians of
several runs on an idle machine: a shared 2-core CPU halves PyTorch's speed, or worse.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from .atomic import write_atomic
from .fit import FitConfig, fit
from .material import load_material
from .presets import PRESETS

DATA = Path(__file__).resolve().parents[1] / ".cache" / "data"


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m models.bench_speed", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("material", nargs="?", default=str(DATA / "rocks"), help="a material (default: rocks)")
    p.add_argument("--presets", default="bpp2.4", help="comma-separated presets (default bpp2.4)")
    p.add_argument("--steps", type=int, default=300, help="steps per timed fit (default 300)")
    p.add_argument("--repeats", type=int, default=3, help="timed fits per preset; the median is reported")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--out", type=Path, default=Path("bench/speed.json"), help="JSON results")
    return p.parse_args(argv)


def steps_per_second(mips, preset: str, steps: int) -> float:
    model = fit(mips, FitConfig(PRESETS[preset], steps=steps, seconds=None, device="cpu"))
    return steps / model.fit_seconds


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
        rows.append({"preset": preset, "steps_per_s": round(median, 2), "runs": [round(r, 2) for r in runs]})
        table.add_row(preset, f"{median:.2f}", ", ".join(f"{r:.2f}" for r in runs))
    console.print(table)
    doc = {"material": args.material, "steps": args.steps, "threads": torch.get_num_threads(),
           "torch": str(torch.__version__), "time": time.strftime("%Y-%m-%d %H:%M"), "results": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out, (json.dumps(doc, indent=1) + "\n").encode())


if __name__ == "__main__":
    main()
