"""BD-rate at mips 0-4 of the hidden-48 A/B: each side's bpp2.4, bpp4 and bpp8 in place of those of the
both-cores run (`bench/eval120_2t/NAME`), the other presets kept.

    python bench/probes_2026-12-04/ab_bd.py
"""

from __future__ import annotations

import json

from models.metrics import bd_rate


def points(path: str) -> tuple[dict[str, tuple[float, list[float]]], list[tuple[float, list[float]]]]:
    settings = json.load(open(path))["materials"][0]["settings"]
    neural = {s["setting"]: (s["bits_per_texel"], s["psnr"][:5]) for s in settings if s["codec"] == "neural"}
    astc = [(s["bits_per_texel"], s["psnr"][:5]) for s in settings if s["codec"] != "neural"]
    return neural, astc


def main() -> None:
    for name in ("rocks", "chest"):
        full, astc = points(f"bench/eval120_2t/{name}/report.json")
        for side in ("base", "h48"):
            neural = {**full, **points(f"bench/ab_h48/{side}_{name}/report.json")[0]}
            row = []
            for mip in range(5):
                a = sorted((r, p[mip]) for r, p in astc)
                n = sorted((r, p[mip]) for r, p in neural.values())
                bd = bd_rate([x for x, _ in a], [y for _, y in a], [x for x, _ in n], [y for _, y in n])
                row.append(round(bd, 2))
            print(name, side, row)


if __name__ == "__main__":
    main()
