"""Which presets move a mip's BD-rate: each neural point of an `ngtc eval` report raised by 1 and 2 dB, one at a
time, then all together, and the BD-rate against the report's anchor curve recomputed (models.metrics.bd_rate).

    python bench/probes_2026-12-05b/bd_sensitivity.py bench/eval120_2t/chest/report.json --mip 0
"""

from __future__ import annotations

import argparse
import json

from models.metrics import bd_rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report")
    ap.add_argument("--mip", type=int, default=0)
    args = ap.parse_args()
    m = json.load(open(args.report))["materials"][0]
    anchor = m["bd_anchor"]
    astc = [(s["bits_per_texel"], s["psnr"][args.mip]) for s in m["settings"]
            if s["codec"] == "astc" and s["curve"] == anchor]
    neural = [(s["bits_per_texel"], s["psnr"][args.mip], s["setting"]) for s in m["settings"] if s["codec"] != "astc"]

    def bd(points: list[tuple[float, float, str]]) -> float:
        return bd_rate([a[0] for a in astc], [a[1] for a in astc], [p[0] for p in points], [p[1] for p in points])

    out = {"report": args.report, "mip": args.mip, "anchor": anchor, "now": round(bd(neural), 1), "raised": {}}
    for name in [n[2] for n in neural] + ["all"]:
        out["raised"][name] = [round(bd([(b, p + d if name in (s, "all") else p, s) for b, p, s in neural]), 1)
                               for d in (1.0, 2.0)]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
