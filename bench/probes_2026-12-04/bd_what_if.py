"""A mip's BD-rate of an eval report with one neural preset's PSNR raised, then all of them, the rates kept.

    python bench/probes_2026-12-04/bd_what_if.py bench/eval120_coarsew/chest/report.json --db 1.0 [--mip 1]
"""

from __future__ import annotations

import argparse
import json

from models.metrics import bd_rate


def bd(astc: list[tuple[float, float]], neural: list[tuple[float, float]]) -> float:
    a, n = sorted(astc), sorted(neural)
    return bd_rate([r for r, _ in a], [p for _, p in a], [r for r, _ in n], [p for _, p in n])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report")
    ap.add_argument("--db", type=float, default=1.0, help="dB added to one preset's PSNR at a time")
    ap.add_argument("--mip", type=int, default=0, help="the mip whose BD-rate is recomputed (default 0)")
    args = ap.parse_args()
    settings = json.load(open(args.report))["materials"][0]["settings"]
    astc = [(s["bits_per_texel"], s["psnr"][args.mip]) for s in settings if s["codec"] != "neural"]
    neural = {s["setting"]: (s["bits_per_texel"], s["psnr"][args.mip]) for s in settings if s["codec"] == "neural"}
    print(f"mip {args.mip} as measured: {bd(astc, list(neural.values())):.2f}%")
    for name, (rate, psnr) in neural.items():
        raised = [(rate, psnr + args.db) if k == name else v for k, v in neural.items()]
        print(f"{name} +{args.db} dB: {bd(astc, raised):.2f}%")
    print(f"all +{args.db} dB: {bd(astc, [(r, p + args.db) for r, p in neural.values()]):.2f}%")


if __name__ == "__main__":
    main()
