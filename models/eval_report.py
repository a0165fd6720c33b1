"""The report of `ngtc eval` as text: report.md, and the summary table printed at the end of a run."""

from __future__ import annotations

from typing import Any

from . import astc
from .eval_common import ASTC, BARELY_DB, FLIP_MIPS, NEURAL, REPORT_MIPS, curve_label


def _f(v, fmt: str = ".2f", none: str = "n/a") -> str:
    return none if v is None else format(v, fmt)


def _per_mip(values, fmt: str, count: int) -> str:
    return " · ".join(_f(v, fmt) for v in (values or [])[:count])


def render_markdown(report: dict[str, Any]) -> str:
    env, st = report["environment"], report["settings"]
    budget = f"{st['steps']} steps" if st["steps"] else f"{st['seconds']:g} s"
    lines = [
        "# Neural texture codec vs ASTC: rate-distortion report", "",
        f"Generated {report['created']} in {report.get('wall_seconds', 0):.0f} s by", "",
        f"```\n{report['command']}\n```", "",
        f"- **Versions**: python {env['python']}, torch {env['torch']}, astc-encoder-py {env['astc-encoder-py']}, "
        f"numpy {env['numpy']}, scikit-image {env['scikit-image']}, flip-evaluator {env['flip-evaluator']}, "
        f"bjontegaard {env['bjontegaard']}, matplotlib {env['matplotlib']}",
        f"- **Machine**: {env['platform']}; neural training/decoding device: {env['device']}",
        f"- **Neural**: presets {', '.join(st['presets'])}; method {st['method']}; budget {budget} per preset; "
        f"seed {st['seed']}; batch {st['batch'] or 'default'}"
        + ("" if st["steps"] else " (a time budget: rerun with --steps for bit-exact results)"),
        f"- **ASTC**: blocks {', '.join(st['blocks'])}; astcenc presets {', '.join(st['qualities'])}; packings "
        f"{', '.join(st['packings'])} (compact: color, normal in astcenc's normal mode, scalars in `orm`; fewest: "
        "as few RGBA textures as whole maps fit in, e.g. basecolor + roughness and normal XY + height); one curve "
        f"per preset and packing, the BD anchor `bd` is the first ({curve_label(st['qualities'][0], st['packings'][0])}"
        "); LDR profile, unorm8 input, every mip encoded from the reference chain",
        f"- **Materials**: {', '.join(m['name'] for m in report['materials'])}"
        + (f" (centred {st['crop']} px crop)" if st["crop"] else ""), "",
        "**How to read it.** Rate: bits per texel of the whole set (all non-constant maps, full mip chain) over "
        "the mip-0 texel count, from the stored bytes: the `.ngtc` file size for the neural codec, the ASTC block "
        "bytes (128 bits per block, headers excluded) of every texture and mip for ASTC. Quality is measured on "
        "the decoded files against the material's reference mip chain, channels as stored (base color "
        "sRGB-encoded, normals as XY in [0, 1]): PSNR with peak 1.0; SSIM (data range 1, a map's channels as "
        "the channel axis); FLIP (LDR) on the base color. BD-rate: the average rate difference of the neural "
        "codec against ASTC (anchor) at equal PSNR over all channels, over the PSNR interval both curves share "
        "(piecewise cubic interpolation in log rate; negative = the neural codec needs fewer bits). It is only "
        f"defined on that shared interval; below {BARELY_DB:g} dB of overlap it is flagged unreliable and the "
        "rates each codec needs at fixed PSNR values (interpolated on each curve in log rate) are the better "
        "comparison. BD-PSNR: the average PSNR difference over the shared rate interval.", "",
    ]
    for m in report["materials"]:
        lines += _material_md(m)
    return "\n".join(lines) + "\n"


def _material_md(m: dict[str, Any]) -> list[str]:
    present = [x for x in m["maps"] if x.get("constant") is None]
    const = [x["name"] for x in m["maps"] if x.get("constant") is not None]
    crop = f", centred crop at ({m['crop'][0]}, {m['crop'][1]})" if m["crop"] else ""
    lines = [
        f"## {m['name']}", "",
        f"`{m['source']}`: {m['size'][0]}x{m['size'][1]}{crop}, {m['mips']} mips, {m['channels']} channels "
        f"({', '.join(x['name'] + ' ' + str(x['channels']) for x in present)})"
        + (f"; constant, not encoded: {', '.join(const)}" if const else ""), "",
        f"![rate-distortion of {m['name']}]({m['rd_plot']})", "",
    ]
    curves = m["astc_curves"]
    if len(curves) > 1:
        mips = [bd["mip"] for bd in curves[0]["bd"]]
        lines += ["### BD-rate of neural against each ASTC curve (PSNR over all channels; BD-PSNR in brackets)", "",
                  "| ASTC curve | textures | encode s | " + " | ".join(f"mip {k}" for k in mips) + " |",
                  "| --- | ---: | ---: |" + " ---: |" * len(mips)]
        for c in curves:
            cells = []
            for bd in c["bd"]:
                cell = _f(bd["bd_rate_percent"], "+.1f") + ("%" if bd["bd_rate_percent"] is not None else "")
                cell += f" ({_f(bd['bd_psnr_db'], '+.2f')} dB)" if bd["bd_psnr_db"] is not None else ""
                cells.append(cell + (" (unreliable)" if bd["status"] == "barely overlap" else ""))
            lines.append(f"| {c['curve']} | {c['textures']} | {_f(c['encode_seconds'], '.1f')} | "
                         + " | ".join(cells) + " |")
        lines.append("")
    lines += ["### BD-rate of neural against ASTC: shared intervals per curve (PSNR over all channels)", "",
              "| ASTC curve | mip | shared PSNR interval | BD-rate | BD-PSNR | shared rate interval | PSNR overlap |",
              "| --- | ---: | --- | ---: | ---: | --- | --- |"]
    for c in curves:
        for bd in c["bd"]:
            pi, ri = bd["psnr_interval"], bd["rate_interval"]
            pis = f"{pi[0]:.2f}-{pi[1]:.2f} dB ({bd['psnr_overlap_db']:.2f} dB)" if pi else "none"
            ris = f"{ri[0]:.3g}-{ri[1]:.3g} bpp" if ri and ri[1] > ri[0] else "none"
            rate = _f(bd["bd_rate_percent"], "+.1f") + ("%" if bd["bd_rate_percent"] is not None else "")
            if bd["status"] == "barely overlap" and bd["bd_rate_percent"] is not None:
                rate += " (unreliable)"
            dpsnr = _f(bd["bd_psnr_db"], "+.2f") + (" dB" if bd["bd_psnr_db"] is not None else "")
            lines.append(f"| {c['curve']} | {bd['mip']} | {pis} | {rate} | {dpsnr} | {ris} | {bd['status']} |")
    lines.append("")
    for c in curves:
        for bd in c["bd"]:
            if bd["status"] != "ok":
                lines.append(f"- {c['curve']}, mip {bd['mip']}: {bd['note']}.")
    lines += ["", "### Rate each codec needs at fixed PSNR (all channels; n/a: outside that curve's range)", "",
              "| ASTC curve | mip | PSNR | neural bpp | ASTC bpp | neural / ASTC |",
              "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for c in curves:
        for bd in c["bd"]:
            for row in bd["rate_at_psnr"]:
                lines.append(f"| {c['curve']} | {bd['mip']} | {row['psnr']:g} dB | {_f(row[NEURAL], '.3f')} | "
                             f"{_f(row[ASTC], '.3f')} | {_f(row['ratio'], '.2f')} |")
    lines += ["", "### Settings: rate and PSNR over all channels (dB)", "",
              "| codec | setting | bits per texel | stored bytes | mip 0 | mip 1 | mip 2 | mip 3 | mip 4 | made in |",
              "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for s in m["settings"]:
        ps = [*(_f(v) for v in s["psnr"][:REPORT_MIPS]), *([""] * REPORT_MIPS)][:REPORT_MIPS]
        if s["codec"] == NEURAL:
            made = f"{s['steps']} steps, {s['train_seconds']} s on {s['device']}"
        else:
            made = f"{s['encode_seconds']} s"
        made += " (reused)" if s["reused"] else ""
        lines.append(f"| {s['codec']} | {_setting_name(s)} | {s['bits_per_texel']:.4f} | {s['stored_bytes']:,} | "
                     f"{' | '.join(ps)} | {made} |")
    names = [x["name"] for x in present]
    for title, field, fmt, count in (
        ("PSNR per map (dB), mips 0 · 1 · 2 · 3 · 4", "psnr_maps", ".2f", REPORT_MIPS),
        ("SSIM per map, mips 0 · 1 · 2 · 3 · 4", "ssim_maps", ".4f", REPORT_MIPS),
    ):
        lines += ["", f"### {title}", "", "| codec | setting | bpp | " + " | ".join(names) + " |",
                  "| --- | --- | ---: |" + " --- |" * len(names)]
        for s in m["settings"]:
            cells = [_per_mip(s[field].get(n), fmt, count) for n in names]
            lines.append(f"| {s['codec']} | {_setting_name(s)} | {s['bits_per_texel']:.3f} | " + " | ".join(cells)
                         + " |")
    if any(s.get("flip_basecolor") for s in m["settings"]):
        lines += ["", "### FLIP of the base color (LDR, sRGB as stored; 0 = identical), mips 0 · 1 · 2", "",
                  "| codec | setting | bpp | FLIP |", "| --- | --- | ---: | --- |"]
        for s in m["settings"]:
            lines.append(f"| {s['codec']} | {_setting_name(s)} | {s['bits_per_texel']:.3f} | "
                         f"{_per_mip(s.get('flip_basecolor'), '.4f', FLIP_MIPS)} |")
    if m["compare"]:
        c0 = m["compare"][0]
        lines += ["", f"### Side by side near {m['compare_bpp']:g} bpp: ASTC {c0[ASTC]} ({m['bd_anchor']}), "
                  f"neural {c0[NEURAL]}", "",
                  "Reference, ASTC, neural, and both absolute errors magnified (max over a map's channels).", ""]
        for c in m["compare"]:
            lines += [f"**{c['map']}, mip {c['mip']}**", "", f"![{c['map']} mip {c['mip']}]({c['file']})", ""]
    folders = [f"`astc/{m['id']}/<block>_{c['quality']}" + ("" if c["packing"] == astc.LEGACY_PACKING
                                                            else f"_{c['packing']}") + "/`" for c in curves]
    lines += ["", "Files: `.ngtc` in `ngtc/`"
              + (f", ASTC textures in {', '.join(folders)} (each with its `manifest.json`, which names the packing)"
                 if folders else "") + ".", ""]
    return lines


def _setting_name(s: dict[str, Any]) -> str:
    """A setting as the tables name it: the neural preset, or ASTC's block size, preset and packing."""
    if s["codec"] != ASTC:
        return s["setting"]
    return " ".join(str(v) for v in (s["setting"], s.get("quality"), s.get("packing")) if v)


def summary_table(report: dict[str, Any]):
    """BD of neural against the anchor ASTC curve (intervals, status), and the BD-rate against every other curve."""
    from rich.table import Table

    first = report["materials"][0] if report["materials"] else {}
    anchor = first.get("bd_anchor") or "ASTC"
    others = [c["curve"] for c in first.get("astc_curves", [])[1:]]
    t = Table("material", "mip", "shared PSNR", "BD-rate", "BD-PSNR", "PSNR overlap",
              *(f"BD-rate vs {c.removeprefix('ASTC ')}" for c in others),
              title=f"neural against {anchor} (PSNR over all channels)"
              + (", and against the other ASTC curves" if others else ""), title_justify="left")
    pct = lambda v: _f(v, "+.1f") + ("%" if v is not None else "")  # noqa: E731
    for m in report["materials"]:
        curves = {c["curve"]: c["bd"] for c in m.get("astc_curves", [])}
        for k, bd in enumerate(m["bd"]):
            pi = bd["psnr_interval"]
            extra = [pct(curves[c][k]["bd_rate_percent"])
                     + (" (unreliable)" if curves[c][k]["status"] == "barely overlap" else "") if c in curves else ""
                     for c in others]
            t.add_row(m["name"], str(bd["mip"]), f"{pi[0]:.2f}-{pi[1]:.2f} dB" if pi else "none",
                      pct(bd["bd_rate_percent"]),
                      _f(bd["bd_psnr_db"], "+.2f") + (" dB" if bd["bd_psnr_db"] is not None else ""), bd["status"],
                      *extra)
    return t
