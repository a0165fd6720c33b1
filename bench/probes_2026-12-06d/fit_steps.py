"""A fixed-step free-grid fit (the whole training loop), for whole-process timing: MAT PRESET STEPS."""
import sys

import torch

from models.bench_speed import preset_of
from models.fit import FitConfig, fit
from models.material import load_material

torch.set_num_threads(2)
mips = load_material(sys.argv[1]).mip_chain()
model = fit(mips, FitConfig(preset_of(sys.argv[2]), steps=int(sys.argv[3]), seconds=None, device="cpu"))
print(f"{model.fit_steps / model.fit_seconds:.2f} steps/s")
