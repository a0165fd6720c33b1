"""The figures of `ngtc eval`: the rate-distortion plot (one panel per mip) and the side-by-side comparisons."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import numpy as np

from .eval_common import ASTC, NEURAL, REPORT_MIPS, Setting, curve_of, write_file
from .layout import MapInfo, map_slice
from .material import Material, reconstruct_normal_z

COMPARE_CROP = 256  # compare images show the centre of a mip, at most this many texels a side
COLORS = {NEURAL: "#d62728", ASTC: "#1f77b4"}
# ASTC curves: a colour per (quality, packing) in the order they are drawn; line style by packing, marker by quality
CURVE_COLORS = ("#1f77b4", "#17becf", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22")
PACKING_STYLES = {"compact": "-", "fewest": "--"}
QUALITY_MARKERS = {"fastest": "v", "fast": "^", "medium": "s", "thorough": "D", "verythorough": "P", "exhaustive": "*"}


def save_figure(fig, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi)
    write_file(path, buf.getvalue())


def _fmt_bpp(x: float, _pos=None) -> str:
    return f"{x:g}" if x >= 0.1 else f"{x:.2g}"


def log_rate_axis(ax) -> None:
    """Bits per texel on a log x axis, ticks at 1, 2, 5 x 10^k (every RD plot: a material's, the library's)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(_fmt_bpp))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.grid(True, which="major", alpha=0.35)


def curve_style(index: int, quality: str, packing: str) -> dict[str, Any]:
    """Colour (by curve), line style (by packing) and marker (by quality) of the `index`-th ASTC curve."""
    return {"color": CURVE_COLORS[index % len(CURVE_COLORS)], "ls": PACKING_STYLES.get(packing, ":"),
            "marker": QUALITY_MARKERS.get(quality, "s")}


def rd_figure(name: str, settings: list[Setting], curves: list[dict], mips: int, path: Path) -> None:
    """PSNR vs bits per texel, one panel per mip 0-4: the neural presets and one curve per ASTC quality x packing
    (labelled "ASTC medium compact"...); the PSNR interval shared with the anchor curve (the first) shaded; the
    last panel lists the BD-rate of neural against every curve."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    fig = Figure(figsize=(15, 9.2), dpi=100)
    axes = fig.subplots(2, 3).ravel()
    shown = min(mips, REPORT_MIPS)
    first_quality = curves[0]["quality"] if curves else None
    lines_spec = [(NEURAL, {"color": COLORS[NEURAL], "ls": "-", "marker": "o"}, True)]
    for i, c in enumerate(curves):  # block sizes written next to the points of the first quality's curves only
        lines_spec.append((c["curve"], curve_style(i, c["quality"], c["packing"]), c["quality"] == first_quality))
    for k, ax in enumerate(axes[:shown]):
        for curve, style, annotate in lines_spec:
            pts = sorted((s.bits_per_texel, s.quality["psnr"][k], s.name) for s in settings if curve_of(s) == curve)
            pts = [p for p in pts if math.isfinite(p[1])]
            if not pts:
                continue
            ax.plot([p[0] for p in pts], [p[1] for p in pts], lw=1.6 if curve == NEURAL else 1.3, ms=5, **style)
            if annotate:
                for r, p, label in pts:
                    ax.annotate(label, (r, p), textcoords="offset points", xytext=(4, 5 if curve == NEURAL else -11),
                                fontsize=7, color=style["color"])
        bd = curves[0]["bd"][k] if curves else None
        if bd and bd["psnr_interval"] and bd["psnr_overlap_db"] > 0:
            ax.axhspan(*bd["psnr_interval"], color="0.85", alpha=0.6, lw=0)
        log_rate_axis(ax)
        ax.grid(True, which="minor", alpha=0.12)
        if bd:
            verdict = "" if bd["status"] == "ok" else f" ({bd['status']})"
            anchor = f"\nvs {curves[0]['curve']}" if len(curves) > 1 else ""
            ax.set_title(f"mip {k}: {_bd_short(bd)}{verdict}{anchor}", fontsize=10)
        ax.set_xlabel("bits per texel (all maps, full mip chain)", fontsize=9)
        ax.set_ylabel(f"PSNR mip {k}, all channels (dB)", fontsize=9)
        ax.tick_params(labelsize=8)
        ax.margins(x=0.12, y=0.1)
    for ax in axes[shown:]:
        ax.axis("off")
    handles = [Line2D([], [], label="neural (.ngtc), presets", **lines_spec[0][1])]
    handles += [Line2D([], [], label=f"{curve}, block sizes", **style) for curve, style, _ in lines_spec[1:]]
    handles.append(Patch(color="0.85", alpha=0.6, label="PSNR interval shared with "
                         + (curves[0]["curve"] if curves else "ASTC") + " (BD-rate domain)"))
    if shown < len(axes):
        axes[-1].legend(handles=handles, loc="upper left", fontsize=8, frameon=False)
        text = ["BD-rate of neural against each ASTC curve", "(PSNR over all channels; < 0: neural needs fewer bits)",
                "", f"{'':16s}" + "".join(f"{f'mip {k}':>10s}" for k in range(shown))]
        for c in curves:
            cells = []
            for bd in c["bd"][:shown]:
                rate = bd["bd_rate_percent"]
                ok = rate is not None and math.isfinite(rate)
                cells.append(f"{rate:+.1f}%{'?' if bd['status'] != 'ok' else ''}" if ok else "n/a")
            text.append(f"{c['curve'].removeprefix('ASTC ')[:16]:16s}" + "".join(f"{x:>10s}" for x in cells))
        text += ["", "?: the curves barely overlap (unreliable)"]
        axes[-1].text(0.0, 0.0, "\n".join(text), va="bottom", ha="left", family="monospace", fontsize=8,
                      transform=axes[-1].transAxes)
    else:
        axes[0].legend(handles=handles, fontsize=7, loc="best")
    fig.suptitle(f"{name}: rate-distortion, neural codec vs ASTC (decoded from the stored files)", fontsize=12)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    save_figure(fig, path)


def _bd_short(bd: dict) -> str:
    rate, dpsnr = bd["bd_rate_percent"], bd["bd_psnr_db"]
    rate_s = f"BD-rate {rate:+.1f}%" if rate is not None and math.isfinite(rate) else "BD-rate n/a"
    psnr_s = f"BD-PSNR {dpsnr:+.2f} dB" if dpsnr is not None and math.isfinite(dpsnr) else "BD-PSNR n/a"
    return f"{rate_s}, {psnr_s}"


def display_map(data: np.ndarray, name: str) -> np.ndarray:
    """A map's channels as something to look at: normals with Z, 1 channel gray, 2 channels + zero blue."""
    c = data.shape[-1]
    if name == "normal" and c == 2:
        return np.concatenate([data, reconstruct_normal_z(data)[..., None]], axis=-1)
    if c == 1:
        return np.repeat(data, 3, axis=-1)
    if c == 2:
        return np.concatenate([data, np.zeros_like(data[..., :1])], axis=-1)
    return data[..., :3]


def _panel_title(s: Setting, name: str, k: int) -> str:
    value = s.quality["psnr_maps"][name][k]
    return f"{s.label}\n{s.bits_per_texel:.3f} bpp; {name} PSNR {value:.2f} dB (whole mip {k})"


def compare_figure(material: Material, ref: np.ndarray, info: MapInfo, k: int, a: Setting, n: Setting,
                   da: np.ndarray, dn: np.ndarray, path: Path) -> dict[str, Any]:
    """reference | ASTC | neural | |ASTC - ref| | |neural - ref| of one map at mip k (a centre crop at most
    COMPARE_CROP texels a side, shown with nearest-neighbour magnification); returns what it shows."""
    from matplotlib.figure import Figure

    s = map_slice(info)
    h, w = ref.shape[:2]
    ch, cw = min(h, COMPARE_CROP), min(w, COMPARE_CROP)
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    win = (slice(y0, y0 + ch), slice(x0, x0 + cw), s)
    r, ia, ineu = ref[win], da[win], dn[win]
    err_a, err_n = np.abs(ia - r).max(axis=-1), np.abs(ineu - r).max(axis=-1)
    p99 = max(float(np.percentile(err_a, 99.5)), float(np.percentile(err_n, 99.5)), 1e-6)
    gain = int(min(64, max(1, 2 ** math.floor(math.log2(0.9 / p99)))))
    scale = max(1, round(384 / max(ch, cw)))
    pw, ph = cw * scale, ch * scale
    font = max(9.0, min(13.0, pw / 40))  # points at 100 dpi: readable next to 384-512 px panels
    pad, title_h, head_h, gap = 12, round(3.3 * font) + 8, round(2.6 * font) + 8, 10
    panels = [
        ("reference", display_map(r, info.name), None),
        (_panel_title(a, info.name, k), display_map(ia, info.name), None),
        (_panel_title(n, info.name, k), display_map(ineu, info.name), None),
        (f"|ASTC - reference| x{gain}\n(max over channels)", None, err_a),
        (f"|neural - reference| x{gain}\n(max over channels)", None, err_n),
    ]
    width = len(panels) * pw + (len(panels) - 1) * gap + 2 * pad
    height = head_h + title_h + ph + pad
    fig = Figure(figsize=(width / 100, height / 100), dpi=100)
    full = f"{w}x{h}" if (cw, ch) == (w, h) else f"centre {cw}x{ch} of {w}x{h}"
    fig.text(pad / width, 1 - 8 / height, f"{material.name}: {info.name} ({info.color_space}, "
             f"{info.channels} ch{', Z reconstructed' if info.name == 'normal' else ''}), mip {k}, {full}, "
             f"shown x{scale}", va="top", ha="left", fontsize=font + 2, weight="bold")
    for i, (title, img, err) in enumerate(panels):
        left = pad + i * (pw + gap)
        ax = fig.add_axes((left / width, pad / height, pw / width, ph / height))
        if img is not None:
            ax.imshow(np.clip(img, 0, 1), interpolation="nearest", vmin=0, vmax=1)
        else:
            ax.imshow(np.clip(err * gain, 0, 1), cmap="magma", interpolation="nearest", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title, fontsize=font, loc="left")
    save_figure(fig, path)
    return {"map": info.name, "mip": k, "file": path.name, ASTC: a.name, NEURAL: n.name, "diff_gain": gain,
            "window": [x0, y0, cw, ch]}


def summary_figure(materials: list[dict[str, Any]], mip: int, target: float, path: Path) -> None:
    """Several `ngtc eval` reports' materials at one mip, a panel each: the neural presets against the report's
    anchor ASTC curve, the PSNR interval their BD-rate is measured on shaded, the BD-rate and the target in the
    title (red where it is missed). `materials`: the reports' JSON, as `models.eval_summary` loads them."""
    from matplotlib.figure import Figure
    cols = min(4, len(materials))
    rows = math.ceil(len(materials) / cols)
    fig = Figure(figsize=(4.2 * cols, 3.6 * rows), dpi=100, layout="constrained")  # room for the two-line title
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, m in zip(axes, materials, strict=False):
        anchor = m.get("bd_anchor")
        curves = ((NEURAL, [s for s in m["settings"] if s["codec"] == "neural"], COLORS[NEURAL], "o"),
                  (anchor, [s for s in m["settings"] if s["codec"] == "astc" and s.get("curve") == anchor],
                   COLORS[ASTC], "s"))
        for label, settings, color, marker in curves:
            pts = sorted((s["bits_per_texel"], s["psnr"][mip], s["setting"]) for s in settings
                         if mip < len(s["psnr"]) and math.isfinite(s["psnr"][mip]))
            ax.plot([p[0] for p in pts], [p[1] for p in pts], color=color, marker=marker, ms=4, lw=1.4, label=label)
            for r, p, name in pts:
                ax.annotate(name, (r, p), textcoords="offset points", xytext=(3, 4 if label == NEURAL else -10),
                            fontsize=6, color=color)
        bd = next((b for b in m["bd"] if b["mip"] == mip), None)
        if bd and bd.get("psnr_interval") and (bd.get("psnr_overlap_db") or 0) > 0:
            ax.axhspan(*bd["psnr_interval"], color="0.85", alpha=0.6, lw=0)
        verdict, missed = summary_verdict(bd, target)
        ax.set_title(f"{m['name']}\n{verdict} (target {target:+.0f}%)", fontsize=9,
                     color="#b00000" if missed else "black")
        log_rate_axis(ax)
        ax.set_xlabel("bits per texel", fontsize=8)
        ax.set_ylabel(f"PSNR mip {mip} (dB)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.margins(x=0.1, y=0.1)
    for ax in axes[len(materials):]:
        ax.axis("off")
    axes[0].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"Mip {mip}: the neural presets against ASTC\nBD-rate over the shaded PSNR interval", fontsize=10)
    save_figure(fig, path)


def summary_verdict(bd: dict | None, target: float) -> tuple[str, bool]:
    """A panel's title line and whether it misses the target: the BD-rate, or where the curves share no PSNR
    interval, whether every neural preset is above every ASTC setting there (a lead no BD-rate can measure)."""
    rate = None if bd is None else bd.get("bd_rate_percent")
    if rate is not None and math.isfinite(rate):
        return f"BD-rate {rate:+.1f}%", rate > target
    neural, astc = (bd or {}).get("neural_psnr_range"), (bd or {}).get("astc_psnr_range")
    if neural and astc and neural[0] > astc[1]:
        return "every preset above ASTC", False
    return "BD-rate n/a", True
