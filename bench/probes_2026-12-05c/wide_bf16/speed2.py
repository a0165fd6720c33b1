import sys, time, torch, msgspec
from models.material import load_material
from models.fit import FitConfig, fit
from models.presets import PRESETS
torch.set_num_threads(int(sys.argv[1]))
chain = load_material(".cache/data/eval/stk-old-chest").mip_chain()
base = PRESETS["bpp16"]
variants = [("h32 fp32", 32, False), ("h48 bf16", 48, True), ("h32 bf16", 32, True), ("h48 fp32", 48, False)]
for rep in range(2):
    for name, hidden, bf16 in variants:
        p = base.renamed("x", msgspec.structs.replace(base.shape, hidden_dim=hidden))
        t = time.perf_counter()
        fit(chain, FitConfig(p, steps=200, seconds=None, synthesizer_bf16=bf16))
        print(f"{sys.argv[1]} threads {name}: {200 / (time.perf_counter() - t):.1f} steps/s", flush=True)
