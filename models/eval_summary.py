"""One table over several `ngtc eval` reports: where the codec stands against issue 10's targets.

    python -m models.eval_summary bench/eval120_2threads/*/ --out bench/eval120_2threads/summary.json \
        --figure docs/issue10_mip0.png [--mip 0]

Per material: the BD-rate against the report's anchor curve (ASTC medium compact) at mips 0-4, the neural
PSNR at mip 0 per preset (steps in brackets), the top preset against ASTC 6x6 at mip 0, and every point
where a preset does not beat the one below it (per mip: the curve is not monotonic there). With `--figure`, a
picture of the same: each material's neural presets against its anchor curve at one mip, a panel each.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .atomic import write_atomic
from .eval_common import EvalError
from .eval_figures import summary_figure

MIPS = 5
TARGET_MIP0, TARGET_COARSE = -60.0, -80.0  # BD-rate targets (%): mip 0, mips 1-4


def load_reports(paths: list[Path]) -> list[dict[str, Any]]:
    """Every material of the reports at `paths` (a report.json or its folder)."""
    materials = []
    for p in paths:
        path = p / "report.json" if p.is_dir() else p
        try:
            report = json.loads(path.read_text())
            materials += [dict(m, report=str(path)) for m in report["materials"]]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise SystemExit(f"eval_summary: {path}: not an ngtc eval report ({e})") from None
    return materials


def summarize(m: dict[str, Any]) -> dict[str, Any]:
    neural = sorted((s for s in m["settings"] if s["codec"] == "neural"), key=lambda s: s["bits_per_texel"])
    astc6 = next((s for s in m["settings"] if s["codec"] == "astc" and s["setting"].split()[0] == "6x6"), None)
    bd = {b["mip"]: b.get("bd_rate_percent") for b in m["bd"]}
    not_rising = [{"mip": k, "preset": hi["preset"], "below": lo["preset"], "psnr": round(hi["psnr"][k], 2),
                   "psnr_below": round(lo["psnr"][k], 2)}
                  for k in range(MIPS) for lo, hi in zip(neural, neural[1:], strict=False)
                  if k < len(hi["psnr"]) and hi["psnr"][k] <= lo["psnr"][k]]
    top = neural[-1] if neural else None
    return {
        "material": m["name"], "report": m["report"], "anchor": m.get("bd_anchor"),
        "bd_rate_percent": [bd.get(k) for k in range(MIPS)],
        "mip0": [{"preset": s["preset"], "bpp": round(s["bits_per_texel"], 3), "psnr": round(s["psnr"][0], 2),
                  "steps": s.get("steps")} for s in neural],
        "top_vs_astc_6x6": None if not (top and astc6) else
        {"top": round(top["psnr"][0], 2), "astc_6x6": round(astc6["psnr"][0], 2)},
        "not_rising": not_rising,
    }


def _bd(x: float | None, target: float) -> str:
    return "n/a" if x is None else f"{x:+.1f}{'' if x <= target else '*'}"


def render(rows: list[dict[str, Any]]) -> str:
    lines = ["BD-rate (%) vs the anchor at mips 0-4 (* misses the target: mip 0 <= -60, mips 1-4 <= -80)", ""]
    for r in rows:
        bd = r["bd_rate_percent"]
        cells = [_bd(bd[0], TARGET_MIP0)] + [_bd(x, TARGET_COARSE) for x in bd[1:]]
        lines.append(f"{r['material']:<28} " + " ".join(f"{c:>7}" for c in cells))
    lines += ["", "Mip-0 PSNR per preset (steps)", ""]
    for r in rows:
        pts = ", ".join(f"{p['preset']} {p['psnr']:.2f} ({p['steps']})" for p in r["mip0"])
        top = r["top_vs_astc_6x6"]
        vs = "" if top is None else f"; top {top['top']:.2f} vs ASTC 6x6 {top['astc_6x6']:.2f}"
        lines.append(f"{r['material']}: {pts}{vs}")
    lines += ["", "Not rising (a preset at or under the one below it)", ""]
    for r in rows:
        pts = "; ".join(f"mip {p['mip']} {p['preset']} {p['psnr']:.2f} <= {p['below']} {p['psnr_below']:.2f}"
                        for p in r["not_rising"])
        lines.append(f"{r['material']}: {pts or 'none'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("reports", nargs="+", type=Path, help="report.json files or the folders holding them")
    p.add_argument("--out", type=Path, help="write the summary as JSON here too")
    p.add_argument("--figure", type=Path, help="draw every material's curves at --mip into this PNG")
    p.add_argument("--mip", type=int, default=0, choices=range(MIPS), help="the figure's mip (default 0)")
    args = p.parse_args(argv)
    materials = load_reports(args.reports)
    rows = [summarize(m) for m in materials]
    print(render(rows))
    if args.out:
        write_atomic(args.out, json.dumps(rows, indent=1).encode())
    if args.figure:
        try:
            summary_figure(materials, args.mip, TARGET_MIP0 if args.mip == 0 else TARGET_COARSE, args.figure)
        except EvalError as e:
            raise SystemExit(f"eval_summary: {e}") from None
    return 0


if __name__ == "__main__":
    sys.exit(main())
