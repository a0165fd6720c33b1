"""Material in, `.ngtc` bytes out: fitting, storing, and measuring quality on the stored bytes."""

from __future__ import annotations

import platform
from dataclasses import dataclass, replace

import numpy as np
import torch

from . import ngtc_file
from .decoder import NeuralTexture
from .fit import Callback, FitConfig, fit, pick_device
from .layout import MapInfo, printable
from .metrics import psnr, psnr_per_map
from .ngtc_file import CompressedTexture, Info, Quality
from .presets import Preset
from .rate import RateError, shape_for_rate


def measure(nt: NeuralTexture, mips: list[np.ndarray], layout: list[MapInfo]) -> Quality:
    """PSNR over all channels and per map, at every mip, decoded from the stored representation."""
    quality = Quality()
    for m, ref in enumerate(mips):
        out = nt.decode_mip(m)
        quality.psnr.append(round(psnr(out, ref), 3))
        for name, value in psnr_per_map(out, ref, layout).items():
            quality.psnr_maps.setdefault(name, []).append(round(value, 3))
    return quality


def compress_material(material, cfg: FitConfig, callback: Callback | None = None,
                      mips_measured: int | None = None) -> tuple[bytes, CompressedTexture]:
    """Fit, quantize and serialise a material; the recorded quality is measured on the stored bytes (on the
    first `mips_measured` mips; all by default)."""
    mips = material.mip_chain()
    layout = material.layout()
    model = fit(mips, cfg, callback, layout)
    ct = model.compress(material.width, material.height, len(mips), layout)
    ct.info = Info(material=printable(material.name), preset=cfg.preset.name, method=cfg.method, seed=cfg.seed,
                   steps=model.fit_steps, seconds=round(model.fit_seconds, 1), batch=cfg.batch,
                   device=describe_device(pick_device(cfg.device)), torch=str(torch.__version__))
    ct.info.quality = measure_stored(ct, mips[:mips_measured], layout, model.texture_synthesizer.input.weight.device)
    return ngtc_file.to_bytes(ct), ct


def measure_stored(ct: CompressedTexture, mips: list[np.ndarray], layout: list[MapInfo],
                   device: torch.device | str = "cpu") -> Quality:
    """`measure` of what a file of `ct` holds: serialised and read back (fp16 weights, grid codes), then decoded."""
    return measure(NeuralTexture(ngtc_file.from_bytes(ngtc_file.to_bytes(ct)), device), mips, layout)


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


# Rates --psnr searches: about half a bit apart at low rates, a third of the rate above 2 bpp.
PSNR_LADDER = (0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0)


@dataclass
class Probe:
    bits_per_texel: float  # of the file the probe wrote
    psnr_mip0: float  # over all channels, decoded from it


def compress_to_psnr(material, target_db: float, cfg: FitConfig, callback: Callback | None = None,
                     probe_share: float = 0.2) -> tuple[bytes, CompressedTexture, list[Probe]]:
    """The lowest rate of PSNR_LADDER whose mip-0 PSNR over all channels reaches `target_db`, by measurement:
    short fits (probe_share of the budget each) bisect the ladder, then the full fit runs at the rate found.

    A short fit reaches less than the full one, so the rate found is a safe upper bound: the final file
    reaches the target whenever the probe did (its PSNR is measured and recorded like any other)."""
    rates = []
    for bpp in PSNR_LADDER:
        try:
            rates.append(rate_preset(bpp, material))
        except RateError:
            continue
    if not rates:
        raise RateError(f"{material.name}: no rate of {PSNR_LADDER} is reachable at {material.width}x{material.height}")
    short = replace(cfg, steps=max(1, round(cfg.steps * probe_share)) if cfg.steps else None,
                    seconds=None if cfg.steps else (cfg.seconds or 0) * probe_share)
    probes: list[Probe] = []
    lo, hi = 0, len(rates) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        data, ct = compress_material(material, replace(short, preset=rates[mid]), _relabel(callback, "probe"),
                                     mips_measured=1)
        probes.append(Probe(round(len(data) * 8 / (material.width * material.height), 4), ct.info.quality.psnr[0]))
        if probes[-1].psnr_mip0 >= target_db:
            hi = mid
        else:
            lo = mid + 1
    data, ct = compress_material(material, replace(cfg, preset=rates[lo]), callback)
    return data, ct, probes


def rate_preset(bpp: float, material) -> Preset:
    """A preset named after `bpp` whose file has that rate (within rate.TOLERANCE) for this material."""
    plan = shape_for_rate(bpp, material.width, material.height, material.layout())
    return plan.preset.renamed(f"bpp{bpp:g}", plan.shape)  # trained as its family is


def _relabel(callback: Callback | None, phase: str) -> Callback | None:
    if callback is None:
        return None
    return lambda p: callback(replace(p, phase=phase))
