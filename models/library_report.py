"""The library-level report of `ngtc eval` on a library, next to the per-material ones: report.json and report.md
(the distribution of the BD-rate of neural against every ASTC curve per mip over the library: median, worst,
best), rd_library.png (one RD plot with every material), bd_library.png (the distribution) and library.html."""

from __future__ import annotations

import datetime as _dt
import json
import statistics
from pathlib import Path
from typing import Any

from .eval_common import NEURAL, REPORT_MIPS, jsonable, write_file
from .eval_figures import CURVE_COLORS, log_rate_axis, save_figure
from .library import thumb_path
from .library_html import Row, write_page

REPORT_FORMAT = "ngtc-eval-library"
REPORT_VERSION = 1
MATERIAL_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                   "#bcbd22", "#17becf")
LEGEND_MATERIALS = 24  # more than this many materials: no legend entry each


def write_library_report(out: Path, reports: dict[str, dict[str, Any]], failed: dict[str, dict[str, str]],
                         meta: dict[str, Any]) -> dict[str, Any]:
    """Write the library's report.json, report.md, figures and library.html; returns report.json's document.
    `reports`: each material's report (as in its report.json) by name; `failed`: name -> source and reason."""
    doc = summarize(reports, failed, meta)
    if reports:
        rd_library_figure(reports, doc["anchor"], out / "rd_library.png")
        bd_library_figure(doc, out / "bd_library.png")
    write_file(out / "report.json", (json.dumps(jsonable(doc), indent=1, allow_nan=False) + "\n").encode())
    write_file(out / "report.md", render_markdown(doc).encode())
    write_page(out, "NGTC material library: neural codec vs ASTC",
               [f"{len(reports)} materials evaluated, {len(failed)} failed; BD-rate against {doc['anchor']}",
                f"{meta['command']}", f"on {meta['cluster']}; {doc['created']}",
                "bits per texel, PSNR and seconds: the neural preset the comparison images show"],
               [_page_row(m) for m in doc["materials"]] + [Row(f["name"], f["source"], "failed", f["reason"])
                                                          for f in doc["failed"]], ["BD-rate|mip 0 %"])
    return doc


def summarize(reports: dict[str, dict[str, Any]], failed: dict[str, dict[str, str]], meta: dict[str, Any]
              ) -> dict[str, Any]:
    first = next(iter(reports.values()), {})
    curves = [c["curve"] for c in first.get("astc_curves", [])]
    return {
        "format": REPORT_FORMAT, "version": REPORT_VERSION,
        "created": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"), **meta,
        "anchor": first.get("bd_anchor"),
        "bd_rate": [{"curve": c, "mips": distribution(reports, c)} for c in curves],
        "materials": [_material_summary(name, r) for name, r in reports.items()],
        "failed": [{"name": name, **f} for name, f in failed.items()],
    }


def distribution(reports: dict[str, dict[str, Any]], curve: str) -> list[dict[str, Any]]:
    """Per mip, over the materials: the BD-rate of neural against `curve` where it is defined and reliable
    (status ok; the others are counted), with its median, worst (highest) and best (lowest), and which."""
    mips = max((len(c["bd"]) for r in reports.values() for c in r["astc_curves"] if c["curve"] == curve), default=0)
    out = []
    for k in range(mips):
        values, statuses = {}, {}
        for name, r in reports.items():
            bd = next((c["bd"][k] for c in r["astc_curves"] if c["curve"] == curve and k < len(c["bd"])), None)
            if bd is None:
                continue
            statuses[bd["status"]] = statuses.get(bd["status"], 0) + 1
            if bd["status"] == "ok" and bd["bd_rate_percent"] is not None:
                values[name] = bd["bd_rate_percent"]
        worst, best = (max(values, key=values.get), min(values, key=values.get)) if values else (None, None)
        out.append({"mip": k, "materials": len(values), "statuses": statuses,
                    "median": statistics.median(values.values()) if values else None,
                    "worst": values.get(worst), "worst_material": worst, "best": values.get(best),
                    "best_material": best, "values": values})
    return out


def _material_summary(name: str, r: dict[str, Any]) -> dict[str, Any]:
    shown = shown_setting(r)
    return {"name": name, "material": r["name"], "source": r["source"], "report": f"{name}/report.md",
            "rd_plot": f"{name}/{r['rd_plot']}", "compare": [f"{name}/{c['file']}" for c in r["compare"]],
            "bd_rate": [bd["bd_rate_percent"] if bd["status"] == "ok" else None for bd in r["bd"]],
            "bd_status": [bd["status"] for bd in r["bd"]],
            "shown": {"preset": shown["setting"], "bits_per_texel": shown["bits_per_texel"], "psnr": shown["psnr"],
                      "train_seconds": shown.get("train_seconds"), "file": f"{name}/{shown['files'][0]}"},
            "thumbnails": {k: thumb_path(name, k) for k in ("reference", "neural")}}


def _page_row(m: dict[str, Any]) -> Row:
    s = m["shown"]
    links = [("RD plot", m["rd_plot"]), ("report", m["report"]), (".ngtc", s["file"])]
    links += [(" ".join(Path(c).stem.rsplit("_", 2)[-2:]), c) for c in m["compare"]]  # "basecolor mip0"
    return Row(m["name"], m["source"], "ok", None, (m["thumbnails"]["reference"], m["thumbnails"]["neural"]),
               s["bits_per_texel"], s["psnr"], s["train_seconds"], {"BD-rate|mip 0 %": (m["bd_rate"] or [None])[0]},
               links)


def shown_setting(report: dict[str, Any]) -> dict[str, Any]:
    """The neural setting a material's comparison images show (nearest --compare-bpp), or its first."""
    neural = [s for s in report["settings"] if s["codec"] == NEURAL]
    name = report["compare"][0][NEURAL] if report["compare"] else neural[0]["setting"]
    return next(s for s in neural if s["setting"] == name)


# ------------------------------------------------------------------------------------------ figures


def rd_library_figure(reports: dict[str, dict[str, Any]], anchor: str | None, path: Path) -> None:
    """PSNR against bits per texel, one panel per mip 0-4: every material's neural presets (solid) and its
    anchor ASTC curve (dashed), one colour per material."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    fig = Figure(figsize=(15, 9.2), dpi=100)
    axes = fig.subplots(2, 3).ravel()
    mips = min(REPORT_MIPS, max(len(r["bd"]) for r in reports.values()))
    for i, r in enumerate(reports.values()):
        color = MATERIAL_COLORS[i % len(MATERIAL_COLORS)]
        for k, ax in enumerate(axes[:mips]):
            for codec, ls, marker in ((NEURAL, "-", "o"), (anchor, "--", "s")):
                pts = sorted((s["bits_per_texel"], s["psnr"][k]) for s in r["settings"]
                             if (s["codec"] == NEURAL if codec == NEURAL else s.get("curve") == codec)
                             and k < len(s["psnr"]) and s["psnr"][k] is not None)
                ax.plot([p[0] for p in pts], [p[1] for p in pts], ls=ls, marker=marker, color=color, ms=3.5,
                        lw=1.2, alpha=0.9 if codec == NEURAL else 0.55)
    for k, ax in enumerate(axes[:mips]):
        log_rate_axis(ax)
        ax.set_title(f"mip {k}", fontsize=10)
        ax.set_xlabel("bits per texel (all maps, full mip chain)", fontsize=9)
        ax.set_ylabel("PSNR, all channels (dB)", fontsize=9)
        ax.tick_params(labelsize=8)
    for ax in axes[mips:]:
        ax.axis("off")
    handles = [Line2D([], [], color="0.3", ls="-", marker="o", label="neural (.ngtc), presets"),
               Line2D([], [], color="0.3", ls="--", marker="s", label=f"{anchor}, block sizes")]
    if len(reports) <= LEGEND_MATERIALS:
        handles += [Line2D([], [], color=MATERIAL_COLORS[i % len(MATERIAL_COLORS)], lw=3, label=name)
                    for i, name in enumerate(reports)]
    (axes[-1] if mips < len(axes) else axes[0]).legend(handles=handles, loc="upper left", fontsize=8, frameon=False)
    fig.suptitle(f"Every material of the library: neural codec vs {anchor} ({len(reports)} materials)", fontsize=12)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    save_figure(fig, path)


def bd_library_figure(doc: dict[str, Any], path: Path) -> None:
    """The BD-rate of neural against each ASTC curve per mip over the library: a box and every material's value."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 5), dpi=100)
    ax = fig.subplots()
    curves = doc["bd_rate"]
    width = 0.8 / max(1, len(curves))
    for j, c in enumerate(curves):
        color = CURVE_COLORS[j % len(CURVE_COLORS)]
        for d in c["mips"]:
            values = list(d["values"].values())
            x = d["mip"] - 0.4 + width * (j + 0.5)
            if values:
                ax.boxplot([values], positions=[x], widths=width * 0.8, whis=(0, 100), showfliers=False,
                           medianprops={"color": color}, boxprops={"color": color}, whiskerprops={"color": color},
                           capprops={"color": color})
                ax.scatter([x] * len(values), values, s=10, color=color, alpha=0.7, zorder=3)
        ax.plot([], [], color=color, lw=6, label=f"against {c['curve']}")
    mips = max((len(c["mips"]) for c in curves), default=0)
    ax.set_xticks(range(mips), [f"mip {k}" for k in range(mips)])
    ax.axhline(0, color="0.5", lw=0.8)
    ax.set_ylabel("BD-rate of neural (%; < 0: fewer bits than ASTC)")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("BD-rate over the library (materials whose curves overlap reliably)", fontsize=11)
    fig.tight_layout()
    save_figure(fig, path)


# ------------------------------------------------------------------------------------------ markdown


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1f}%"


def render_markdown(doc: dict[str, Any]) -> str:
    lines = ["# Neural texture codec vs ASTC: library report", "",
             f"Generated {doc['created']} on {doc['cluster']} by", "", f"```\n{doc['command']}\n```", "",
             f"{len(doc['materials'])} materials evaluated, {len(doc['failed'])} failed. Each material's own report "
             "(`<material>/report.md`) has its settings, tables, RD plot and comparison images; `library.html` shows "
             "them all.", ""]
    if doc["materials"]:
        lines += ["![every material: neural vs ASTC](rd_library.png)", "",
                  "## BD-rate of neural against each ASTC curve, over the library", "",
                  "PSNR over all channels; negative: neural needs fewer bits. Median, worst and best are over the "
                  "materials whose curves share at least 1 dB (status ok); the others are counted by status.", "",
                  "| ASTC curve | mip | materials | median | worst | best | other statuses |",
                  "| --- | ---: | ---: | ---: | --- | --- | --- |"]
        for c in doc["bd_rate"]:
            for d in c["mips"]:
                others = ", ".join(f"{n} {s}" for s, n in d["statuses"].items() if s != "ok") or "none"
                lines.append(f"| {c['curve']} | {d['mip']} | {d['materials']} | {_pct(d['median'])} | "
                             f"{_pct(d['worst'])} ({d['worst_material'] or '-'}) | {_pct(d['best'])} "
                             f"({d['best_material'] or '-'}) | {others} |")
        lines += ["", "![BD-rate distribution](bd_library.png)", "", f"## Materials (BD-rate against {doc['anchor']})",
                  "", "| material | mip 0 | mip 1 | mip 2 | mip 3 | mip 4 | shown preset | bpp | PSNR mip 0 | report |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | --- |"]
        for m in doc["materials"]:
            rates = [*(_pct(v) for v in m["bd_rate"][:REPORT_MIPS]), *([""] * REPORT_MIPS)][:REPORT_MIPS]
            s = m["shown"]
            lines.append(f"| {m['name']} | {' | '.join(rates)} | {s['preset']} | {s['bits_per_texel']:.3f} | "
                         f"{s['psnr'][0]:.2f} | [{m['report']}]({m['report']}) |")
    if doc["failed"]:
        lines += ["", "## Failed", ""] + [f"- **{f['name']}**: {f['reason']}" for f in doc["failed"]]
    return "\n".join(lines) + "\n"


def summary_lines(doc: dict[str, Any]) -> list[str]:
    """The BD-rate distribution in a few lines, for the console."""
    lines = [f"{len(doc['materials'])} materials evaluated, {len(doc['failed'])} failed"]
    for c in doc["bd_rate"]:
        for d in c["mips"]:
            lines.append(f"BD-rate vs {c['curve']}, mip {d['mip']}: median {_pct(d['median'])}, worst "
                         f"{_pct(d['worst'])} ({d['worst_material'] or '-'}), best {_pct(d['best'])} "
                         f"({d['best_material'] or '-'}) over {d['materials']} materials")
    return lines
