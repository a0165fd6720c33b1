"""G0's digit pairs: trained as one feature of twice the bits, stored as two plain channels, decoded the same."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models import digit_pairs, ngtc_file
from models.compression_model import CompressionModel, decompress
from models.grid_sampler import texel_uv
from models.layout import MapInfo
from models.presets import preset
from models.quantization import from_codes, quantize


@pytest.mark.parametrize("bits", [1, 2, 4])
def test_a_pairs_value_is_its_digits_weighted(bits):
    codes = np.arange(1 << (2 * bits), dtype=np.uint8).reshape(1, -1, 1)
    digits = digit_pairs.split_codes(codes, 1, bits)
    hi, lo = digit_pairs.digit_weights(bits)
    value = from_codes(torch.from_numpy(codes), 2 * bits)[..., 0]
    split = from_codes(torch.from_numpy(digits), bits)
    assert torch.allclose(split[..., 0] * hi + split[..., 1] * lo, value, atol=1e-6)
    assert digits.max() < (1 << bits)  # stored codes fit their bits


def test_pairs_go_first_then_the_plain_channels():
    codes = np.array([[[0b1110, 0b0111, 3, 1]]], dtype=np.uint8)  # two 4-bit pairs, two 2-bit channels
    assert digit_pairs.split_codes(codes, 2, 2).tolist() == [[[3, 2, 1, 3, 3, 1]]]


def test_pairs_must_fit_the_grid():
    assert digit_pairs.trained_bits(2, 8, 2) == (4, 4, 2, 2, 2, 2)
    assert digit_pairs.trained_bits(2, 8, 0) == 2
    with pytest.raises(ValueError):
        digit_pairs.trained_bits(2, 4, 3)  # 6 digits in 4 channels
    with pytest.raises(ValueError):
        digit_pairs.trained_bits(8, 8, 1)  # no 16-bit features


def test_training_quantizes_each_channel_at_its_bits():
    x = torch.rand(5, 6) * 2 - 1
    q = quantize(x, "ste", (4, 4, 2, 2, 2, 2))
    assert torch.equal(q[:, :2], quantize(x[:, :2], "ste", 4))
    assert torch.equal(q[:, 2:], quantize(x[:, 2:], "ste", 2))
    noise = quantize(torch.zeros(4096, 6), "noise", (4, 4, 2, 2, 2, 2)).abs().amax(0)
    assert (noise[:2] <= 1 / 15 + 1e-6).all() and (noise[2:] > 0.2).all()  # half a 4-bit / 2-bit step


@pytest.mark.parametrize("sampling", ["corners", "bilinear"])
def test_a_paired_model_decodes_from_its_file_as_trained(sampling):
    """Stored as plain 2-bit channels (the GLSL decoder's format), the pairs decode what the trained model does, at
    mip 0 and at the pyramid's mips."""
    torch.manual_seed(0)
    p = preset("t", 8, 2, 4, 8, g0_bits=2, g0_paired=0.5, grid_pyramid=True, g0_sampling=sampling)
    assert p.g0_pairs == 2
    model = CompressionModel(3, p.shape, encoder_channels=None, g0_pairs=p.g0_pairs)
    assert model.grid_channels == (6, 4)  # 2 pairs + 4 plain channels
    model.init_grids(32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        model.grids[0].uniform_(-1, 1)
        for w in model.texture_synthesizer.parameters():  # fp16-exact weights: storage rounds nothing else
            w.copy_(w.half().float())
    model.eval()
    ct = model.compress(32, 32, 6, [MapInfo("basecolor", 3, "srgb", "b.png", 8, 0)])
    assert ct.g0.shape == (16, 16, 8) and ct.g0.max() <= 3
    assert ct.weights["input.weight"].shape == (p.shape.hidden_dim, p.shape.in_dim)
    back = decompress(ngtc_file.from_bytes(ngtc_file.to_bytes(ct)))
    for mip in range(4):
        uv = texel_uv(32, 32, mip)
        m = torch.full((len(uv),), float(mip))
        with torch.no_grad():
            trained, stored = model(uv, m, quant_mode="ste"), back(uv, m)
        assert torch.allclose(trained, stored, rtol=1e-3, atol=1e-3), (mip, float((trained - stored).abs().max()))
