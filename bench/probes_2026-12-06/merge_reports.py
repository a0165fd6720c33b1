"""One material's `ngtc eval` report with some presets taken from a later run, its BD-rates recomputed.

    python bench/probes_2026-12-06/merge_reports.py BASE/report.json NEW/report.json --out MERGED/report.json \
        [--presets bpp2.4,bpp4]

NEW (a run of `--presets` only, against the same ASTC curves) replaces BASE's settings of the same presets (or of
those `--presets` names only); the
BD-rate against the anchor curve is recomputed at mips 0-4 (`models.evaluate.bd_summary`), so that
`python -m models.eval_summary MERGED/report.json` sums it up as it does a whole run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from models.atomic import write_atomic
from models.eval_common import jsonable
from models.evaluate import bd_summary

MIPS = 5


def merge(base: dict, new: dict, base_path: str, new_path: str, presets: set[str] | None = None) -> dict:
    (m,), (n,) = base["materials"], new["materials"]
    if m["fingerprint"] != n["fingerprint"]:
        raise SystemExit("merge_reports: the reports are of different materials")
    fresh = {s["setting"]: s for s in n["settings"]
             if s["codec"] == "neural" and (presets is None or s["setting"] in presets)}
    m["settings"] = [fresh.get(s["setting"], s) if s["codec"] == "neural" else s for s in m["settings"]]
    neural = [s for s in m["settings"] if s["codec"] == "neural"]
    astc = [s for s in m["settings"] if s["codec"] == "astc" and s["curve"] == m["bd_anchor"]]
    m["bd"] = [{"mip": k, **bd_summary([(s["bits_per_texel"], s["psnr"][k]) for s in neural],
                                       [(s["bits_per_texel"], s["psnr"][k]) for s in astc])} for k in range(MIPS)]
    base["merged"] = {"base": base_path, "presets_from": new_path, "presets": sorted(fresh)}
    return base


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("base", type=Path)
    p.add_argument("new", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--presets", help="comma-separated: take only these of NEW's presets")
    a = p.parse_args()
    merged = merge(json.loads(a.base.read_text()), json.loads(a.new.read_text()), str(a.base), str(a.new),
                   set(a.presets.split(",")) if a.presets else None)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(a.out, json.dumps(jsonable(merged), indent=1).encode())
    for b in merged["materials"][0]["bd"]:
        print(f"mip {b['mip']}: {b['bd_rate_percent']:+.1f}% ({b['note']})")


if __name__ == "__main__":
    main()
