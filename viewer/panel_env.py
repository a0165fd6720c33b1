"""The panel's Environment section: which HDR environment lights the object, how, and whether it is the background."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from imgui_bundle import imgui

from .environment import bundled

if TYPE_CHECKING:
    from .app import Viewer

_path_field = {"text": ""}  # the "file" field's text, kept between frames


def environment_section(v: Viewer) -> None:
    s = v.state
    _, s.ibl = imgui.checkbox("image-based lighting", s.ibl)
    if s.ibl:
        names = list(dict.fromkeys([*bundled(), *v.environments.maps, s.environment]))
        labels = [Path(n).name for n in names]
        changed, i = imgui.combo("environment", names.index(s.environment), labels)
        if changed:
            s.environment = names[i]
        _, _path_field["text"] = imgui.input_text("file (.exr/.hdr)", _path_field["text"])
        imgui.same_line()
        if imgui.button("load") and _path_field["text"].strip():
            s.environment = _path_field["text"].strip()  # a file that fails is logged; the current one stays
            v.environments.failed.discard(s.environment)  # asked again: try again (the file may be fixed)
        _, s.env_rotation = imgui.slider_float("rotation", s.env_rotation, -180.0, 180.0, "%.0f deg")
        _, s.env_intensity = imgui.slider_float("intensity", s.env_intensity, 0.05, 8.0, "%.2f",
                                                imgui.SliderFlags_.logarithmic)
        _, s.env_background = imgui.checkbox("as background", s.env_background)
        if s.env_background:
            imgui.same_line()
            imgui.set_next_item_width(imgui.get_content_region_avail().x * 0.5)
            _, s.env_blur = imgui.slider_float("blur", s.env_blur, 0.0, 1.0, "%.2f")
        maps = v.environments.maps.get(s.environment)
        if maps is not None:
            imgui.text_disabled(f"prefiltered in {maps.prefilter_ms:.0f} ms (once)")
        _, s.light = imgui.checkbox("directional light too", s.light)
    else:
        imgui.text_disabled("hemisphere ambient and the directional light")
