"""What the probes in this folder share: their common arguments, a fit as `models.bench_capacity` makes it (one
thread, a step budget), and PSNR at mips 0-4 over all channels. Run the probes as `PYTHONPATH=. python
bench/probes_2026-12-06c/PROBE.py ...` from the project's root."""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from models.bench_capacity import psnr_at, variant_config
from models.compression_model import CompressionModel
from models.fit import FitConfig, fit
from models.material import load_material
from models.presets import get_preset

MIPS = 5


def parser(doc: str) -> argparse.ArgumentParser:
    """The probes' arguments: a material, a preset, the fit's steps and the JSON out."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("material")
    p.add_argument("--preset", default="bpp4")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--out")
    return p


def fitted(material_path: str, preset: str, steps: int) -> tuple[list[np.ndarray], FitConfig, CompressionModel, float]:
    """One thread's fit of a material's mip chain: the chain, the fit's settings, the model and its CPU seconds."""
    torch.set_num_threads(1)
    material = load_material(material_path)
    chain = material.mip_chain()
    cfg = variant_config(get_preset(preset), steps, "base")
    cpu = time.thread_time()
    model = fit(chain, cfg, None, material.layout())
    return chain, cfg, model, time.thread_time() - cpu


def mip_psnr(model: CompressionModel, chain: list[np.ndarray]) -> list[float]:
    """PSNR over all channels at mips 0-4, the grids read as stored."""
    return [round(psnr_at(model, torch.from_numpy(chain[m]), m, "ste"), 2) for m in range(MIPS)]
