"""Per-material fitting: trains a CompressionModel on one material's full mip chain.

Three methods, compared in `models.bench`:
- "encoder": the paper's path. The GlobalTransformer + GridConstructor are trained on random crops
  (jointly with the synthesizer), then run once on the whole material to build the grids.
- "encoder+refine": as above for part of the budget, then the constructed grids become free parameters
  and are refined with the synthesizer, as learned image codecs refine latents.
- "grids": free grids from random init (the NTC way); no encoder.
- "warm": the warm start (models/warm_start.py): an encoder and synthesizer trained across many materials
  build the grids and start the synthesizer; both are then refined as in "grids".
"""

from __future__ import annotations

import ctypes
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from .compression_model import CompressionModel
from .grid_optimizer import GridAdam
from .grid_sampler import MipRun, texel_index_uv
from .layout import MapInfo
from .presets import Preset
from .spec import QUANT_RANGE
from .warm_start import load_shared, warm_start

METHODS = ("grids", "warm", "encoder+refine", "encoder")


@dataclass
class FitConfig:
    preset: Preset
    method: str = "grids"
    steps: int | None = None  # budget: a step count (reproducible) ...
    seconds: float | None = 300.0  # ... or wall time (the step count then depends on the machine)
    seed: int = 0
    batch: int = 8192  # texels a step: at 120 s, 8192 beat 16384 at mips 0-4 on rocks and tiles (docs/benchmarks.md)
    device: str | None = None  # None: CUDA when present, else CPU
    crop: int = 128  # encoder training crop (mip-0 texels)
    encoder_share: float = 0.5  # part of the budget spent training the encoder in "encoder+refine"
    lr_grids: float = 0.04  # free grids; 0.02 before: at 2000 steps +0.5 dB tiles bpp12, +0.2 rocks bpp16, bpp2.4 equal
    lr_grids_refine: float = 0.01  # grids built by an encoder (warm, encoder+refine) are refined, not restarted
    lr_synthesizer: float | None = None  # free grids; None: the preset's
    lr_encoder: float = 0.001
    lr_synthesizer_encoder: float = 0.003  # with the encoder: 0.01 stalled it at ~17 dB on rocks (measured)
    noise_share: float = 0.6  # uniform-noise quantization for this part of each phase, then straight-through
    # share of samples at mip m ~ falloff^m (mip 0 matters most, coarse mips still get many); None: the preset's
    mip_falloff: float | None = None
    refine_lr_scale: float = 0.5  # the warm start's shared synthesizer is refined, not restarted: lower rate
    # Each mip's texels are drawn without replacement, a new permutation per pass, so every texel is read
    # equally often: at 2000 steps +1.0 dB (rocks bpp16), +0.5 dB (tiles bpp12) at mip 0 over random draws.
    epoch_sampling: bool = True
    # Adam's second moment forgets in ~100 steps (instant-NGP's 0.99), not ~1000 (the default 0.999): the
    # loss falls by orders of magnitude during a fit, and a long memory of the early large gradients keeps
    # later steps small. With eps 1e-15 (also instant-NGP's; tiny gradients stay normalised): at 2000 steps
    # mip 0 +1.5 dB (rocks bpp16), +4.7 dB (tiles bpp12). docs/benchmarks.md, "Adam's memory".
    adam_beta2: float = 0.99
    # The synthesizer's weights are read by every texel (dense gradients): a shorter memory still pays there,
    # at 2000 steps mip 0 +0.2 dB (rocks bpp16), +0.8 dB (tiles bpp12) with the grids kept at 0.99
    adam_beta2_synthesizer: float = 0.95
    adam_eps: float = 1e-15
    # The cosine takes the learning rates down to this share of their start. 0 rather than 0.02: at equal steps mips
    # 1-4 +0.1 to +0.9 dB on rocks, the old chest, tiles and aluminium, mip 0 +0 to +1.2 (docs/benchmarks.md,
    # "The learning rates' floor"); 0.1 lost up to 1 dB.
    lr_floor: float = 0.0
    # Mips 3-4 weigh in the loss at least as much as bpp1's and bpp2.4's falloff (0.55) has them, whatever the preset's
    # falloff draws (`COARSE_MIPS`): at 120 s the presets that favour mip 0 (0.45, 0.4) had mip 4 under the preset
    # below's on every set. Weights rather than more texels: the same step. None: as drawn. docs/benchmarks.md,
    # "The coarse mips' weight in the loss".
    coarse_falloff: float | None = 0.55
    # Mip 0's texels a step, times what the falloff draws of them, each weighing 1 / this in the loss: the objective is
    # the same, its estimate at mip 0 finer. A fine G0 has more values than a fit reads well in 120 s (a 2048x2048 bpp8
    # G0 has 8.4 M; its mip-0 texels are drawn ~3 times in a fit), and more of them a step paid at every mip although
    # the step costs more. None: `auto_mip0_boost` of the material's size (docs/benchmarks.md, "Mip 0's texels a step").
    mip0_boost: float | None = None
    # Mip 1's weight in the loss, times what its texels draw (the loss keeps its scale); None: the preset's
    # (`Preset.mip1_weight`).
    mip1_weight: float | None = None
    # A fit of fewer steps than `SHORT_FIT_STEPS` takes larger ones: free grids' learning rates times
    # `short_fit_scale` of the steps it will make (counted from a time budget's first steps) and of the draws of each
    # mip-0 texel they make. At 1300 steps (30 s of bpp2.4 on this CPU) grids x2 and the synthesizer x1.5 gained
    # 0.5-0.9 dB at mip 0; at 4500-7000 steps x2 gained at most 0.3 dB and lost up to 2.3, so long fits keep the rates
    # they were tuned at (docs/benchmarks.md, "Short fits take larger steps").
    short_fit_lr: bool = True
    # Same seed, same bits: the grids' scatter-adds sum in a fixed order. On CUDA that costs sorted index_put
    # kernels; False lets a GPU fit run its atomic adds (bench_capacity's `deterministic=0`).
    deterministic: bool = True
    # The synthesizer's training arithmetic in bfloat16 (its weights stay float32, decoding float32): None picks it
    # where bf16 matmuls are fast (`fast_bf16`). On this project's CPU (AVX512-BF16) a hidden-48 synthesizer then
    # costs what a float32 hidden-32 one did (docs/benchmarks.md, "A wider synthesizer in bfloat16").
    synthesizer_bf16: bool | None = None
    # The part of each phase the synthesizer trains in bfloat16 when it does (above); float32 after it, the
    # straight-through part by default: bf16's cheaper steps explore, float32's settle. At 3000 steps mips 0-4 +0.1 /
    # +0.3 / +0.4 / +0.5 / +0.4 dB (aluminium bpp8, 53-60 dB), +0.02 to +0.19 (old chest bpp8, tiles bpp12), unchanged
    # under ~45 dB, for 2-5% more CPU; float32 throughout gained as much for 20% (docs/benchmarks.md, "bfloat16 to
    # explore, float32 to settle").
    bf16_share: float = 0.6

    def trains_bf16(self, device: torch.device) -> bool:
        """Whether the synthesizer trains in bfloat16 on `device`: as set, or where that is fast."""
        return fast_bf16(device) if self.synthesizer_bf16 is None else bool(self.synthesizer_bf16)

    @property
    def mip1_loss_weight(self) -> float:
        """Mip 1's weight in this fit's loss: its own when set, else the preset's."""
        return self.preset.mip1_weight if self.mip1_weight is None else self.mip1_weight

    @property
    def falloff(self) -> float:
        """The mip falloff this fit samples with: its own when set, else the preset's."""
        return self.preset.mip_falloff if self.mip_falloff is None else self.mip_falloff

    def boost_for(self, width: int, height: int) -> float:
        """The mip-0 boost this fit trains with on a width x height material: its own when set, else automatic."""
        if self.mip0_boost is not None:
            return self.mip0_boost
        return auto_mip0_boost(width, height, self.preset.mip0_boost_growth)

    @property
    def synthesizer_lr(self) -> float:
        """The synthesizer's learning rate with free grids: its own when set, else the preset's."""
        return self.preset.lr_synthesizer if self.lr_synthesizer is None else self.lr_synthesizer


@dataclass
class FitProgress:
    step: int
    fraction: float  # of the whole budget
    loss: float
    psnr: float  # on the training batch (all mips), dB
    elapsed: float
    phase: str


def fast_bf16(device: torch.device) -> bool:
    """Whether bfloat16 matmuls are fast on `device`: a GPU that supports them, a CPU with oneDNN's bf16 path
    (AVX512-BF16 or AMX; elsewhere bf16 is emulated, slower than float32)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def pick_device(requested: str | None = None) -> torch.device:
    if requested:
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class Budget:
    """Progress through a step or time budget, as a fraction in [0, 1]."""

    def __init__(self, steps: int | None, seconds: float | None):
        if not steps and not seconds:
            raise ValueError("give a budget: steps or seconds")
        self.steps, self.seconds = steps, seconds
        self.start = time.perf_counter()
        self.step = 0

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    @property
    def fraction(self) -> float:
        if self.steps:
            return min(1.0, self.step / self.steps)
        return min(1.0, self.elapsed / self.seconds)

    def expected_steps(self) -> float | None:
        """The steps the budget will allow: its own count, or for a time budget the pace so far once
        `PACE_SHARE` of it has passed (None before)."""
        if self.steps:
            return float(self.steps)
        fraction = self.fraction
        return self.step / fraction if fraction >= PACE_SHARE and self.step else None


# A time budget's steps are counted from its pace over this share of it (the first steps, slower, weigh little)
PACE_SHARE = 0.03
# `short_fit_scale`: below this many steps the free grids' learning rates grow, up to twice at half of it; a
# synthesizer up to `NARROW_SYNTHESIZER` wide up to 1.5 times, a wider one not at all: at 1.5 times its rate the 48-wide
# one lost 0.6 dB at 300 steps (the old chest, bpp12), at twice 2.1 dB at 1000 (bpp8)
SHORT_FIT_STEPS = 3000
MAX_SHORT_FIT_SCALE = {"grids": 2.0, "synthesizer": 1.5, "wide synthesizer": 1.0}
NARROW_SYNTHESIZER = 32
# A fit is short by its data too: the scale also stops where it draws each mip-0 texel this many times (steps x the
# share of mip 0 a step draws). A small material read whole every step has seen its texels many times in few steps
# (a 64x64 crop, 250 steps, fell 0.9-3.7 dB at mips 0-4 with either part scaled). At 1024x1024 a fit of 3000 steps
# draws its mip-0 texels 14-26 times; the 30-s fits and the 2048x2048 ones at 120 s, 3-10 times, keep the steps' scale.
SHORT_FIT_PASSES = 20


def short_fit_scale(expected_steps: float, part: str, mip0_share: float = 0.0) -> float:
    """The factor on a free-grid fit's learning rate for `part` (a key of MAX_SHORT_FIT_SCALE) in a fit of
    `expected_steps` steps, each drawing `mip0_share` of mip 0's texels: SHORT_FIT_STEPS / steps, and at most
    SHORT_FIT_PASSES / the draws of each mip-0 texel; at least 1 and at most MAX_SHORT_FIT_SCALE[part]."""
    steps = max(expected_steps, 1.0)
    scale = SHORT_FIT_STEPS / steps
    if mip0_share > 0:
        scale = min(scale, SHORT_FIT_PASSES / (steps * mip0_share))
    return min(MAX_SHORT_FIT_SCALE[part], max(1.0, scale))


# The coarse mips the evaluation measures that the presets' falloffs starve: in the loss, mip 3 and 4 weigh at least
# the share `FitConfig.coarse_falloff` gives them (their texels drawn as the preset's falloff says)
COARSE_MIPS = (3, 4)


# `auto_mip0_boost`: mip-0 texels at which mip 0 gets twice its texels a step, and the most it gets
BOOST_REFERENCE_TEXELS = 1 << 20
MAX_MIP0_BOOST = 4.0
BOOST_GROWTHS = ("side", "area")  # `Preset.mip0_boost_growth`


def auto_mip0_boost(width: int, height: int, growth: str = "side") -> float:
    """`FitConfig.mip0_boost` for a width x height material, at least 1 and at most `MAX_MIP0_BOOST` (a step's cost
    grows with it). `growth` (`Preset.mip0_boost_growth`) "side": 2 x side / 1024 (2 at 1024x1024, 4 at 2048x2048, 1
    at 512x512); "area": area / 1024^2 (1 at 1024x1024, 4 at 2048x2048). Measured at 100-120 s of one thread at
    1024x1024: mip 0 +0.14 / +0.16 dB (rocks bpp2.4 / old chest bpp1), +0.44 / +0.72 (old chest bpp4 / bpp8; 4 gave
    bpp4 +0.22), but bpp16 lost with 2 or 3 (-0.11 / -0.22); at 2048x2048 the BoomBox's bpp8 gained 1.7 / 2.6 dB at mip
    0 with 2 / 4, every mip higher, and bpp12 / bpp16 (two threads) 1.4 / 1.2 dB with 4 rather than 2."""
    if growth not in BOOST_GROWTHS:
        raise ValueError(f"unknown mip-0 boost growth {growth!r}; choose one of {', '.join(BOOST_GROWTHS)}")
    ratio = width * height / BOOST_REFERENCE_TEXELS
    boost = 2.0 * math.sqrt(ratio) if growth == "side" else ratio
    return float(min(MAX_MIP0_BOOST, max(1.0, boost)))


def falloff_shares(falloff: float, mips: int) -> np.ndarray:
    """Each mip's share of a batch, falling as falloff^m, summing to 1."""
    share = np.array([falloff**m for m in range(mips)])
    return share / share.sum()


def loss_weights(share: np.ndarray, coarse_falloff: float | None, mip1_weight: float = 1.0) -> np.ndarray:
    """Each mip's weight in the loss, per texel: 1, but `COARSE_MIPS` weigh what `coarse_falloff` would draw of them
    where `share` draws fewer, and mip 1 `mip1_weight`; scaled so that weights times shares sum to 1 (the loss keeps
    its scale)."""
    weight = np.ones(len(share))
    if len(share) > 1:
        weight[1] = mip1_weight
    if coarse_falloff is not None:
        floor = falloff_shares(coarse_falloff, len(share))
        for m in COARSE_MIPS:
            # past a rounding error's difference only (bpp2.4's own falloff is the floor's)
            if m < len(share) and floor[m] > share[m] * (1 + 1e-9):
                weight[m] = floor[m] / share[m]
    return weight / (weight * share).sum() if (weight != 1).any() else weight


class MipSampler:
    """Random texels across the whole reference mip chain, kept on the training device. With `epochs`, each
    mip's texels are drawn without replacement (a new permutation per pass). A batch is sorted by mip in runs
    the host knows (`runs`); on a GPU the draws are made there, so that a step never waits for the device."""

    def __init__(self, mips: list[np.ndarray], device: torch.device, generator: torch.Generator, falloff: float,
                 epochs: bool = False, coarse_falloff: float | None = None, mip0_boost: float = 1.0,
                 mip1_weight: float = 1.0):
        self.epochs = epochs
        self.orders: list[torch.Tensor | None] = [None] * len(mips)
        self.cursors = [0] * len(mips)
        self.sizes = [(m.shape[1], m.shape[0]) for m in mips]  # (w, h)
        counts = [w * h for w, h in self.sizes]
        self.offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).tolist()
        # Every mip's texels and their uv in one table each, so that a batch is one gather from each (a step's
        # few calls matter on a GPU); `levels` are views of the texels per mip
        self.texels = torch.cat([torch.from_numpy(np.ascontiguousarray(m.reshape(-1, m.shape[-1]))) for m in mips])
        self.texels = self.texels.to(device)
        self.levels = list(self.texels.split(counts))
        self.uv = torch.cat([texel_index_uv(i % w, i // w, w, h)
                             for (w, h), i in ((s, torch.arange(n)) for s, n in zip(self.sizes, counts, strict=True))])
        self.uv = self.uv.to(device)
        self.share = falloff_shares(falloff, len(mips))
        self.weight = loss_weights(self.share, coarse_falloff, mip1_weight)
        self.mip0_boost = mip0_boost  # `FitConfig.mip0_boost`: mip 0 draws this times its share, each weighing 1/it
        self.weight[0] /= mip0_boost  # loss_weights made this array: ours to change
        self._weights: dict[int, torch.Tensor | None] = {}
        self.device, self.gen = device, generator
        # Draws on the CPU keep a CPU fit's bits as they were; a GPU draws with its own generator, seeded from ours
        self.draw_device = device if device.type == "cuda" else torch.device("cpu")
        self.draw_gen = generator if self.draw_device.type == "cpu" else torch.Generator(device).manual_seed(
            int(torch.randint(0, 1 << 62, (), generator=generator)))
        self._mips: dict[int, torch.Tensor] = {}

    def counts(self, batch: int) -> list[int]:
        """Texels a `sample(batch)` draws from each mip: its share of `batch`, mip 0's times the boost."""
        return [max(16, int(round(batch * s * (self.mip0_boost if m == 0 else 1.0)))) for m, s in enumerate(self.share)]

    def runs(self, batch: int) -> tuple[MipRun, ...]:
        """The mips of a `sample(batch)`, in order: what the model reads them by without reading the device."""
        return tuple(MipRun(m, n, *self.sizes[m]) for m, n in enumerate(self.counts(batch)))

    def sample(self, batch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """uv (N, 2), mip (N,), target texels (N, C), sorted by mip (`runs`)."""
        rows = torch.cat([self._draw(m, n) for m, n in enumerate(self.counts(batch))]).to(self.device)
        return self.uv.index_select(0, rows), self._mip_column(batch), self.texels.index_select(0, rows)

    def weights(self, batch: int) -> torch.Tensor | None:
        """Each texel's weight in the loss of a `sample(batch)`, (N, 1); None where every mip weighs the same."""
        if batch not in self._weights:
            self._weights[batch] = None if (self.weight == 1).all() else self._per_texel(self.weight, batch)[:, None]
        return self._weights[batch]

    def _mip_column(self, batch: int) -> torch.Tensor:
        """The mip of each texel of a batch: the same every step, made once (read only)."""
        if batch not in self._mips:
            self._mips[batch] = self._per_texel(range(len(self.sizes)), batch)
        return self._mips[batch]

    def _per_texel(self, values, batch: int) -> torch.Tensor:
        """values[m] for each texel of a `sample(batch)`, (N,)."""
        return torch.cat([torch.full((n,), float(values[m]), device=self.device)
                          for m, n in enumerate(self.counts(batch))])

    def _draw(self, m: int, n: int) -> torch.Tensor:
        """n rows of the tables from mip m: at random, or with `epochs` the next of a pass's permutation."""
        device, gen = self.draw_device, self.draw_gen
        w, h = self.sizes[m]
        count = w * h
        if not self.epochs or n >= count:
            return torch.randint(0, count, (n,), generator=gen, device=device) + self.offsets[m]
        order, at = self.orders[m], self.cursors[m]
        if order is None or at + n > count:
            order, at = torch.randperm(count, generator=gen, device=device) + self.offsets[m], 0
            self.orders[m] = order
        self.cursors[m] = at + n
        return order[at:at + n]

    def sample_crop(self, batch: int, crop: int, max_mip: int) -> tuple[torch.Tensor, ...]:
        """A random crop (aligned so it is a whole crop at every mip up to max_mip) and texels inside it.

        Returns the crop's mip-0 texels (C, crop, crop), global uv, uv inside the crop, mip, targets.
        """
        w0, h0 = self.sizes[0]
        align = 1 << max_mip
        x0 = int(torch.randint(0, (w0 - crop) // align + 1, (1,), generator=self.gen)) * align
        y0 = int(torch.randint(0, (h0 - crop) // align + 1, (1,), generator=self.gen)) * align
        texels = self.levels[0].reshape(h0, w0, -1)[y0:y0 + crop, x0:x0 + crop].permute(2, 0, 1)
        share = self.share[: max_mip + 1] / self.share[: max_mip + 1].sum()
        uvs, local, mips, targets = [], [], [], []
        for m, s in enumerate(share):
            n, cw = max(16, int(round(batch * s))), crop >> m
            w, h = self.sizes[m]
            ix = torch.randint(0, cw, (n,), generator=self.gen).to(self.device)
            iy = torch.randint(0, cw, (n,), generator=self.gen).to(self.device)
            gx, gy = ix + (x0 >> m), iy + (y0 >> m)
            uvs.append(texel_index_uv(gx, gy, w, h))
            local.append(texel_index_uv(ix, iy, cw, cw))
            mips.append(torch.full((n,), float(m), device=self.device))
            targets.append(self.levels[m][gy * w + gx])
        return texels, torch.cat(uvs), torch.cat(local), torch.cat(mips), torch.cat(targets)


def fit_sampler(mips: list[np.ndarray], cfg: FitConfig, device: torch.device, generator: torch.Generator) -> MipSampler:
    """The texel sampler a fit draws its batches from, as `cfg` sets it up."""
    h, w = mips[0].shape[:2]
    return MipSampler(mips, device, generator, cfg.falloff, cfg.epoch_sampling, cfg.coarse_falloff, cfg.boost_for(w, h),
                      cfg.mip1_loss_weight)


def texel_loss(out: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """Mean squared error over a batch's texels, each weighted as its mip weighs (`MipSampler.weights`)."""
    error = (out - target) ** 2
    return torch.mean(error if weights is None else error * weights)


def reuse_large_allocations(limit: int = 1 << 28) -> bool:
    """Let glibc's malloc keep blocks up to `limit` bytes in the heap instead of mmap/munmap-ing them.

    A step's grid gradients are new grid-sized tensors (67 MB at 2048x2048, bpp16); above glibc's 32 MB
    mmap ceiling each one was mapped and zero-faulted in afresh every step, which took fwd+bwd there from
    ~34 to ~58-74 ms (measured, docs/benchmarks.md). False where this is not glibc (nothing to tune).
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # malloc.h
    return bool(libc.mallopt(m_mmap_threshold, limit)) and bool(libc.mallopt(m_trim_threshold, limit))


def cosine(fraction: float, floor: float) -> float:
    """The learning-rate factor at `fraction` of a phase: a cosine from 1 down to `floor` (`FitConfig.lr_floor`)."""
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, fraction)))


def build_model(channels: int, preset: Preset, with_encoder: bool, pairs: bool = False) -> CompressionModel:
    """The model a preset trains; `pairs`: with the preset's G0 digit pairs (`Preset.g0_pairs`)."""
    return CompressionModel(channels, preset.shape, encoder_channels=(64, 128, 256) if with_encoder else None,
                            g0_pairs=preset.g0_pairs if pairs else 0)


def training_model(channels: int, cfg: FitConfig, device: torch.device) -> CompressionModel:
    """The model a fit trains, on `device`, with the synthesizer in the fit's training precision. Free grids train
    the preset's G0 digit pairs; grids built by an encoder or the warm start (trained for the stored shape) do not."""
    model = build_model(channels, cfg.preset, with_encoder=cfg.method not in ("grids", "warm"),
                        pairs=cfg.method == "grids").to(device)
    model.texture_synthesizer.train_dtype = torch.bfloat16 if cfg.trains_bf16(device) else None
    return model


Callback = Callable[[FitProgress], None]


def synthesizer_group(model: CompressionModel, lr: float, cfg: FitConfig) -> dict:
    """The optimizer's parameter group for the synthesizer, with its own beta2 (the grids keep `adam_beta2`)."""
    wide = model.texture_synthesizer.input.out_features > NARROW_SYNTHESIZER
    return {"params": model.texture_synthesizer.parameters(), "lr": lr, "betas": (0.9, cfg.adam_beta2_synthesizer),
            "part": "wide synthesizer" if wide else "synthesizer"}


def make_optimizer(groups: list[dict], cfg: FitConfig) -> GridAdam:
    # fused: one kernel per tensor, ~8x faster over multi-million-cell grids (the grids' own pass is C on the CPU)
    return GridAdam(groups, betas=(0.9, cfg.adam_beta2), eps=cfg.adam_eps, fused=True)


def grid_groups(model: CompressionModel, cfg: FitConfig) -> list[dict]:
    """The grids phase's parameter groups: the grids and the synthesizer, at lower rates where they are
    refined (built by an encoder or the warm start) rather than trained from random."""
    lr_synthesizer = cfg.synthesizer_lr * (cfg.refine_lr_scale if cfg.method == "warm" else 1.0)
    lr_grids = cfg.lr_grids if cfg.method == "grids" else cfg.lr_grids_refine
    return [{"params": model.grids.parameters(), "lr": lr_grids, "part": "grids", "bounds": QUANT_RANGE},
            synthesizer_group(model, lr_synthesizer, cfg)]


def lr_scales(groups: list[dict], budget: Budget, cfg: FitConfig, mip0_share: float) -> list[float] | None:
    """Each group's `short_fit_scale` once the budget's steps are known (None until then); all 1 unless the fit
    trains free grids with `short_fit_lr`."""
    if not (cfg.short_fit_lr and cfg.method == "grids"):
        return [1.0] * len(groups)
    steps = budget.expected_steps()
    if steps is None:
        return None
    return [short_fit_scale(steps, g["part"], mip0_share) for g in groups]


def _run_phase(name: str, model: CompressionModel, groups: list[dict], budget: Budget, span: tuple[float, float],
               cfg: FitConfig, loss_fn: Callable[[str], torch.Tensor], callback: Callback | None,
               mip0_share: float = 0.0) -> None:
    """Optimise until the budget reaches span[1]; lr follows a cosine over the span (times `lr_scales`, a step
    drawing `mip0_share` of mip 0's texels), quantization switches from noise to straight-through after noise_share
    of it and the synthesizer's arithmetic from its training precision to float32 after bf16_share."""
    opt = make_optimizer(groups, cfg)
    base = [g["lr"] for g in opt.param_groups]
    lo, hi = span
    scales = None  # known once the budget's steps are
    synthesizer = model.texture_synthesizer
    low = synthesizer.train_dtype  # the fit's training precision, float32 (None) after bf16_share of the phase
    while budget.fraction < hi:
        local = (budget.fraction - lo) / (hi - lo)
        synthesizer.train_dtype = low if local < cfg.bf16_share else None
        if scales is None:
            scales = lr_scales(opt.param_groups, budget, cfg, mip0_share)
        for g, lr, scale in zip(opt.param_groups, base, scales or [1.0] * len(base), strict=True):
            g["lr"] = lr * scale * cosine(local, cfg.lr_floor)
        loss = loss_fn("noise" if local < cfg.noise_share else "ste")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()  # and keeps the grids in the quantizer's range (`GridAdam`)
        budget.step += 1
        if callback and (budget.step % 25 == 0 or budget.fraction >= hi):
            mse = float(loss.detach())
            callback(FitProgress(budget.step, budget.fraction, mse, -10 * math.log10(max(mse, 1e-12)),
                                 budget.elapsed, name))
    synthesizer.train_dtype = low


def fit(mips: list[np.ndarray], cfg: FitConfig, callback: Callback | None = None,
        layout: list[MapInfo] | None = None) -> CompressionModel:
    """Train a model on a reference mip chain (list of (H_m, W_m, C) float32 arrays, mip 0 first).
    The warm start needs the material's `layout` to place its channels."""
    # Scatter-adds in the grids' backward otherwise sum in thread order: same seed, different bits.
    was = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(cfg.deterministic, warn_only=True)
    try:
        return _fit(mips, cfg, callback, layout)
    finally:
        torch.use_deterministic_algorithms(was)


def _fit(mips: list[np.ndarray], cfg: FitConfig, callback: Callback | None,
         layout: list[MapInfo] | None) -> CompressionModel:
    if cfg.method not in METHODS:
        raise ValueError(f"unknown method {cfg.method!r}; choose one of {', '.join(METHODS)}")
    torch.manual_seed(cfg.seed)
    device = pick_device(cfg.device)
    if device.type == "cpu":
        reuse_large_allocations()
    gen = torch.Generator().manual_seed(cfg.seed)
    sampler = fit_sampler(mips, cfg, device, gen)
    h, w, c = mips[0].shape
    model = training_model(c, cfg, device)
    budget = Budget(cfg.steps, cfg.seconds)

    def grid_loss(quant: str) -> torch.Tensor:
        uv, mip, target = sampler.sample(cfg.batch)
        out = model(uv, mip, quant_mode=quant, mip_runs=sampler.runs(cfg.batch))
        return texel_loss(out, target, sampler.weights(cfg.batch))

    refine_from = 0.0
    if cfg.method == "warm":
        if layout is None:
            raise ValueError("the warm start needs the material's layout")
        warm_start(model, load_shared(cfg.preset), mips[0], layout)
    elif cfg.method != "grids":
        crop = min(cfg.crop, h, w)
        max_mip = int(math.log2(crop)) - int(math.log2(max(model.grid_cells)))  # grids of >= 1 cell
        max_mip = max(0, min(max_mip, len(mips) - 1))

        def encoder_loss(quant: str) -> torch.Tensor:
            texels, uv, local, mip, target = sampler.sample_crop(cfg.batch, crop, max_mip)
            return torch.mean((model(uv, mip, texels=texels, grid_uv=local, quant_mode=quant) - target) ** 2)

        refine_from = cfg.encoder_share if cfg.method == "encoder+refine" else 1.0
        encoder = [p for m in (model.global_transformer, model.grid_constructor) for p in m.parameters()]
        synth_enc = synthesizer_group(model, cfg.lr_synthesizer_encoder, cfg)
        _run_phase("encoder", model, [{"params": encoder, "lr": cfg.lr_encoder}, synth_enc], budget,
                   (0.0, refine_from), cfg, encoder_loss, callback)
        with torch.no_grad():  # run the encoder once on the whole material
            full = sampler.levels[0].reshape(h, w, c).permute(2, 0, 1)
            model.init_grids(w, h, values=model.construct_grids(full, quant_mode="none"))
    else:
        model.init_grids(w, h, generator=gen)

    if refine_from < 1.0:
        _run_phase("grids" if cfg.method == "grids" else "refine", model, grid_groups(model, cfg), budget,
                   (refine_from, 1.0), cfg, grid_loss, callback, sampler.counts(cfg.batch)[0] / (h * w))
    model.fit_steps = budget.step  # recorded in the file: rerun with --steps for an exact reproduction
    model.fit_seconds = budget.elapsed
    return model.eval()
