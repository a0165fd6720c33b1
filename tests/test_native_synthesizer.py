"""The C synthesizer (models/native_synthesizer.py) against PyTorch's TextureSynthesizer: the same outputs and
gradients in float32 for every activation, width and depth it takes, bfloat16's within its rounding, the same bits on
any thread count, and a clear fallback."""

from __future__ import annotations

import pytest
import torch

from models import native_build, native_synthesizer
from models.presets import PRESETS
from models.texture_synthesizer import TextureSynthesizer

pytestmark = pytest.mark.skipif(not native_synthesizer.enabled(), reason="no C compiler: training runs in PyTorch")


def run(synth: TextureSynthesizer, n: int, native: bool, monkeypatch, seed: int = 0, bf16: bool = False):
    """Output, the features' gradient and every parameter's gradient of a training forward under a fixed loss."""
    monkeypatch.setenv("NGTC_NATIVE", "1" if native else "0")
    synth.train_dtype = torch.bfloat16 if bf16 else None
    gen = torch.Generator().manual_seed(seed)
    in_features = synth.input.in_features - synth.encoding.out_dim - 1
    features = torch.rand(n, in_features, generator=gen).requires_grad_()
    uv, mip = torch.rand(n, 2, generator=gen), torch.randint(0, 6, (n,), generator=gen).float()
    target = torch.rand(n, synth.output.out_features, generator=gen)
    synth.train()
    out = synth(features, uv, mip)
    ((out - target) ** 2).mean().backward()
    grads = [features.grad] + [p.grad.clone() for p in synth.parameters()]
    synth.zero_grad(set_to_none=True)
    return out.detach(), grads


# (G0 features, G1 features, channels, width, blocks, activation): the presets' widths, no blocks, more features
# than a product's registers hold at once (72), a ReLU synthesizer as the paper's, and the 16-wide one a small
# file's rate control picks
SHAPES = [(24, 8, 7, 48, 4, "silu"), (16, 8, 9, 32, 4, "silu"), (8, 8, 3, 32, 4, "relu"), (40, 8, 10, 64, 2, "silu"),
          (64, 8, 7, 48, 0, "silu"), (24, 8, 1, 32, 1, "relu"), (8, 4, 5, 16, 2, "silu")]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "-".join(map(str, s)))
def test_outputs_and_gradients_match_pytorch(shape, monkeypatch):
    g0, g1, channels, width, blocks, activation = shape
    torch.manual_seed(3)
    synth = TextureSynthesizer(g0, g1, channels, width, blocks, 10, activation)
    calls = []
    kernel = native_synthesizer.synthesize
    monkeypatch.setattr(native_synthesizer, "synthesize", lambda *a: calls.append(1) or kernel(*a))
    n = 1001  # neither whole tiles nor whole 4-row blocks
    out, grads = run(synth, n, True, monkeypatch)
    assert calls, "the training forward did not take the kernel"
    ref_out, ref_grads = run(synth, n, False, monkeypatch)
    assert len(calls) == 1, "NGTC_NATIVE=0 still took the kernel"
    torch.testing.assert_close(out, ref_out, rtol=1e-5, atol=1e-6)
    for got, want in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4 * float(want.abs().max()) + 1e-9)


bf16 = pytest.mark.skipif(not native_synthesizer.takes_bf16(), reason="no AVX512-BF16: bfloat16 fits run in PyTorch")


@bf16
@pytest.mark.parametrize("shape", SHAPES[:4], ids=lambda s: "-".join(map(str, s)))
def test_bfloat16_products_match_pytorch_autocast(shape, monkeypatch):
    """Both round the products' operands to bfloat16 (PyTorch the activations too): the kernel's outputs and gradients
    are as close to float32's as PyTorch's autocast is, and not float32's own."""
    g0, g1, channels, width, blocks, activation = shape
    torch.manual_seed(3)
    synth = TextureSynthesizer(g0, g1, channels, width, blocks, 10, activation)
    native = run(synth, 1001, True, monkeypatch, bf16=True)
    autocast = run(synth, 1001, False, monkeypatch, bf16=True)
    exact = run(synth, 1001, False, monkeypatch)
    norm = torch.linalg.vector_norm
    assert float(norm(native[0] - exact[0])) > 1e-5 * float(norm(exact[0])), "the bfloat16 products were not taken"
    for got, ref, want in zip([native[0], *native[1]], [autocast[0], *autocast[1]], [exact[0], *exact[1]],
                              strict=True):
        assert float(norm(got - want)) <= 1.5 * float(norm(ref - want)) + 1e-4 * float(norm(want))


@pytest.mark.parametrize("precision", ["float32", pytest.param("bfloat16", marks=bf16)])
def test_same_bits_on_any_thread_count(precision, monkeypatch):
    torch.manual_seed(4)
    synth = TextureSynthesizer(24, 8, 7, 48, 4, 10, "silu")
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = run(synth, 3000, True, monkeypatch, bf16=precision == "bfloat16")
        torch.set_num_threads(3)
        three = run(synth, 3000, True, monkeypatch, bf16=precision == "bfloat16")
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one[0], three[0])
    for a, b in zip(one[1], three[1], strict=True):
        assert torch.equal(a, b)


def test_decoding_and_other_shapes_run_in_pytorch(monkeypatch):
    def refuse(*args):
        raise AssertionError("took the kernel")

    monkeypatch.setattr(native_synthesizer, "synthesize", refuse)
    features, uv, mip = torch.rand(5, 32), torch.rand(5, 2), torch.zeros(5)
    synth = TextureSynthesizer(24, 8, 7, 48, 4, 10, "silu")
    synth.eval()
    synth(features, uv, mip)  # decoding: PyTorch's (the shaders' reference)
    synth.train()
    synth.train_dtype = torch.float16
    synth(features, uv, mip)  # a precision the kernel does not have
    if not native_synthesizer.takes_bf16():
        synth.train_dtype = torch.bfloat16
        synth(features, uv, mip)  # bfloat16 without AVX512-BF16
    synth = TextureSynthesizer(24, 8, 7, 40, 4, 10, "silu")
    synth.train()
    synth(features, uv, mip)  # a width that is not whole vectors


def test_every_preset_trains_through_the_kernel_unless_turned_off(monkeypatch):
    assert all(native_synthesizer.takes_shape(p.shape) for p in PRESETS.values())
    monkeypatch.setenv("NGTC_NATIVE", "grid_reads")  # the grid reads alone: the synthesizer in PyTorch
    assert native_build.enabled("grid_reads.c") and not native_build.enabled("synthesizer.c")
    assert not native_synthesizer.takes_shape(PRESETS["bpp4"].shape)
    monkeypatch.setenv("NGTC_NATIVE", "0")
    assert not native_build.enabled("grid_reads.c")
