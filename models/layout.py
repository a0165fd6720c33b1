"""The channel layout of a material: one typed MapInfo per map, and the rules a layout obeys.

Shared by material loading (models/material.py), the `.ngtc` file (which stores the layout and checks
it on load) and every consumer of decoded texels. Torch-free.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from .spec import MAX_CHANNELS, MAX_TEXT

# The maps a material may have, in the order their channels are stacked.
MAP_NAMES: tuple[str, ...] = (
    "basecolor", "normal", "roughness", "metallic", "ao", "height", "opacity", "emissive", "specular",
)
MapName = Literal["basecolor", "normal", "roughness", "metallic", "ao", "height", "opacity", "emissive", "specular"]
# Channels each map has: colours are RGB, a normal map keeps X and Y (Z is reconstructed), specular is a
# scalar or an RGB colour, everything else a scalar.
MAP_CHANNELS: dict[str, tuple[int, ...]] = {
    "basecolor": (3,), "normal": (2,), "emissive": (3,), "specular": (1, 3),
    "roughness": (1,), "metallic": (1,), "ao": (1,), "height": (1,), "opacity": (1,),
}
# srgb: stored sRGB-encoded; normal: X, Y as n * 0.5 + 0.5; linear: the values themselves.
MAP_COLOR_SPACE: dict[str, str] = {"basecolor": "srgb", "emissive": "srgb", "normal": "normal"}
ColorSpace = Literal["srgb", "linear", "normal"]
SourceChannel = Literal["R", "G", "B", "A", "luminance"]
Text = Annotated[str, Meta(max_length=MAX_TEXT)]
Unit = Annotated[float, Meta(ge=0.0, le=1.0)]


def color_space(name: str) -> str:
    return MAP_COLOR_SPACE.get(name, "linear")


class MapInfo(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One map of a material: where its channels are, and where they came from.

    offset: first channel in the stacked texels (the synthesizer's outputs), or -1 for a constant map,
    whose per-channel values are `constant` instead. source: the file (or glTF image) it was read from;
    source_channel: the single channel of that image it was read from (None: the image's colour channels
    as the map needs them); inverted: the values are 1 - source (a gloss map read as roughness).
    """

    name: MapName
    channels: Annotated[int, Meta(ge=1, le=3)]
    color_space: ColorSpace
    source: Text
    bit_depth: Literal[8, 16]
    offset: Annotated[int, Meta(ge=-1, le=MAX_CHANNELS - 1)]
    constant: tuple[Unit, ...] | None = None
    source_channel: SourceChannel | None = None
    inverted: bool = False

    def __post_init__(self) -> None:
        if self.channels not in MAP_CHANNELS[self.name]:
            raise ValueError(f"map {self.name} has {self.channels} channels, expected "
                             f"{' or '.join(map(str, MAP_CHANNELS[self.name]))}")
        if self.color_space != color_space(self.name):
            raise ValueError(f"map {self.name} has color space {self.color_space}, expected {color_space(self.name)}")
        if (self.constant is None) == (self.offset < 0):
            raise ValueError(f"map {self.name}: a constant map has offset -1 and values, any other map neither")
        if self.constant is not None and len(self.constant) != self.channels:
            raise ValueError(f"map {self.name}: {len(self.constant)} constant values for {self.channels} channels")
        if not self.source.isprintable():
            raise ValueError(f"map {self.name}: source name has control characters")

    @property
    def is_constant(self) -> bool:
        return self.constant is not None

    def describe_source(self, file_name_only: bool = False) -> str:
        """Where the values came from, for people: "rock_gloss.png, R, inverted (gloss)"."""
        parts = [Path(self.source).name if file_name_only else self.source]
        if self.source_channel:
            parts.append(self.source_channel)
        if self.inverted:
            parts.append("inverted (gloss)")
        return ", ".join(parts)


def check_layout(layout: Sequence[MapInfo], channels: int) -> None:
    """Raise ValueError unless the maps are unique, in MAP_NAMES order, and the varying ones fill channels
    0 .. channels-1 contiguously in that order."""
    names = [m.name for m in layout]
    if len(set(names)) != len(names):
        raise ValueError(f"map names repeat ({', '.join(names)})")
    if names != sorted(names, key=MAP_NAMES.index):
        raise ValueError(f"maps out of order ({', '.join(names)}; expected the order {', '.join(MAP_NAMES)})")
    at = 0
    for m in layout:
        if m.constant is None:
            if m.offset != at:
                raise ValueError(f"map {m.name} has offset {m.offset}, expected {at}")
            at += m.channels
    if at != channels:
        raise ValueError(f"the maps' {at} varying channels do not match the synthesizer's {channels} outputs")


def map_slice(info: MapInfo) -> slice:
    """The map's channels in the stacked texels (a varying map)."""
    return slice(info.offset, info.offset + info.channels)


def layout_to_builtins(layout: Sequence[MapInfo]) -> list[dict]:
    """JSON-ready dicts (reports, cache keys)."""
    return msgspec.to_builtins(list(layout))


def printable(text: str, limit: int = MAX_TEXT) -> str:
    """`text` safe to store and print: control characters replaced, at most `limit` characters."""
    return "".join(c if c.isprintable() else "\ufffd" for c in text[:limit])
