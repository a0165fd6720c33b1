"""Probe: the synthesizer's training arithmetic in bfloat16 for the first part of a fit, float32 after it (the
straight-through part by default), through bench_capacity.

    FP32_FROM=0.6 OMP_NUM_THREADS=1 python bench/probes_2026-12-05g/fp32_late.py MATERIAL --preset P --steps N \
        --threads 1 --mips 5 --variants base --out F
"""

from __future__ import annotations

import os
import sys

from models import bench_capacity, fit

FROM = float(os.environ.get("FP32_FROM", "0.6"))
state: dict = {"model": None}
_training_model, _cosine = fit.training_model, fit.cosine


def training_model(*args, **kwargs):
    state["model"] = model = _training_model(*args, **kwargs)
    return model


def cosine(fraction: float, floor: float) -> float:
    if fraction >= FROM and state["model"] is not None:
        state["model"].texture_synthesizer.train_dtype = None
    return _cosine(fraction, floor)


fit.training_model, fit.cosine = training_model, cosine

if __name__ == "__main__":
    sys.argv[0] = "bench_capacity"
    bench_capacity.main()
