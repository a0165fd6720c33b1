"""Probe (not kept): G0 coarse to fine. For the first TIE_STEPS steps each 2 x 2 block of G0's cells is tied (averaged
after every optimizer step), so that a block learns from four cells' reads; then the cells go free.

    TIE_STEPS=300 OMP_NUM_THREADS=1 python bench/probes_2026-12-05/tied_g0.py MATERIAL --preset bpp12 \\
        --steps 1200 --mips 5

Arguments: models.bench_capacity's.
"""

from __future__ import annotations

import os

import torch

from models import bench_capacity
from models import compression_model as cm

TIE_STEPS = int(os.environ.get("TIE_STEPS", "0"))
shipped_after = cm.CompressionModel.after_optimizer_step_


def after_optimizer_step_(self) -> None:
    shipped_after(self)
    self.steps_tied = getattr(self, "steps_tied", 0) + 1
    if self.steps_tied <= TIE_STEPS:
        with torch.no_grad():
            h, w, c = self.grids[0].shape
            blocks = self.grids[0].view(h // 2, 2, w // 2, 2, c)
            blocks.copy_(blocks.mean(dim=(1, 3), keepdim=True).expand_as(blocks))


cm.CompressionModel.after_optimizer_step_ = after_optimizer_step_

if __name__ == "__main__":
    bench_capacity.main()
