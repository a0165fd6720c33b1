"""The paper's components: shapes, quantization levels, stride rule, positional encoding."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from models import fit as fit_module
from models import ngtc_file
from models.codec import rate_preset
from models.compression_model import CompressionModel, decompress
from models.decoder_shape import grid_shape
from models.fit import (
    MAX_MIP0_BOOST,
    MAX_SHORT_FIT_SCALE,
    PACE_SHARE,
    SHORT_FIT_PASSES,
    SHORT_FIT_STEPS,
    Budget,
    FitConfig,
    MipSampler,
    auto_mip0_boost,
    build_model,
    falloff_shares,
    fit,
    fit_sampler,
    grid_groups,
    make_optimizer,
    short_fit_scale,
    training_model,
)
from models.grid_sampler import GridSampler, bilinear, corners, texel_uv
from models.grid_taps import MIX, mix_centred, wrapped
from models.material import load_material
from models.ngtc_file import pack_codes, unpack_codes
from models.presets import PRESETS, nearest_preset, preset
from models.quantization import from_codes, quantize, to_codes
from models.rate import shape_for_rate
from models.spec import GRID_BITS, QUANT_LEVELS, grid_stride, mip_count, quant_step
from models.texture_synthesizer import PositionalEncoding, TextureSynthesizer, input_layer


def test_exactly_16_quantization_levels():
    x = torch.linspace(-3, 3, 100_001)
    codes = to_codes(x)
    assert QUANT_LEVELS == 16
    assert torch.unique(codes).tolist() == list(range(16))
    levels = torch.unique(quantize(x, "ste"))
    assert len(levels) == 16
    assert torch.allclose(levels, from_codes(torch.arange(16)))
    assert levels.min() == -1 and levels.max() == 1


@pytest.mark.parametrize("bits", GRID_BITS)
def test_levels_of_every_width_span_the_range(bits):
    x = torch.linspace(-3, 3, 100_001)
    codes = to_codes(x, bits)
    assert torch.unique(codes).tolist() == list(range(1 << bits))
    levels = torch.unique(quantize(x, "ste", bits))
    assert torch.equal(levels, from_codes(torch.arange(1 << bits), bits))
    assert levels.min() == -1 and levels.max() == 1
    assert torch.allclose(levels.diff(), torch.full((len(levels) - 1,), quant_step(bits)), atol=1e-6)
    noisy = quantize(torch.zeros(1000), "noise", bits)
    assert noisy.abs().max() <= quant_step(bits) / 2 and noisy.abs().max() > quant_step(bits) / 4


def test_straight_through_gradient_and_noise_bounds():
    x = torch.linspace(-0.9, 0.9, 50, requires_grad=True)
    quantize(x, "ste").sum().backward()
    assert torch.all(x.grad == 1)
    noisy = quantize(x.detach(), "noise")
    assert torch.all((noisy - x.detach()).abs() <= (2 / 15) / 2 + 1e-6)


def test_nibble_packing_round_trip():
    codes = np.random.default_rng(0).integers(0, 16, (5, 7, 12), dtype=np.uint8)
    packed = pack_codes(codes, 4)
    assert packed.shape == (5, 7, 6)
    assert packed[0, 0, 0] == codes[0, 0, 0] | (codes[0, 0, 1] << 4)
    assert np.array_equal(unpack_codes(packed, 4), codes)


@pytest.mark.parametrize("bits", GRID_BITS)
def test_code_packing_round_trip_at_every_width(bits):
    codes = np.random.default_rng(bits).integers(0, 1 << bits, (5, 7, 16), dtype=np.uint8)
    packed = pack_codes(codes, bits)
    assert packed.shape == (5, 7, 16 * bits // 8)
    first = sum(int(codes[0, 0, k]) << (k * bits) for k in range(8 // bits))  # little-endian in the first byte
    assert packed[0, 0, 0] == first
    assert np.array_equal(unpack_codes(packed, bits), codes)
    with pytest.raises(ValueError, match="out of range"):
        pack_codes(np.full((1, 1, 8), 1 << bits, np.uint16), bits)


def test_stride_rule():
    # A grid of 4x4-texel cells (k = 2): mips below 2 interpolate inside cells, then stride 2^(m-k).
    assert [grid_stride(m, 4) for m in range(6)] == [0.25, 0.5, 1, 2, 4, 8]
    # The sampler realises it: texel centres of mip m land exactly stride apart, on cell centres at m = k.
    w = 64
    for m in range(5):
        uv = texel_uv(w, w, m)[: w >> m]
        pos = uv[:, 0] * (w // 4) - 0.5
        assert torch.allclose(pos[1:] - pos[:-1], torch.tensor(grid_stride(m, 4)))
    pos = texel_uv(w, w, 2)[: w >> 2, 0] * (w // 4) - 0.5
    assert torch.allclose(pos, torch.arange(w // 4, dtype=torch.float32))


def test_bilinear_wraps_and_interpolates():
    g = torch.arange(4 * 3, dtype=torch.float32).reshape(3, 4, 1)  # 3 rows, 4 columns
    at = lambda x, y: float(bilinear(g, torch.tensor([[x, y]]))[0, 0])  # noqa: E731
    assert at(1, 2) == g[2, 1, 0]
    assert at(1.5, 0) == pytest.approx((g[0, 1, 0] + g[0, 2, 0]) / 2)
    assert at(3.5, 0) == pytest.approx((g[0, 3, 0] + g[0, 0, 0]) / 2)  # wraps around the right edge
    assert at(-0.5, 0) == pytest.approx((g[0, 3, 0] + g[0, 0, 0]) / 2)
    clamped = float(bilinear(g, torch.tensor([[3.5, 0.0]]), wrap=False)[0, 0])
    assert clamped == g[0, 3, 0]


def test_corner_features_sum_to_bilinear():
    g = torch.rand(5, 6, 3)
    pos = torch.rand(40, 2) * 8 - 1
    c = corners(g, pos)
    assert c.shape == (40, 12)
    assert torch.allclose(c.reshape(40, 4, 3).sum(1), bilinear(g, pos), atol=1e-6)
    # At a cell centre only that cell contributes.
    at = corners(g, torch.tensor([[2.0, 3.0]]))[0].reshape(4, 3)
    assert torch.allclose(at[0], g[3, 2]) and torch.all(at[1:] == 0)


@pytest.mark.parametrize("kind", ["bilinear", "corners"])
def test_a_read_on_cell_centres_needs_only_its_first_tap(kind):
    cells, zero = torch.rand(4 * 6, 3), torch.zeros(6, 1)
    assert torch.equal(mix_centred(kind, cells[:6]), MIX[kind](cells, zero, zero))


def test_wrapped_addresses_match_the_remainder():
    i = torch.arange(-20, 20)
    for n in (1, 3, 4, 6, 8):
        assert torch.equal(wrapped(i, n), i % n)
    assert torch.equal(wrapped(i, torch.full_like(i, 4)), i % 4)


def test_positional_encoding_values_and_tiling():
    pe = PositionalEncoding(10)
    uv = torch.tensor([[0.3, 0.7]])
    out = pe(uv)[0]
    assert out.shape == (40,) and pe.out_dim == 40
    for i in range(10):
        f = 2.0 * math.pi * 2**i
        assert out[i] == pytest.approx(math.sin(f * 0.3), abs=1e-4)
        assert out[10 + i] == pytest.approx(math.cos(f * 0.3), abs=1e-4)
        assert out[20 + i] == pytest.approx(math.sin(f * 0.7), abs=1e-4)
        assert out[30 + i] == pytest.approx(math.cos(f * 0.7), abs=1e-4)
    # Whole periods per texture: u and u + 1 encode identically, so decoded materials tile.
    assert torch.allclose(pe(uv), pe(uv + 1), atol=5e-4)  # u + 1 rounds in float32: 512 * 1e-7


def test_the_input_layer_is_linears_with_the_features_gradient_only():
    """Training's input layer gives the grids' features their gradient and skips the positional encoding's: its
    output and every gradient it gives are nn.Linear's over the concatenated inputs."""
    gen = torch.Generator().manual_seed(0)
    linear = torch.nn.Linear(65, 32)
    features = torch.randn(300, 24, generator=gen, requires_grad=True)
    rest = torch.randn(300, 41, generator=gen)
    out = input_layer(linear, features, rest)
    upstream = torch.randn(300, 32, generator=gen)
    mine = torch.autograd.grad(out, (features, linear.weight, linear.bias), upstream)
    x = torch.cat([features, rest], dim=-1)
    plain = linear(x)
    theirs = torch.autograd.grad(plain, (features, linear.weight, linear.bias), upstream)
    assert torch.equal(out, plain) and type(out.grad_fn).__name__ == "_FeatureLinearBackward"
    for a, b in zip(mine, theirs, strict=True):
        assert a.shape == b.shape and torch.allclose(a, b, atol=1e-5)
    with torch.no_grad():  # decoding: no gradients, the plain layer
        assert torch.equal(input_layer(linear, features, rest), plain)
    # under bfloat16 autocast (training's synthesizer) as autocast's own linear: bf16 output, float32 gradients
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, plain = input_layer(linear, features, rest), linear(x)
    mine = torch.autograd.grad(out, (features, linear.weight, linear.bias), upstream)
    theirs = torch.autograd.grad(plain, (features, linear.weight, linear.bias), upstream)
    assert type(out.grad_fn).__name__ == "_FeatureLinearBackward"  # the features' gradient only, here too
    assert out.dtype == plain.dtype == torch.bfloat16 and torch.allclose(out.float(), plain.float(), atol=0.05)
    for a, b in zip(mine, theirs, strict=True):
        assert a.dtype == b.dtype == torch.float32 and torch.allclose(a, b, rtol=0.02, atol=0.02)


def test_the_synthesizer_trains_in_bfloat16_and_decodes_in_float32():
    """`train_dtype` changes the training arithmetic only: float32 weights, outputs and gradients; eval mode (every
    decode) is float32 whatever it says. The fit sets it as told, or where bf16 is fast."""
    gen = torch.Generator().manual_seed(0)
    synth = TextureSynthesizer(16, 8, 7, hidden_dim=48, activation="silu").eval()
    features, uv, mip = torch.rand(500, 24, generator=gen), torch.rand(500, 2, generator=gen), torch.zeros(500)
    reference = synth(features, uv, mip)
    synth.train_dtype = torch.bfloat16
    assert torch.equal(synth(features, uv, mip), reference)
    out = synth.train()(features, uv, mip)
    assert out.dtype == torch.float32 and not torch.equal(out, reference)
    assert torch.allclose(out, reference, atol=0.05)  # bf16 keeps 8 bits of mantissa
    out.square().mean().backward()
    assert all(p.dtype == torch.float32 and p.grad.dtype == torch.float32 for p in synth.parameters())
    mips = [np.full((s, s, 3), 0.5, np.float32) for s in (16, 8, 4, 2, 1)]
    for flag, dtype in ((False, None), (True, torch.bfloat16)):
        cfg = FitConfig(PRESETS["bpp1"], steps=2, seconds=None, batch=64, synthesizer_bf16=flag)
        assert fit(mips, cfg).texture_synthesizer.train_dtype is dtype
        # the model the training-step profile times (models.bench_speed) trains as the fit does
        assert training_model(3, cfg, torch.device("cpu")).texture_synthesizer.train_dtype is dtype


def test_the_synthesizer_settles_in_float32_after_its_bf16_share(monkeypatch):
    """A bf16 fit runs its synthesizer in bf16 for `bf16_share` of the phase, float32 after it, and leaves the model
    with the fit's training precision; a float32 fit stays float32 throughout."""
    seen: list[torch.dtype | None] = []
    make = fit_module.training_model

    def recording(*args, **kwargs):
        model = make(*args, **kwargs)
        model.texture_synthesizer.register_forward_pre_hook(lambda module, _: seen.append(module.train_dtype))
        return model

    monkeypatch.setattr(fit_module, "training_model", recording)
    mips = [np.full((s, s, 3), 0.5, np.float32) for s in (16, 8, 4, 2, 1)]
    for flag, share, expected in ((True, 0.5, [torch.bfloat16] * 4 + [None] * 4), (True, 1.0, [torch.bfloat16] * 8),
                                  (False, 0.5, [None] * 8)):
        seen.clear()
        cfg = FitConfig(PRESETS["bpp1"], steps=8, seconds=None, batch=64, synthesizer_bf16=flag, bf16_share=share)
        model = fit(mips, cfg)
        assert seen == expected, (flag, share, seen)
        assert model.texture_synthesizer.train_dtype is (torch.bfloat16 if flag else None)


def test_shapes_of_the_reference_configuration():
    model = CompressionModel(7, preset("ref", 16, 4, 16, 16).shape, encoder_channels=(64, 128, 256))
    texels = torch.rand(7, 96, 80)  # not a multiple of the latent stride or the cells
    g0, g1 = model.construct_grids(texels)
    assert g0.shape == (24, 20, 16) and g1.shape == (6, 5, 16)
    # Stored grids hold 4-bit codes: the encoder's output lies on the 16 levels -1, -1 + 2/15, ..., 1 and, with its
    # heads scaled up until tanh spans (-1, 1), reaches every one of them (seed 0: each level 6 to 1347 times of
    # 7680 and 480). A freshly initialised encoder hits only 2 levels, which `<= 16 unique values` let through.
    levels = torch.linspace(-1, 1, 16)
    with torch.random.fork_rng(), torch.no_grad():
        torch.manual_seed(0)
        loud = CompressionModel(7, preset("ref", 16, 4, 16, 16).shape, encoder_channels=(64, 128, 256))
        for p in loud.grid_constructor.parameters():
            p.mul_(100)
        saturated = loud.construct_grids(torch.rand(7, 96, 80))
    for g in (g0, *saturated):
        nearest = levels[(g.detach()[..., None] - levels).abs().argmin(-1)]
        assert torch.allclose(g.detach(), nearest, atol=1e-6)  # every value on a level
    assert all(torch.equal(torch.unique(to_codes(g)), torch.arange(16, dtype=torch.uint8)) for g in saturated)
    uv, mip = torch.rand(33, 2), torch.zeros(33)
    assert model(uv, mip, texels=texels).shape == (33, 7)
    synth = model.texture_synthesizer
    # G0 read as 4 weighted corners (16 x 4), G1 bilinear (16), PE (40), mip (1).
    assert isinstance(synth, TextureSynthesizer) and synth.in_dim == 16 * 4 + 16 + 40 + 1
    assert len(synth.blocks) == 4 and synth.input.out_features == 32
    assert isinstance(model.grid_sampler, GridSampler)


def test_compress_decompress_keeps_the_quantized_model():
    model = CompressionModel(5, preset("t", 8, 4, 4, 8).shape, encoder_channels=None)
    model.init_grids(40, 24, generator=torch.Generator().manual_seed(1))
    ct = model.compress(40, 24, mip_count(40, 24), [])
    assert ct.g0.shape == (*grid_shape(40, 24, 4), 8) and ct.g0.dtype == np.uint8
    assert all(w.dtype == np.float16 for w in ct.weights.values())
    dec = decompress(ct)
    uv, mip = torch.rand(50, 2), torch.randint(0, 3, (50,)).float()
    with torch.no_grad():
        # The decoder equals the trained model with straight-through (stored) quantization, up to fp16 weights.
        assert torch.allclose(dec(uv, mip, quant_mode="none"), model(uv, mip, quant_mode="ste"), atol=2e-2)


def test_mip_sampler_draws_every_texel_once_per_pass():
    # Mip 0 holds its texel index, so the targets say which texels a batch drew.
    mips = [np.arange(s * s, dtype=np.float32).reshape(s, s, 1) for s in (16, 8, 4, 2, 1)]
    for epochs in (True, False):
        sampler = MipSampler(mips, torch.device("cpu"), torch.Generator().manual_seed(0), 0.45, epochs=epochs)
        n0 = sampler.counts(57)[0]
        drawn = []
        for _ in range(256 // n0):
            uv, mip, target = sampler.sample(57)
            at0 = mip == 0
            x, y = (uv[at0] * 16 - 0.5).round().long().unbind(-1)
            assert torch.equal(target[at0, 0].long(), y * 16 + x)  # uv and target name the same texel
            drawn += target[at0, 0].long().tolist()
        # Drawn per pass, each texel comes once; at random, 8 draws of 32 repeat some (p of none ~1e-48).
        assert (len(set(drawn)) == len(drawn) == 256 // n0 * n0) == epochs


def test_coarse_mips_weigh_at_least_the_coarse_falloffs_share():
    """Mips 3-4 weigh in the loss as if drawn with the coarse falloff where the preset's own draws fewer of them;
    the draws themselves stay the preset's, and a preset at the coarse falloff is left as it is."""
    mips = [np.zeros((s, s, 1), np.float32) for s in (256, 128, 64, 32, 16, 8, 4, 2, 1)]
    coarse = falloff_shares(0.55, len(mips))
    for falloff in (0.4, 0.45):
        plain = MipSampler(mips, torch.device("cpu"), torch.Generator(), falloff)
        floored = MipSampler(mips, torch.device("cpu"), torch.Generator(), falloff, coarse_falloff=0.55)
        assert floored.counts(8192) == plain.counts(8192)
        assert plain.weights(8192) is None
        effective = floored.weight * floored.share  # each mip's share of the loss
        assert effective.sum() == pytest.approx(1.0)
        for m in (3, 4):  # against mip 0, as the coarse falloff has it
            assert effective[m] / effective[0] == pytest.approx(coarse[m] / floored.share[0])
        assert effective[1] / effective[0] == pytest.approx(floored.share[1] / floored.share[0])  # others as drawn
        weights = floored.weights(8192)[:, 0]
        _, mip, _ = floored.sample(8192)
        assert torch.equal(weights, torch.as_tensor(floored.weight, dtype=torch.float32)[mip.long()])
    assert MipSampler(mips, torch.device("cpu"), torch.Generator(), 0.55, coarse_falloff=0.55).weights(8192) is None
    for n in (1, 2, 4):  # chains that end before or at the coarse mips
        short = MipSampler(mips[-n:], torch.device("cpu"), torch.Generator(), 0.45, coarse_falloff=0.55)
        assert (short.weights(64) is None) == (n <= 3)


def test_mip_1s_weight_multiplies_its_share_of_the_loss():
    """Mip 1 weighing K: its share of the loss against every other mip's is K times what its draws give it, beside
    the coarse mips' floor; the draws and the loss's scale stay."""
    mips = [np.zeros((s, s, 1), np.float32) for s in (256, 128, 64, 32, 16, 8, 4, 2, 1)]
    for falloff, coarse in ((0.55, None), (0.45, 0.55)):
        plain = MipSampler(mips, torch.device("cpu"), torch.Generator(), falloff, coarse_falloff=coarse)
        heavier = MipSampler(mips, torch.device("cpu"), torch.Generator(), falloff, coarse_falloff=coarse,
                             mip1_weight=2.0)
        assert heavier.counts(8192) == plain.counts(8192)
        before, after = plain.weight * plain.share, heavier.weight * heavier.share
        assert after.sum() == pytest.approx(1.0)
        ratio = (after / after[0]) / (before / before[0])
        assert ratio[1] == pytest.approx(2.0)
        assert np.delete(ratio, 1) == pytest.approx(np.ones(len(mips) - 1))


def test_mip0_boost_draws_more_of_mip_0_and_keeps_the_objective():
    """A boost of K draws K times mip 0's texels, each weighing 1/K: every mip's share of the loss is as without it."""
    mips = [np.zeros((s, s, 1), np.float32) for s in (256, 128, 64, 32, 16, 8, 4, 2, 1)]
    plain = MipSampler(mips, torch.device("cpu"), torch.Generator(), 0.45, coarse_falloff=0.55)
    boosted = MipSampler(mips, torch.device("cpu"), torch.Generator(), 0.45, coarse_falloff=0.55, mip0_boost=2.0)
    before, after = plain.counts(8192), boosted.counts(8192)
    assert after[0] == 2 * before[0] and after[1:] == before[1:]
    loss_share = [np.asarray(s.counts(8192)) * s.weight for s in (plain, boosted)]
    assert np.allclose(loss_share[0], loss_share[1])
    _, mip, _ = boosted.sample(8192)
    assert len(mip) == sum(after) and int((mip == 0).sum()) == after[0]
    weights = boosted.weights(8192)[:, 0]
    assert torch.allclose(weights[mip == 0], torch.tensor(plain.weight[0] / 2, dtype=torch.float32))


def test_mip0_boost_grows_with_the_material_and_is_bounded():
    sides = (256, 512, 1024, 1536, 2048, 4096)
    for growth, at_1024 in (("side", 2.0), ("area", 1.0)):
        boosts = [auto_mip0_boost(side, side, growth) for side in sides]
        assert boosts[:2] == [1.0, 1.0] and boosts[2] == at_1024 and boosts[-2:] == [MAX_MIP0_BOOST] * 2
        assert boosts == sorted(boosts)
        assert auto_mip0_boost(2048, 512, growth) == auto_mip0_boost(1024, 1024, growth)  # by texels, any aspect
    with pytest.raises(ValueError, match="growth"):
        auto_mip0_boost(1024, 1024, "volume")
    # the presets say how theirs grows; the fit's own setting wins; the sampler a fit builds carries what it resolves
    assert {p.mip0_boost_growth for p in PRESETS.values()} == {"side", "area"}
    cfg = FitConfig(PRESETS["bpp8"], steps=1, seconds=None)
    chain = [np.zeros((s, s, 1), np.float32) for s in (1024, 512)]
    assert fit_sampler(chain, cfg, torch.device("cpu"), torch.Generator()).mip0_boost == 2.0
    assert FitConfig(PRESETS["bpp16"], steps=1, seconds=None).boost_for(1024, 1024) == 1.0
    cfg.mip0_boost = 1.5
    assert cfg.boost_for(1024, 1024) == 1.5


def test_short_fits_take_larger_steps(monkeypatch):
    assert short_fit_scale(SHORT_FIT_STEPS, "grids") == short_fit_scale(10 * SHORT_FIT_STEPS, "grids") == 1.0
    assert short_fit_scale(SHORT_FIT_STEPS / 1.25, "grids") == short_fit_scale(SHORT_FIT_STEPS / 1.25, "synthesizer")
    assert short_fit_scale(100, "grids") == MAX_SHORT_FIT_SCALE["grids"] == 2.0
    assert short_fit_scale(100, "synthesizer") == MAX_SHORT_FIT_SCALE["synthesizer"] == 1.5
    assert short_fit_scale(100, "wide synthesizer") == 1.0
    # the scale stops where every mip-0 texel has been drawn SHORT_FIT_PASSES times
    assert short_fit_scale(100, "grids", mip0_share=SHORT_FIT_PASSES / 100) == 1.0
    assert short_fit_scale(100, "grids", mip0_share=SHORT_FIT_PASSES / 150) == 1.5
    assert short_fit_scale(100, "synthesizer", mip0_share=1.0) == 1.0
    # a step budget is known at once; a time budget from its pace once PACE_SHARE of it has passed
    assert Budget(1200, None).expected_steps() == 1200
    timed = Budget(None, 100.0)
    timed.step = 50
    assert timed.expected_steps() is None
    timed.start -= 4 * PACE_SHARE * 100.0
    assert timed.expected_steps() == pytest.approx(50 / (4 * PACE_SHARE), rel=0.01)
    # the rates a short fit ends at: its grids' and its synthesizer's scaled apart (a wide synthesizer's not at all),
    # and as set without the rule
    made = []
    monkeypatch.setattr(fit_module, "make_optimizer", lambda groups, cfg: made.append(make_optimizer(groups, cfg))
                        or made[-1])
    mips = [np.random.default_rng(0).random((s, s, 3), dtype=np.float32) for s in (16, 8, 4, 2, 1)]
    for name, synthesizer_part in (("bpp2.4", "synthesizer"), ("bpp12", "wide synthesizer")):
        ratios = []
        for short in (True, False):
            # 128 texels a step: mip 0 drawn 5-6 times in the fit, as in a large material's short fit
            fit(mips, FitConfig(PRESETS[name], steps=20, seconds=None, batch=128, short_fit_lr=short, lr_floor=0.5))
            grids, synthesizer = (g["lr"] for g in made[-1].param_groups)
            ratios.append(grids / synthesizer)
        plain = FitConfig.lr_grids / PRESETS[name].lr_synthesizer
        assert ratios[1] == pytest.approx(plain)
        scaled = MAX_SHORT_FIT_SCALE["grids"] / MAX_SHORT_FIT_SCALE[synthesizer_part]
        assert ratios[0] == pytest.approx(plain * scaled) and scaled > 1


def test_training_settings_come_from_the_preset_unless_the_fit_sets_them():
    mips = [np.zeros((s, s, 1), np.float32) for s in (64, 32, 16, 8)]
    coarse = preset("coarse-heavy", 4, 8, 8, 16, mip_falloff=0.7, lr_synthesizer=0.03)
    cfg = FitConfig(coarse, steps=1, seconds=None)
    assert cfg.falloff == 0.7
    sampler = MipSampler(mips, torch.device("cpu"), torch.Generator(), cfg.falloff)
    assert np.allclose(sampler.share[1:] / sampler.share[:-1], 0.7)  # geometric, as documented
    assert FitConfig(coarse, steps=1, seconds=None, mip_falloff=0.3).falloff == 0.3
    # the synthesizer's learning rate: the preset's, or the fit's own, halved where the warm start is refined
    model = build_model(1, coarse, with_encoder=False)
    lrs = [grid_groups(model, FitConfig(coarse, steps=1, seconds=None, **kw))[1]["lr"]
           for kw in ({}, {"lr_synthesizer": 0.005}, {"method": "warm"})]
    assert lrs == [0.03, 0.005, 0.03 * FitConfig.refine_lr_scale]
    # a --bpp preset trains as the family its shape comes from
    material = load_material("assets/tiles")
    plan = shape_for_rate(0.6, 1024, 1024, material.layout())
    chosen = rate_preset(0.6, material)
    assert (chosen.mip_falloff, chosen.lr_synthesizer) == (plan.preset.mip_falloff, plan.preset.lr_synthesizer)


def test_presets_span_half_to_sixteen_bits():
    """Rates measured from stored files (a 1024x1024 material with the bundled tiles' 7-channel layout), not from
    the presets' own formula. nominal_bpp predicts each within 0.05 bpp (metadata varies); the former flat +0.1 bpp
    was 0.079 off at the old bpp8."""
    layout = load_material("assets/tiles").layout()
    stored = {}
    for name, p in PRESETS.items():
        model = CompressionModel(7, p.shape, encoder_channels=None)
        model.init_grids(1024, 1024, generator=torch.Generator().manual_seed(0))
        stored[name] = len(ngtc_file.to_bytes(model.compress(1024, 1024, 11, layout))) * 8 / (1024 * 1024)
    rates = sorted(stored.values())
    # about 0.5 to about 16 bpp (the span): bpp16 stores 17.0 since its G1 has 12 channels at cell 8 (16.75 bpp
    # of grids)
    assert len(rates) >= 7 and 0.4 <= rates[0] <= 0.6 and 15.5 <= rates[-1] <= 17.2, stored
    for name, rate in stored.items():
        assert abs(PRESETS[name].nominal_bpp() - rate) < 0.05, (name, rate, PRESETS[name].nominal_bpp())
        assert nearest_preset(rate).name == name
    assert nearest_preset(2.0).name == "bpp2.4"
    assert nearest_preset(100).name == "bpp16"
