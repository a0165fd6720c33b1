"""End to end on a real material: compress a crop, store it, decode the stored bytes, reach a PSNR bound."""

from __future__ import annotations

import numpy as np
import torch

from models import ngtc_file
from models.codec import compress_material
from models.decoder import NeuralTexture
from models.fit import FitConfig
from models.material import load_material
from models.metrics import psnr
from models.presets import PRESETS


def test_compress_and_decode_a_real_crop(data_dir):
    material = load_material(data_dir / "rocks").crop(256, 256, 64, 64)
    cfg = FitConfig(PRESETS["bpp8"], steps=250, seconds=None, batch=4096, seed=3)
    data, ct = compress_material(material, cfg)
    nt = NeuralTexture(ngtc_file.from_bytes(data))
    mips = material.mip_chain()
    quality = [psnr(nt.decode_mip(m), ref) for m, ref in enumerate(mips)]
    # What the file records is what its bytes decode to.
    assert np.allclose(quality, ct.info.quality.psnr, atol=2e-3)
    # A few seconds of training on 64x64 rocks: well above the mean-colour baseline (~18 dB) at every mip.
    baseline = psnr(np.broadcast_to(mips[0].mean((0, 1)), mips[0].shape), mips[0])
    assert quality[0] > 22 and quality[0] > baseline + 5, quality
    assert min(quality[:5]) > 21, quality


def test_fitting_is_deterministic_for_a_seed():
    material = load_material("assets/tiles").crop(0, 0, 32, 32)
    runs = [compress_material(material, FitConfig(PRESETS["bpp2.4"], steps=15, seconds=None, batch=2048, seed=s))[1]
            for s in (7, 7, 8)]
    assert np.array_equal(runs[0].g0, runs[1].g0)
    assert all(np.array_equal(runs[0].weights[k], runs[1].weights[k]) for k in runs[0].weights)
    assert not np.array_equal(runs[0].g0, runs[2].g0)


def test_encoder_methods_run_and_store_the_same_format():
    material = load_material("assets/tiles").crop(0, 0, 64, 64)
    for method in ("encoder", "encoder+refine"):
        cfg = FitConfig(PRESETS["bpp2.4"], method=method, steps=20, seconds=None, batch=2048, crop=32)
        data, ct = compress_material(material, cfg)
        back = ngtc_file.from_bytes(data)
        assert back.info.method == method and back.g0.shape == (16, 16, 8)
        assert np.isfinite(back.info.quality.psnr).all()


def test_decode_at_coordinates_matches_mip_decode(small_ngtc):
    nt = NeuralTexture(ngtc_file.from_bytes(small_ngtc), "cpu")
    full = nt.decode_mip(1)  # 32x24
    uv = torch.tensor([[(5 + 0.5) / 32, (7 + 0.5) / 24]])
    assert np.allclose(nt.decode(uv, 1.0).numpy()[0], full[7, 5], atol=1e-6)
