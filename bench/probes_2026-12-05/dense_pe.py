"""Probe (not kept): the positional encoding at other whole frequencies than 1, 2, 4, ..., 512 periods a texture.

    PE_FREQS=1,2,3,4,6,8,12,16,24,32,48,64,96,128,192,256,384,512 OMP_NUM_THREADS=1 \\
        python bench/probes_2026-12-05/dense_pe.py .cache/data/rocks --preset bpp4 --steps 2000 --mips 5

PE_FREQS: comma-separated periods a texture (whole numbers: the encoding tiles); unset: the shipped encoding.
Arguments: models.bench_capacity's.
"""

from __future__ import annotations

import os

import torch

from models import bench_capacity
from models import texture_synthesizer as ts

if os.environ.get("PE_FREQS"):
    FREQS = [float(f) for f in os.environ["PE_FREQS"].split(",")]
    shipped_init = ts.PositionalEncoding.__init__

    def init(self, levels: int) -> None:
        shipped_init(self, levels)
        self.register_buffer("freq", torch.tensor(FREQS), persistent=False)

    ts.PositionalEncoding.__init__ = init
    ts.PositionalEncoding.out_dim = property(lambda self: 4 * len(self.freq))

if __name__ == "__main__":
    bench_capacity.main()
