import sys, torch
from dataclasses import replace
from models.material import load_material
from models.fit import FitConfig, fit
from models.presets import PRESETS, preset
from models.codec import measure
torch.set_num_threads(1)
m = load_material("assets/tiles"); m = m.crop((m.width - 64) // 2, (m.height - 64) // 2, 64, 64)
chain = m.mip_chain()
base = PRESETS["bpp12"]
import msgspec
for name, hidden, bf16 in (("h48 bf16", 48, True), ("h48 fp32", 48, False), ("h32 bf16", 32, True), ("h32 fp32", 32, False)):
    shape = msgspec.structs.replace(base.shape, hidden_dim=hidden)
    p = base.renamed("x", shape)
    model = fit(chain, FitConfig(p, steps=60, seconds=None, batch=2048, synthesizer_bf16=bf16))
    from models.decoder import NeuralTexture
    from models import ngtc_file
    ct = model.compress(m.width, m.height, len(chain), m.layout())
    q = measure(NeuralTexture(ngtc_file.from_bytes(ngtc_file.to_bytes(ct)), "cpu"), chain[:5], m.layout())
    print(name, q.psnr)
