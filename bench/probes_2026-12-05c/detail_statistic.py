import numpy as np, torch, torch.nn.functional as F
from models.material import load_material
from models.metrics import psnr
sets = {"rocks": ".cache/data/rocks", "chest": ".cache/data/eval/stk-old-chest", "walnut": ".cache/data/eval/qt3d-walnut",
        "snow": ".cache/data/eval/stk-snow-rock", "tiles": ".cache/data/tiles", "alu": ".cache/data/eval/qt3d-aluminium-brushed"}
gain = {"rocks": 1.30, "chest": 0.53, "walnut": 0.42, "snow": -0.56, "tiles": -0.66, "alu": -1.71}
for k, p in sets.items():
    m = load_material(p).mip_chain()
    r = []
    for lv in (1, 2, 3):
        t = torch.from_numpy(m[lv]).permute(2, 0, 1)[None]
        up = F.interpolate(t, scale_factor=2**lv, mode="bilinear", align_corners=False)[0].permute(1, 2, 0).numpy()
        r.append(psnr(up, m[0]))
    print(f"{k:7s} gain {gain[k]:+.2f}  up-from-mip1/2/3 {r[0]:.2f} {r[1]:.2f} {r[2]:.2f}  ch {m[0].shape[2]}")
