"""Probe: other synthesizer nonlinearities, training only (no GLSL), through bench_capacity.

    OMP_NUM_THREADS=1 python bench/probes_2026-12-05g/activations.py MATERIAL --preset P --steps N --threads 1 \
        --mips 5 --variants base --out F   # with ACT=gelu in the environment

The preset's "silu" is replaced by ACT's function (the shape's enum stays valid): gelu (tanh form), sin (SIREN-like: sin of the pre-activation), snake (x + sin^2 x), mish.
"""

from __future__ import annotations

import os
import sys

import torch
from torch import nn

from models import bench_capacity, texture_synthesizer

EXTRA = {
    "gelu": lambda x: nn.functional.gelu(x, approximate="tanh"),
    "sin": torch.sin,
    "snake": lambda x: x + torch.sin(x) ** 2,
    "mish": nn.functional.mish,
}
texture_synthesizer.ACTIVATION["silu"] = EXTRA[os.environ["ACT"]]

if __name__ == "__main__":
    sys.argv[0] = "bench_capacity"
    bench_capacity.main()
