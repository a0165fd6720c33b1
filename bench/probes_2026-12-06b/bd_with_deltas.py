"""Every mip's BD-rate of an eval report (ASTC medium, compact packing) with some neural presets moved: their rate and
PSNR per mip shifted by measured deltas (e.g. fixed-step gains of a probe), the rest as measured.

    PYTHONPATH=. python bench/probes_2026-12-06b/bd_with_deltas.py bench/eval120_pairs/chest_full/report.json \
        '{"bpp12": [0.25, [-0.04, 0.31, 0.42, 0.73, 0.75]]}'
"""

from __future__ import annotations

import json
import sys

from models.metrics import bd_rate


def bd(astc: list, neural: dict, mip: int) -> float:
    return bd_rate([r for r, _ in astc], [p[mip] for _, p in astc],
                   [r for r, _ in neural.values()], [p[mip] for _, p in neural.values()])


def main() -> None:
    report, deltas = sys.argv[1], json.loads(sys.argv[2])
    settings = json.load(open(report))["materials"][0]["settings"]
    astc = [(s["bits_per_texel"], s["psnr"]) for s in settings
            if s["codec"] == "astc" and "medium" in s["label"] and "compact" in s["label"]]
    neural = {s["setting"]: (s["bits_per_texel"], list(s["psnr"])) for s in settings if s["codec"] == "neural"}
    moved = {}
    for name, (rate, psnr) in neural.items():
        d_rate, d_psnr = deltas.get(name, (0.0, []))
        d_psnr = list(d_psnr) + [0.0] * (len(psnr) - len(d_psnr))
        moved[name] = (rate + d_rate, [p + d for p, d in zip(psnr, d_psnr, strict=True)])
    print("BD-rate per mip, as measured -> moved:")
    print("  ".join(f"mip {m} {bd(astc, neural, m):.2f} -> {bd(astc, moved, m):.2f}" for m in range(5)))


if __name__ == "__main__":
    main()
