"""Median milliseconds of the synthesizer's training forward and backward alone: FEATURES WIDTH bf16|f32 [THREADS]
(12735 texels, 4 SiLU blocks, 7 channels; NGTC_NATIVE=0 for PyTorch's, 1 for the C kernel)."""
import os
import sys
import time

import torch

from models.fit import reuse_large_allocations
from models.texture_synthesizer import TextureSynthesizer

torch.set_num_threads(int(sys.argv[4]) if len(sys.argv) > 4 else 2)
reuse_large_allocations()
F, H = int(sys.argv[1]), int(sys.argv[2])
n = 12735
torch.manual_seed(0)
s = TextureSynthesizer(F - 8, 8, 7, H, 4, 10, "silu")
s.train()
s.train_dtype = torch.bfloat16 if sys.argv[3] == "bf16" else None
feats = torch.rand(n, F, requires_grad=True)
uv, mip = torch.rand(n, 2), torch.randint(0, 5, (n,)).float()
g = torch.randn(n, 7)
tf, tb = [], []
for i in range(60):
    t0 = time.perf_counter()
    out = s(feats, uv, mip)
    t1 = time.perf_counter()
    out.backward(g)
    t2 = time.perf_counter()
    s.zero_grad(set_to_none=True)
    feats.grad = None
    if i >= 10:
        tf.append(t1 - t0)
        tb.append(t2 - t1)


def m(v: list) -> float:
    return sorted(v)[len(v) // 2] * 1000


native = os.environ.get("NGTC_NATIVE")
print(f"NGTC_NATIVE={native} {sys.argv[3]}: fwd {m(tf):.2f} bwd {m(tb):.2f} sum {m(tf) + m(tb):.2f}")
