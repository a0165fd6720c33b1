"""Mip-0 BD-rate of an eval report with one neural preset's mip-0 PSNR raised, the rates kept.

    python bench/probes_2026-12-04/bd_what_if.py bench/eval120_coarsew/chest/report.json --db 1.0
"""

from __future__ import annotations

import argparse
import json

from models.metrics import bd_rate


def mip0_bd(astc: list[tuple[float, float]], neural: list[tuple[float, float]]) -> float:
    a, n = sorted(astc), sorted(neural)
    return bd_rate([r for r, _ in a], [p for _, p in a], [r for r, _ in n], [p for _, p in n])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report")
    ap.add_argument("--db", type=float, default=1.0, help="dB added to one preset's mip-0 PSNR at a time")
    args = ap.parse_args()
    settings = json.load(open(args.report))["materials"][0]["settings"]
    astc = [(s["bits_per_texel"], s["psnr"][0]) for s in settings if s["codec"] != "neural"]
    neural = {s["setting"]: (s["bits_per_texel"], s["psnr"][0]) for s in settings if s["codec"] == "neural"}
    print(f"as measured: {mip0_bd(astc, list(neural.values())):.2f}%")
    for name, (rate, psnr) in neural.items():
        raised = [(rate, psnr + args.db) if k == name else v for k, v in neural.items()]
        print(f"{name} +{args.db} dB: {mip0_bd(astc, raised):.2f}%")


if __name__ == "__main__":
    main()
