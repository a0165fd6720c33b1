"""Milliseconds of the synthesizer's forward + backward alone, bpp4's shape, 12735 texels, bf16 and float32."""
import time

import torch

from models.fit import reuse_large_allocations
from models.texture_synthesizer import TextureSynthesizer

torch.set_num_threads(2)
reuse_large_allocations()
n = 12735
for dtype in (torch.bfloat16, None):
    s = TextureSynthesizer(24, 8, 7, 48, 4, 10, "silu")
    s.train_dtype = dtype
    s.train()
    feats = torch.rand(n, 32, requires_grad=True)
    uv, mip = torch.rand(n, 2), torch.zeros(n)
    times = []
    for i in range(40):
        t0 = time.perf_counter()
        out = s(feats, uv, mip)
        t1 = time.perf_counter()
        out.square().mean().backward()
        t2 = time.perf_counter()
        s.zero_grad(set_to_none=True)
        feats.grad = None
        if i >= 10:
            times.append((t1 - t0, t2 - t1))
    f = sorted(t[0] for t in times)[15] * 1000
    b = sorted(t[1] for t in times)[15] * 1000
    print(f"{dtype}: forward {f:.2f} ms backward {b:.2f} ms total {f + b:.2f}")
