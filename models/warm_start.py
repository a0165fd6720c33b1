"""Warm start: the paper's encoder trained across many materials, as a starting point for one material's fit.

A GlobalTransformer + GridConstructor + TextureSynthesizer per preset, trained on crops of ~2000 material
sets from Debian game data (scripts/train_warm_start.py, docs/warmstart-data.md), none of which the codec
is evaluated on. For a new material the encoder runs once on its mip 0 to build the grids, the synthesizer
starts from the shared weights, and the fit refines both as free parameters (method "warm" in models.fit).

Materials differ in their maps, so the shared model reads and writes a canonical stack of channels:
base colour (3), normal XY (2) and up to three scalar slots, filled with the material's remaining
channels in layout order (roughness, metallic, ao, height, ...). A channel without a slot (a fourth
scalar, an emissive colour) is not seen by the encoder; its synthesizer output starts at its mean.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from .compression_model import CompressionModel
from .decoder_shape import DecoderShape
from .layout import MapInfo
from .presets import Preset

CANONICAL_SLOTS = {"basecolor": (0, 3), "normal": (3, 2)}  # map -> (first slot, channels)
SCALAR_SLOTS = (5, 6, 7)
WARM_CHANNELS = 8
ENCODER_CHANNELS = (32, 64, 128)  # smaller than the per-material default: it must train on 2 CPU cores
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "assets" / "warmstart"


class WarmStartError(Exception):
    """One-line, user-facing: no warm start for this preset, or a weights file that does not fit it."""


def canonical_slots(layout: list[MapInfo]) -> list[int | None]:
    """The canonical slot of each stacked channel of a material (None: no slot)."""
    slots: list[int | None] = []
    scalars = iter(SCALAR_SLOTS)
    for info in sorted((m for m in layout if m.constant is None), key=lambda m: m.offset):
        if info.name in CANONICAL_SLOTS and CANONICAL_SLOTS[info.name][1] == info.channels:
            first = CANONICAL_SLOTS[info.name][0]
            slots += range(first, first + info.channels)
        else:
            slots += [next(scalars, None) for _ in range(info.channels)]
    return slots


def to_canonical(texels: torch.Tensor, slots: list[int | None]) -> torch.Tensor:
    """(C, H, W) material texels -> (WARM_CHANNELS, H, W); absent slots are 0."""
    out = texels.new_zeros((WARM_CHANNELS, *texels.shape[1:]))
    for channel, slot in enumerate(slots):
        if slot is not None:
            out[slot] = texels[channel]
    return out


def weights_path(preset_name: str, folder: Path = WEIGHTS_DIR) -> Path:
    return folder / f"{preset_name}.safetensors"


def available(preset_name: str, folder: Path = WEIGHTS_DIR) -> bool:
    return weights_path(preset_name, folder).is_file()


def require(presets: list[Preset], folder: Path = WEIGHTS_DIR) -> None:
    """Fail before any fit starts when a preset has no shipped warm start, or one trained for another shape."""
    missing = [p.name for p in presets if not available(p.name, folder)]
    if missing:
        have = sorted(p.stem for p in folder.glob("*.safetensors"))
        raise WarmStartError(f"no warm start for preset {', '.join(missing)} (weights ship for "
                             f"{', '.join(have) or 'none'}, in {folder}); use --method grids")
    for p in presets:
        check(p, folder)


def check(preset: Preset, folder: Path = WEIGHTS_DIR) -> Path:
    """The preset's weights file, after checking (from its metadata alone) that it was trained for this shape."""
    path = weights_path(preset.name, folder)
    if not path.is_file():
        raise WarmStartError(f"no warm start for preset {preset.name} ({path} is missing); use --method grids")
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
        stored = DecoderShape(**json.loads(meta["shape"]))
    except (OSError, KeyError, ValueError, TypeError) as e:
        raise WarmStartError(f"{path}: not a warm-start weights file ({e})") from None
    if stored != preset.shape:
        raise WarmStartError(f"{path}: trained for another decoder shape than preset {preset.name}'s; retrain it "
                             "(scripts/train_warm_start.py) or use --method grids")
    return path


def fingerprint(preset_name: str, folder: Path = WEIGHTS_DIR) -> str | None:
    """SHA-256 of the preset's weights file (None without one): what a cached fit depends on."""
    path = weights_path(preset_name, folder)
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def save(model: CompressionModel, preset: Preset, path: Path, provenance: dict) -> None:
    """Write the shared model's weights with its shape and how it was trained."""
    meta = {"shape": json.dumps(preset.shape.to_dict()), "encoder_channels": json.dumps(ENCODER_CHANNELS),
            "preset": preset.name, "provenance": json.dumps(provenance)}
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if not k.startswith("grids")}
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    tmp.chmod(0o644)  # a shipped asset, readable by all (safetensors creates it 0600)
    tmp.replace(path)


def build_shared(shape: DecoderShape) -> CompressionModel:
    return CompressionModel(WARM_CHANNELS, shape, encoder_channels=ENCODER_CHANNELS)


def load_shared(preset: Preset, folder: Path = WEIGHTS_DIR) -> CompressionModel:
    """The shared model of `preset`, checked against the preset's shape."""
    path = check(preset, folder)
    model = build_shared(preset.shape)
    model.load_state_dict(load_file(str(path)))
    return model.eval()


@torch.no_grad()
def warm_start(model: CompressionModel, shared: CompressionModel, texels: np.ndarray,
               layout: list[MapInfo]) -> None:
    """Initialise a material's decoder-only `model` from the shared one: grids built by the shared encoder
    from mip 0 (H, W, C), synthesizer weights copied, output rows mapped through the canonical slots."""
    h, w, c = texels.shape
    slots = canonical_slots(layout)
    device = next(model.texture_synthesizer.parameters()).device
    full = torch.from_numpy(np.ascontiguousarray(texels)).permute(2, 0, 1).to(device)
    shared = shared.to(device)
    model.init_grids(w, h, values=shared.construct_grids(to_canonical(full, slots), quant_mode="none"))
    mine, theirs = model.texture_synthesizer, shared.texture_synthesizer
    state = {k: v for k, v in theirs.state_dict().items() if not k.startswith("output.")}
    mine.load_state_dict(state, strict=False)
    mine.output.weight.zero_()
    mine.output.bias.copy_(full.mean(dim=(1, 2)))
    for channel, slot in enumerate(slots):
        if slot is not None:
            mine.output.weight[channel] = theirs.output.weight[slot]
            mine.output.bias[channel] = theirs.output.bias[slot]
