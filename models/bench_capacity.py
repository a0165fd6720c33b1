"""Capacity sweep: one preset's fit against variants of its synthesizer and training, at a fixed step count.

Step counts, not seconds, so that a shared machine changes the time a run takes but not its result; the CPU
seconds of the fitting thread (one torch thread) say what each variant costs. PSNR over all channels of
mips 0-2 (`--mips`), decoded by the trained model (float32 weights, grids quantized as stored; "float" keeps
them float); with `--stored`, also decoded from the file the model would be stored as (fp16 weights), as
`ngtc compress` measures it.

    python -m models.bench_capacity .cache/data/rocks --preset bpp16 --steps 3780 \\
        --variants base,activation=silu,hidden_dim=64,positional_encoding_levels=6,float,bf16 --out r.json

A variant is `base`, a DecoderShape field override (`hidden_dim=64`, `activation=silu`, ...), a FitConfig
one (`lr_grids=0.04`, `batch=4096`, `adam_beta2=0.999`, `epoch_sampling=0`, `steps=4500` for a variant whose
steps are cheaper, compared at equal CPU time; `+` joins several), `float`
(grids trained and read unquantized: what quantized features cost). The synthesizer trains in bfloat16 where that
is fast, as `fit` does (`synthesizer_bf16=0` / `=1` forces it; `bf16` is `synthesizer_bf16=1`).
`g0_bits=2+g0_channels=8` tries 2-bit G0, `+g0_paired=0.5` with half its channels trained as 4-bit digit pairs (a
variant keeps its preset's share of pairs: `--preset bpp4 --variants g0_bits=4+g0_channels=4+g0_paired=0` is bpp4
before them).

On a GPU, what a time budget reaches (issue 10: a 1024x1024 set at final quality in 10 s there):

    python -m models.bench_capacity .cache/data/rocks --preset bpp2.4 --device cuda --seconds 10 --stored \\
        --variants base,batch=32768,deterministic=0 --out gpu.json
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import time
from pathlib import Path

import msgspec
import torch

from . import compression_model
from .atomic import write_atomic
from .codec import describe_device, measure_stored
from .decoder_shape import DecoderShape, decoder_shape
from .fit import FitConfig, fit
from .grid_sampler import texel_index_uv
from .material import Material, load_material
from .presets import Preset, get_preset

CONFIG_FIELDS = {f.name for f in dataclasses.fields(FitConfig)} - {"preset", "seconds"}
PRESET_FIELDS = {"g0_paired"}  # training settings a preset carries beside its shape
KNOWN_FIELDS = set(DecoderShape.__struct_fields__) | CONFIG_FIELDS | PRESET_FIELDS


def _overrides(variant: str) -> list[tuple[str, str]]:
    """`key=value` parts of a variant; a key that is neither a DecoderShape nor a FitConfig field is an error."""
    pairs = [tuple(part.split("=", 1)) for part in variant.split("+") if "=" in part]
    for key, _ in pairs:
        if key not in KNOWN_FIELDS:
            raise SystemExit(f"bench_capacity: unknown variant field {key!r}; known: {', '.join(sorted(KNOWN_FIELDS))}")
    return pairs


BOOLS = {"1": True, "true": True, "0": False, "false": False}


def _typed(default: object, value: str) -> object:
    """`value` as the type of the field's default (bools as 0/1/true/false); where the default is None, a number
    if it reads as one (`mip_falloff=0.55`), else a str (`device=cpu`)."""
    if isinstance(default, bool):
        if value.lower() not in BOOLS:
            raise SystemExit(f"bench_capacity: {value!r} is not a bool (0, 1, true, false)")
        return BOOLS[value.lower()]
    if default is None:
        try:
            return float(value)
        except ValueError:
            return value
    return type(default)(value)


def variant_preset(base: Preset, variant: str) -> Preset:
    """The preset with the variant's DecoderShape and preset overrides (`g0_paired=0.5`) and the base's other training
    settings (mip falloff, learning rate); unchanged (same name, so the warm start finds its weights) when the
    variant only changes the fit's settings."""
    fields = msgspec.to_builtins(base.shape)
    shape_overrides = [(k, v) for k, v in _overrides(variant) if k in fields]
    preset_overrides = {k: _typed(getattr(base, k), v) for k, v in _overrides(variant) if k in PRESET_FIELDS}
    if not shape_overrides and not preset_overrides:
        return base
    for key, value in shape_overrides:
        fields[key] = _typed(fields[key], value)
    try:
        shape = decoder_shape(**fields)
    except ValueError as e:
        raise SystemExit(f"bench_capacity: variant {variant!r}: {e}") from None
    return dataclasses.replace(base.renamed(f"{base.name}:{variant}", shape), **preset_overrides)


def variant_config(preset: Preset, steps: int | None, variant: str, seconds: float | None = None,
                   device: str | None = "cpu") -> FitConfig:
    """The fit's settings with the variant's FitConfig overrides (`lr_grids=0.04`, `batch=4096`); a step budget,
    or with `seconds` a time budget."""
    cfg = FitConfig(preset, steps=None if seconds else steps, seconds=seconds, device=device)
    for key, value in _overrides(variant):
        if key in CONFIG_FIELDS:
            setattr(cfg, key, _typed(getattr(cfg, key), value))
    if "bf16" in variant.split("+"):
        cfg.synthesizer_bf16 = True
    return cfg


class _Unquantized:
    """The `float` variant's stand-in for `quantization.Quantizer`: the cells as they are."""

    def __init__(self, mode: str, bits: object = None):
        self.mode, self.bits = mode, bits

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x


@contextlib.contextmanager
def training_mode(variant: str):
    """The patch for the `float` variant, undone afterwards."""
    parts = variant.split("+")
    quantizer = compression_model.Quantizer
    if "float" in parts:
        compression_model.Quantizer = _Unquantized
    try:
        yield "none" if "float" in parts else "ste"
    finally:
        compression_model.Quantizer = quantizer


@torch.no_grad()
def psnr_at(model, mip: torch.Tensor, level: int, quant_mode: str) -> float:
    h, w, c = mip.shape
    dev = next(model.parameters()).device
    ys, xs = torch.meshgrid(torch.arange(h, device=dev), torch.arange(w, device=dev), indexing="ij")
    uv = texel_index_uv(xs.reshape(-1), ys.reshape(-1), w, h)
    out = torch.cat([model(u, torch.full((len(u),), float(level), device=dev), quant_mode=quant_mode)
                     for u in uv.split(65536)])
    return -10 * math.log10(float(torch.mean((out.clamp(0, 1) - mip.to(dev).reshape(-1, c)) ** 2)))


def run(material: Material, preset: str, variant: str, cfg: FitConfig, mips: int = 3, stored: bool = False) -> dict:
    """Fit one variant of `preset` (its shape and settings in `cfg`) and measure it."""
    chain, layout = material.mip_chain(), material.layout()
    with training_mode(variant) as quant_mode:
        start, cpu = time.perf_counter(), time.thread_time()
        model = fit(chain, cfg, None, layout)
        wall, cpu = time.perf_counter() - start, time.thread_time() - cpu
        psnr = [round(psnr_at(model, torch.from_numpy(chain[m]), m, quant_mode), 2)
                for m in range(min(mips, len(chain)))]
    dev = next(model.parameters()).device
    result = {"material": material.name, "preset": preset, "variant": variant, "steps": model.fit_steps,
              "seconds_budget": cfg.seconds, "batch": cfg.batch, "device": describe_device(dev),
              "shape": msgspec.to_builtins(cfg.preset.shape),
              f"psnr_mips_0_{len(psnr) - 1}": psnr, "cpu_seconds": round(cpu, 1), "wall_seconds": round(wall, 1)}
    if stored:
        ct = model.compress(material.width, material.height, len(chain), layout)
        result["psnr_stored"] = [round(v, 2) for v in measure_stored(ct, chain[:len(psnr)], layout, dev).psnr]
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("material", help="a material folder or .glb")
    p.add_argument("--preset", default="bpp12")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--seconds", type=float, default=None,
                   help="a time budget per fit instead of --steps (the steps each reached are recorded)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--variants", default="base", help="comma-separated (see above)")
    p.add_argument("--mips", type=int, default=3, help="PSNR of mips 0 .. N-1 (default 3)")
    p.add_argument("--stored", action="store_true",
                   help="also measure each fit from its stored bytes (fp16 weights), as ngtc compress records it")
    p.add_argument("--out", type=Path, help="JSON results (one object per variant)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (default 1: then cpu_seconds, one thread's, is the cost measure; with more, "
                        "compare wall_seconds on an idle machine)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    base = get_preset(args.preset)
    # every variant's settings first: a bad one is refused before the first fit, not after an hour of them
    configs = {v: variant_config(variant_preset(base, v), args.steps, v, args.seconds, args.device)
               for v in args.variants.split(",")}
    material = load_material(args.material)
    results = []
    for variant, cfg in configs.items():
        results.append(run(material, args.preset, variant, cfg, args.mips, args.stored))
        print(json.dumps(results[-1]), flush=True)
    if args.out:
        write_atomic(args.out, (json.dumps(results, indent=1) + "\n").encode())


if __name__ == "__main__":
    main()
