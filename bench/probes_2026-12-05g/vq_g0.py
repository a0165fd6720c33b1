"""Probe: G0 as vector-quantized cells (a 256-entry learned codebook, 8 bits a cell: bpp2.4's 4 x 2 bits) instead of
2-bit scalar codes, training only, through bench_capacity.

    VQ_SIZE=256 OMP_NUM_THREADS=1 python bench/probes_2026-12-05g/vq_g0.py MATERIAL --preset bpp2.4 --steps N \
        --threads 1 --mips 5 --variants base,g0_channels=8 --out F

Every 2-bit grid (bpp2.4's G0) is read through the codebook: in the noise part of the fit its cells are float
(no quantization); at the first straight-through read the codebook is k-means of the gathered cells, then each
cell is its nearest entry (straight-through gradient) and the entries follow the cells assigned to them (EMA).
The deep pyramid levels pool the grid as quantized the same way. A cell's vector has g0_channels values, so
g0_channels=8 reads 8 features a cell for the same 8 bits (+ the codebook, 256 x 8 fp16 = 4 KB, ~0.03 bpp).
"""

from __future__ import annotations

import os
import sys

import torch

from models import bench_capacity, compression_model, pyramid_atlas, quantization

K = int(os.environ.get("VQ_SIZE", "256"))
DECAY = 0.95
state: dict = {"book": None}
_quantize, _rounded = quantization.quantize, quantization.rounded


def kmeans(x: torch.Tensor, k: int, iters: int = 15) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    book = x[torch.randperm(len(x), generator=g)[:k]].clone()
    for _ in range(iters):
        idx = torch.cdist(x, book).argmin(1)
        sums = torch.zeros_like(book).index_add_(0, idx, x)
        counts = torch.bincount(idx, minlength=k).unsqueeze(1)
        book = torch.where(counts > 0, sums / counts.clamp(min=1), book)
    return book


def nearest(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    book = state["book"]
    flat = x.reshape(-1, x.shape[-1])
    idx = torch.cat([torch.cdist(part, book).argmin(1) for part in flat.split(65536)])
    return book[idx].view_as(x), idx


def vq(x: torch.Tensor, update: bool) -> torch.Tensor:
    d = x.detach().float()
    if state["book"] is None:
        state["book"] = kmeans(d.reshape(-1, d.shape[-1]), K)
    q, idx = nearest(d)
    if update:
        flat = d.reshape(-1, d.shape[-1])
        sums = torch.zeros_like(state["book"]).index_add_(0, idx, flat)
        counts = torch.bincount(idx, minlength=K).unsqueeze(1)
        seen = counts > 0
        means = sums / counts.clamp(min=1)
        state["book"] = torch.where(seen, DECAY * state["book"] + (1 - DECAY) * means, state["book"])
    return x + (q.to(x.dtype) - x.detach())


def quantize(x: torch.Tensor, mode: str, bits: int = 4) -> torch.Tensor:
    if bits != 2:
        return _quantize(x, mode, bits)
    if mode == "noise":
        return x
    if mode == "ste":
        return vq(x, update=torch.is_grad_enabled())
    return _quantize(x, mode, bits)


def rounded(x: torch.Tensor, bits: int = 4) -> torch.Tensor:
    if bits != 2:
        return _rounded(x, bits)
    if state["book"] is None:  # before the straight-through part: the float grid, as "noise" reads it
        return x
    return nearest(x)[0]


compression_model.quantize = quantize
pyramid_atlas.rounded = rounded

if __name__ == "__main__":
    sys.argv[0] = "bench_capacity"
    bench_capacity.main()
