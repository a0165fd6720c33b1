import sys, glob, numpy as np
from models import ngtc_file
from models.material import load_material
from models.decoder import NeuralTexture
from models.metrics import psnr

def q8(w, bits=8):
    if w.ndim == 1: return w
    w = w.astype(np.float32); qmax = 2**(bits-1)-1
    s = np.abs(w).max(1, keepdims=True) / qmax
    s = s.astype(np.float16).astype(np.float32); s[s == 0] = 1
    return (np.clip(np.round(w / s), -qmax, qmax) * s).astype(np.float32)

setdir, src = sys.argv[1], sys.argv[2]
bits = int(sys.argv[3]) if len(sys.argv) > 3 else 8
mat = load_material(src); mips = mat.mip_chain()
for f in sorted(glob.glob(f"{setdir}/ngtc/*.ngtc")):
    ct = ngtc_file.load(f)
    row = []
    for quant in (False, True):
        if quant: ct.weights = {k: q8(v, bits) for k, v in ct.weights.items()}
        nt = NeuralTexture(ct, "cpu")
        row.append([psnr(nt.decode_mip(m), mips[m]) for m in range(3)])
    r = np.array(row)
    print(f.split('/')[-1], " ".join(f"{a:.2f}/{d:+.3f}" for a, d in zip(r[0], r[1]-r[0])), flush=True)
