"""Rate-distortion benchmark of the neural codec: `python -m models.bench` (or `ngtc bench-codec`).

Compresses each material at each preset (and method), decodes the stored bytes and reports, per run:
stored bits per texel of the whole set (full mip chain), PSNR over all channels at mips 0-4, wall time
and device. Prints a table and writes JSON. Keep the machine otherwise idle while it runs: PyTorch on
a shared 2-core CPU slows down many times over.
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

from .codec import compress_material
from .fit import METHODS, FitConfig
from .material import load_material
from .ngtc_file import write_atomic
from .presets import PRESETS

DATA = Path(__file__).resolve().parents[1] / ".cache" / "data"


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m models.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("materials", nargs="*", help=f"material folders or glTF files (default: rocks and tiles in {DATA})")
    p.add_argument("--presets", default=",".join(PRESETS), help="comma-separated presets (default: all)")
    p.add_argument("--methods", default="grids", help=f"comma-separated, from {', '.join(METHODS)}")
    p.add_argument("--seconds", type=float, default=300.0, help="training budget per run (default 300)")
    p.add_argument("--steps", type=int, default=None, help="step budget instead of seconds")
    p.add_argument("--crop", type=int, default=None, help="use a centred crop of this size (quick runs)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("bench/codec.json"), help="JSON results (default bench/codec.json)")
    p.add_argument("--save-dir", type=Path, default=None, help="also keep each .ngtc here")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> list[dict]:
    console = Console(width=None if sys.stdout.isatty() else 140)
    paths = [Path(m) for m in args.materials] or [DATA / "rocks", DATA / "tiles"]
    results: list[dict] = []
    table = Table("material", "preset", "method", "bpp", "PSNR mip0", "mip1", "mip2", "mip3", "mip4", "steps",
                  "seconds", title="neural codec, PSNR (dB) over all channels, decoded from the stored file")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for path in paths:
        material = load_material(path)
        if args.crop:
            c = min(args.crop, material.width, material.height)
            material = material.crop((material.width - c) // 2, (material.height - c) // 2, c, c)
        for preset in args.presets.split(","):
            for method in args.methods.split(","):
                cfg = FitConfig(PRESETS[preset], method=method, steps=args.steps,
                                seconds=None if args.steps else args.seconds, seed=args.seed, device=args.device)
                t0 = time.perf_counter()
                data, ct = compress_material(material, cfg)
                wall = time.perf_counter() - t0
                if args.save_dir:
                    args.save_dir.mkdir(parents=True, exist_ok=True)
                    write_atomic(args.save_dir / f"{material.name}_{preset}_{method.replace('+', '_')}.ngtc", data)
                q = ct.info.quality
                row = {"material": material.name, "size": [material.width, material.height], "preset": preset,
                       "method": method, "bits_per_texel": len(data) * 8 / (material.width * material.height),
                       "stored_bytes": len(data), "psnr": q.psnr, "psnr_maps": q.psnr_maps,
                       "steps": ct.info.steps, "train_seconds": ct.info.seconds, "wall_seconds": round(wall, 1),
                       "device": ct.info.device, "torch": torch.__version__}
                results.append(row)
                table.add_row(material.name, preset, method, f"{row['bits_per_texel']:.3f}",
                              *[f"{v:.2f}" for v in (q.psnr + [float("nan")] * 5)[:5]], str(row["steps"]),
                              f"{wall:.0f}")
                console.print(f"{material.name} {preset} {method}: {row['bits_per_texel']:.3f} bpp, "
                              f"PSNR mips 0-4 {', '.join(f'{v:.2f}' for v in q.psnr[:5])} ({wall:.0f} s)")
                write_atomic(args.out, json.dumps({"runs": results}, indent=1).encode())
    console.print(table)
    console.print(f"device: {results[-1]['device'] if results else '-'}, torch {torch.__version__}")
    console.print(f"wrote {args.out}")
    return results


def main(argv: list[str] | None = None) -> None:
    torch.set_num_threads(max(1, torch.get_num_threads()))
    run(parse(argv))


if __name__ == "__main__":
    main()
