"""The display modes: every way the viewer can hold the material on the GPU, one registry entry each.

A mode's `source` says what makes its texture set: the material itself (reference), an ASTC encoding of it at
the mode's block size (loaded on demand), a `.ngtc` (every "ngtc" mode comes out of one upload, in registry
order: `viewer.materials_gl.neural_sets`), or the `.ngtc` decoded on load and transcoded to ASTC at the mode's
block size (loaded on demand: `viewer.transcode`). Further `.ngtc` files of the material (other presets) repeat the
"ngtc" modes under a suffix: "neural@bpp1.2", "neural-trilinear@bpp1.2", ...
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import ViewerError

ASTC_BLOCKS = ("4x4", "5x5", "6x6", "8x8", "10x10", "12x12")
ASTC_PREFIX = "astc-"
TRANSCODE_PREFIX = "neural-astc-"
PRESET_SEP = "@"


@dataclass(frozen=True)
class Mode:
    name: str
    label: str
    source: str  # material | astc | ngtc | transcode
    decodes_per_pixel: int | None = None  # on-sample neural: texel decodes per shaded pixel, at most
    accumulate: bool = False  # noisy frames: averaged while the view is still (viewer.accumulation)


REGISTRY: dict[str, Mode] = {m.name: m for m in (
    Mode("reference", "reference", "material"),
    *(Mode(f"{ASTC_PREFIX}{b}", f"ASTC {b}", "astc") for b in ASTC_BLOCKS),
    Mode("neural", "neural (decoded on load)", "ngtc"),
    Mode("neural-trilinear", "neural (on sample, trilinear)", "ngtc", 8),  # 4 texels x 2 mips
    Mode("neural-stochastic", "neural (on sample, stochastic)", "ngtc", 1, accumulate=True),
    Mode("neural-feedback", "neural (on feedback, tile cache)", "ngtc"),  # viewer.feedback
    *(Mode(f"{TRANSCODE_PREFIX}{b}", f"neural -> ASTC {b} (transcoded on load)", "transcode") for b in ASTC_BLOCKS),
)}
MODES = tuple(REGISTRY)
NEURAL_MODES = tuple(name for name, m in REGISTRY.items() if m.source == "ngtc")


def accumulates(mode: str) -> bool:
    """Whether the viewer averages the mode's frames while the view is still (a further preset's modes too)."""
    spec = REGISTRY.get(mode.partition(PRESET_SEP)[0])
    return spec is not None and spec.accumulate


def mode_label(mode: str) -> str:
    base, _, preset = mode.partition(PRESET_SEP)
    label = REGISTRY[base].label if base in REGISTRY else base
    return f"{label} [{preset}]" if preset else label


def check_mode(mode: str) -> str:
    base, sep, preset = mode.partition(PRESET_SEP)
    if mode not in MODES and not (sep and base in NEURAL_MODES and preset):
        raise ViewerError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)} (a neural mode may name "
                          f"another .ngtc of `ngtc eval` for the material by its preset: neural{PRESET_SEP}bpp1.2)")
    return mode


def astc_block(mode: str) -> str | None:
    """The block size of an ASTC mode ("astc-8x8" -> "8x8"); None for any other mode."""
    return mode.removeprefix(ASTC_PREFIX) if mode.startswith(ASTC_PREFIX) else None


def transcode_block(mode: str) -> str | None:
    """The block size of a transcoded mode ("neural-astc-8x8" -> "8x8"); None for any other mode."""
    return mode.removeprefix(TRANSCODE_PREFIX) if mode.startswith(TRANSCODE_PREFIX) else None


def preset_of(mode: str) -> str | None:
    """The further `.ngtc` a mode shows ("neural@bpp1.2" -> "bpp1.2"); None for the main one's modes."""
    return mode.partition(PRESET_SEP)[2] or None


def loaded_on_demand(mode: str) -> bool:
    """ASTC encodings (of the material or of the decoded .ngtc) and further presets load when first chosen (the
    rest with the material and .ngtc)."""
    return astc_block(mode) is not None or transcode_block(mode) is not None or preset_of(mode) is not None


def preset_modes(key: str) -> tuple[str, ...]:
    return tuple(f"{base}{PRESET_SEP}{key}" for base in NEURAL_MODES)


def preset_key(path: Path, material: str, taken: dict[str, Path]) -> str:
    """The mode suffix of a further `.ngtc`: its file name less the material's ("rocks_bpp1.2" -> "bpp1.2")."""
    stem = path.stem[len(material) + 1:] if material and path.stem.startswith(f"{material}_") else path.stem
    stem = "".join(c if c.isalnum() or c in "._-" else "-" for c in stem) or "ngtc"
    key, n = stem, 1
    while key in taken:
        n += 1
        key = f"{stem}-{n}"
    return key
