"""The panel's Library section (`ngtc view LIBRARY_DIR`): the gallery on/off and its order, and a searchable list
of the materials; choosing one shows it in the normal view. Materials that cannot be shown are listed in red with
their reason."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from imgui_bundle import imgui

from .gallery import SORTS
from .library_index import Entry, summary

if TYPE_CHECKING:
    from .app import Viewer

ERROR_COLOR = (1.0, 0.35, 0.3, 1.0)
LIST_ROWS = 10


def _psnr(value: float | None) -> str:
    return "" if value is None else "lossless" if math.isinf(value) else f"{value:.1f} dB"


def library_section(v: Viewer) -> None:
    lib = v.library
    if lib is None:
        return
    failed = sum(bool(e.error) for e in lib.entries)
    imgui.text(f"{lib.path.name}: {len(lib.entries)} materials" + (f", {failed} not shown" if failed else ""))
    _, lib.gallery = imgui.checkbox("gallery (G)", lib.gallery)
    imgui.same_line()
    keys = list(SORTS)
    imgui.set_next_item_width(-1)
    changed, i = imgui.combo("##sort", keys.index(lib.sort), [f"sort: {SORTS[k]}" for k in keys])
    if changed:
        lib.sort = keys[i]
    imgui.set_next_item_width(-1)
    _, lib.filter = imgui.input_text_with_hint("##filter", "search materials", lib.filter)
    mode = v.state.mode_a
    cells = {c.entry.name: c for c in lib.cells}
    listed = [c.entry for c in lib.order(mode)] + [e for e in lib.entries if e.error and lib.shown(e)]
    rows = min(max(len(listed), 1), LIST_ROWS)
    if imgui.begin_list_box("##materials", imgui.ImVec2(-1, rows * imgui.get_text_line_height_with_spacing() + 6)):
        for entry in listed:
            _row(v, entry, cells[entry.name].psnr(mode) if not entry.error else None)
        imgui.end_list_box()
    if lib.log.errors:
        imgui.push_text_wrap_pos(0.0)
        for message in lib.log.errors:
            imgui.text_colored(imgui.ImVec4(*ERROR_COLOR), message)
        imgui.pop_text_wrap_pos()


def _row(v: Viewer, entry: Entry, psnr: float | None) -> None:
    lib = v.library
    if entry.error:
        imgui.text_colored(imgui.ImVec4(*ERROR_COLOR), f"{entry.name}  (not shown)")
    elif imgui.selectable(f"{entry.name}  {_psnr(psnr)}##{entry.name}", lib.chosen == entry.name)[0]:
        lib.choose(v, entry)
    if imgui.is_item_hovered():
        imgui.set_tooltip(summary(entry))
