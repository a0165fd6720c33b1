"""`library.html`: a static page (no server, no network) with every material of a library: reference | neural
thumbnails, bits per texel, PSNR per mip, compress time, sortable by any column (click a heading, or open the
page as `library.html#sort=-bpp`), each material linking to its files (`.ngtc`; from `ngtc eval`: its RD plot,
comparison images and report)."""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .atomic import write_atomic

PAGE = "library.html"
MIPS_SHOWN = 5  # PSNR columns: mips 0-4


@dataclass
class Row:
    name: str
    source: str
    status: str  # ok, failed, pending
    reason: str | None = None
    thumbs: tuple[str | None, str | None] = (None, None)  # reference, neural (paths relative to the page)
    bpp: float | None = None
    psnr: Sequence[float | None] = ()
    seconds: float | None = None
    extra: dict[str, float | None] = field(default_factory=dict)  # more numeric columns, e.g. BD-rate
    links: list[tuple[str, str]] = field(default_factory=list)  # (label, path relative to the page)


def write_page(folder: Path, title: str, intro: Sequence[str], rows: Sequence[Row],
               extra_columns: Sequence[str] = ()) -> Path:
    path = folder / PAGE
    write_atomic(path, render(title, intro, rows, extra_columns).encode())
    return path


def write_compress_page(folder: Path, doc: dict[str, Any]) -> Path:
    """The page of an `ngtc compress` library from its library.json document."""
    rows = [compress_row(e) for e in doc["materials"]]
    s = doc["summary"]
    intro = [f"{s['materials']} materials: {s['ok']} ok, {s['failed']} failed, {s['pending']} not done",
             f"settings: {_settings(doc['settings'])}", f"on {doc['cluster']}; updated {doc.get('updated', '')}",
             "RD plots and comparison images: `ngtc eval` of the library"]
    return write_page(folder, "NGTC material library", intro, rows)


def compress_row(e: dict[str, Any]) -> Row:
    thumbs = e.get("thumbnails") or {}
    return Row(e["name"], e.get("source", ""), e["status"], e.get("reason"),
               (thumbs.get("reference"), thumbs.get("neural")), e.get("bits_per_texel"), e.get("psnr") or (),
               e.get("compress_seconds"), links=[(".ngtc", e["file"])] if e.get("file") else [])


def _settings(key: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in key.items() if v not in (None, [], {}, ()))


def _num(value: float | None, fmt: str) -> tuple[str, str]:
    """(shown text, sort key) of a number; missing values sort last whatever the direction (empty key)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "", ""
    return format(value, fmt), repr(float(value))


def _cell(text: str, key: str, cls: str = "num") -> str:
    return f'<td class="{cls}" data-key="{html.escape(key)}">{html.escape(text)}</td>'


def _thumbs(r: Row) -> str:
    if not any(r.thumbs):
        return '<td class="thumbs none">no image</td>'
    pairs = zip(r.thumbs, ("reference", "neural"), strict=True)
    imgs = "".join(f'<img src="{quote(src)}" alt="{label}" title="{label}" loading="lazy">' if src else
                   '<span class="none">none</span>' for src, label in pairs)
    return f'<td class="thumbs"><div>{imgs}</div></td>'


def _row(r: Row, extra_columns: Sequence[str]) -> str:
    name = (f'<td class="name" data-key="{html.escape(r.name.lower())}"><b>{html.escape(r.name)}</b>'
            f'<div class="src">{html.escape(r.source)}</div>'
            + (f'<div class="reason">{html.escape(r.reason)}</div>' if r.reason and r.status != "ok" else "")
            + "</td>")
    psnr = [*r.psnr[:MIPS_SHOWN], *([None] * MIPS_SHOWN)][:MIPS_SHOWN]
    cells = [_cell(*_num(r.bpp, ".3f")), *(_cell(*_num(v, ".2f")) for v in psnr),
             *(_cell(*_num(r.extra.get(c), "+.1f")) for c in extra_columns), _cell(*_num(r.seconds, ".1f")),
             _cell(r.status, r.status, f"status {r.status}")]
    links = " ".join(f'<a href="{quote(href)}">{html.escape(label)}</a>' for label, href in r.links)
    return f'<tr class="{r.status}">{name}{_thumbs(r)}{"".join(cells)}<td class="links">{links}</td></tr>'


def _label(label: str) -> str:
    """A heading, "|" breaking it in two lines to keep the columns narrow."""
    return "<br>".join(html.escape(part) for part in label.split("|"))


def render(title: str, intro: Sequence[str], rows: Sequence[Row], extra_columns: Sequence[str] = ()) -> str:
    heads = [("name", "material", False), ("", "reference | neural", True), ("bpp", "bits per texel", False),
             *((f"psnr{k}", f"PSNR dB|mip {k}", False) for k in range(MIPS_SHOWN)),
             *((re.sub(r"[^a-z0-9]+", "-", c.lower()).strip("-"), c, False) for c in extra_columns),
             ("seconds", "compress|seconds", False), ("status", "status", False), ("", "files", True)]
    th = "".join(f'<th class="fixed">{_label(label)}</th>' if fixed
                 else f'<th data-col="{i}" data-id="{cid}">{_label(label)}</th>'
                 for i, (cid, label, fixed) in enumerate(heads))
    body = "\n".join(_row(r, extra_columns) for r in rows)
    lines = "".join(f"<p>{html.escape(line)}</p>" for line in intro)
    return TEMPLATE.format(title=html.escape(title), intro=lines, head=th, body=body, count=len(rows))


TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; background: #fafafa; }}
h1 {{ font-size: 1.4em; margin: 0 0 .3em; }} p {{ margin: .15em 0; color: #555; }}
table {{ border-collapse: collapse; margin-top: 1em; background: #fff; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 4px 8px; vertical-align: middle; }}
th {{ position: sticky; top: 0; background: #eee; cursor: pointer; user-select: none; font-size: 13px; }}
th.fixed {{ cursor: default; }} th.asc::after {{ content: " \\25B2"; }} th.desc::after {{ content: " \\25BC"; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
td.thumbs div {{ display: flex; gap: 3px; }}
td.thumbs img {{ width: 88px; height: 88px; object-fit: cover; image-rendering: pixelated; border: 1px solid #ccc; }}
.src {{ color: #888; font-size: 11px; max-width: 26em; overflow-wrap: anywhere; }}
.reason {{ color: #b00; font-size: 12px; max-width: 30em; }} .none {{ color: #aaa; font-size: 11px; }}
tr.failed {{ background: #fff3f3; }} tr.pending {{ background: #f6f6f6; color: #777; }}
td.status.ok {{ color: #080; }} td.status.failed {{ color: #b00; }}
td.links a {{ margin-right: .5em; }}
</style></head>
<body data-ready="0">
<h1>{title}</h1>{intro}
<table id="library"><thead><tr>{head}</tr></thead>
<tbody>
{body}
</tbody></table>
<p>{count} materials. Click a heading to sort; <code>#sort=-bpp</code> in the address sorts on opening.</p>
<script>
(function () {{
  const table = document.getElementById("library");
  const heads = Array.from(table.tHead.rows[0].cells);
  function sortBy(col, desc) {{
    const rows = Array.from(table.tBodies[0].rows);
    const key = r => r.cells[col].dataset.key;
    rows.sort((a, b) => {{
      const x = key(a), y = key(b);
      if (x === "" || y === "") return (x === "") - (y === "");  // blanks last either way
      const nx = parseFloat(x), ny = parseFloat(y);
      const c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
      return desc ? -c : c;
    }});
    rows.forEach(r => table.tBodies[0].appendChild(r));
    heads.forEach(h => h.classList.remove("asc", "desc"));
    heads[col].classList.add(desc ? "desc" : "asc");
    table.dataset.sorted = heads[col].dataset.id + (desc ? ":desc" : ":asc");
  }}
  heads.forEach((h, i) => {{
    if (h.dataset.col === undefined) return;
    h.addEventListener("click", () => sortBy(i, h.classList.contains("asc")));
  }});
  const m = /sort=(-?)([\\w-]+)/.exec(location.hash);
  const col = m ? heads.findIndex(h => h.dataset.id === m[2]) : -1;
  if (col >= 0) sortBy(col, m[1] === "-");
  document.body.dataset.ready = "1";
}})();
</script>
</body></html>
"""
