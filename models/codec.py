"""Material in, `.ngtc` bytes out: fitting, storing, and measuring quality on the stored bytes."""

from __future__ import annotations

import platform

import numpy as np
import torch

from . import ngtc_file
from .decoder import NeuralTexture
from .fit import Callback, FitConfig, fit, pick_device
from .layout import MapInfo, printable
from .metrics import psnr, psnr_per_map
from .ngtc_file import CompressedTexture, Info, Quality


def measure(nt: NeuralTexture, mips: list[np.ndarray], layout: list[MapInfo]) -> Quality:
    """PSNR over all channels and per map, at every mip, decoded from the stored representation."""
    quality = Quality()
    for m, ref in enumerate(mips):
        out = nt.decode_mip(m)
        quality.psnr.append(round(psnr(out, ref), 3))
        for name, value in psnr_per_map(out, ref, layout).items():
            quality.psnr_maps.setdefault(name, []).append(round(value, 3))
    return quality


def compress_material(material, cfg: FitConfig, callback: Callback | None = None) -> tuple[bytes, CompressedTexture]:
    """Fit, quantize and serialise a material; the recorded quality is measured on the stored bytes."""
    mips = material.mip_chain()
    model = fit(mips, cfg, callback)
    layout = material.layout()
    ct = model.compress(material.width, material.height, len(mips), layout)
    ct.info = Info(material=printable(material.name), preset=cfg.preset.name, method=cfg.method, seed=cfg.seed,
                   steps=model.fit_steps, seconds=round(model.fit_seconds, 1), batch=cfg.batch,
                   device=describe_device(pick_device(cfg.device)), torch=str(torch.__version__))
    stored = ngtc_file.from_bytes(ngtc_file.to_bytes(ct))
    ct.info.quality = measure(NeuralTexture(stored, model.texture_synthesizer.input.weight.device), mips, layout)
    return ngtc_file.to_bytes(ct), ct


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
