"""Probe: the synthesizer's output layer refit by least squares on the decoded (float32) last hidden layer of a stored
file, over every texel of mips 0..M-1, then rounded to fp16 as the file stores it. Training ran the hidden layers in
bfloat16 on sampled texels; decoding runs them in float32 on all of them: is the trained output layer short of the
optimum for what is decoded?

    python bench/probes_2026-12-05f/ls_output.py MATERIAL FILE.ngtc [--mips 5] [--weights mip0|train|equal]
"""
from __future__ import annotations

import argparse

import torch

from models.decoder import NeuralTexture
from models.grid_sampler import texel_uv
from models.material import load_material
from models.metrics import psnr


def hidden_and_out(nt: NeuralTexture, m: int) -> tuple[torch.Tensor, torch.Tensor]:
    got = {}
    output = nt.model.texture_synthesizer.output
    hook = output.register_forward_hook(lambda mod, i, o: got.setdefault("h", []).append(i[0]))
    try:
        out = nt.decode(texel_uv(nt.width, nt.height, m, nt.device), float(m))
    finally:
        hook.remove()
    return torch.cat(got["h"]).double(), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("material")
    ap.add_argument("file")
    ap.add_argument("--mips", type=int, default=5)
    ap.add_argument("--weights", default="equal", help="mip0: mip 0 only; equal: each mip's mean MSE alike; "
                    "falloff=F: mip m weighs F^m")
    args = ap.parse_args()
    mat = load_material(args.material)
    ref = mat.mip_chain()
    nt = NeuralTexture.load(args.file, "cpu")
    out_layer = nt.model.texture_synthesizer.output
    ata, aty, before = 0, 0, []
    for m in range(args.mips):
        h, out = hidden_and_out(nt, m)
        y = torch.from_numpy(ref[m].reshape(-1, ref[m].shape[-1])).double()
        before.append(psnr(out.numpy().reshape(ref[m].shape), ref[m]))
        if args.weights == "mip0":
            w = 1.0 if m == 0 else 0.0
        elif args.weights == "equal":
            w = 1.0 / len(h)
        else:
            w = float(args.weights.split("=")[1]) ** m / len(h)
        a = torch.cat([h, torch.ones(len(h), 1, dtype=torch.float64)], 1)
        ata = ata + w * a.T @ a
        aty = aty + w * a.T @ y
    sol = torch.linalg.solve(ata + 1e-9 * torch.eye(len(ata), dtype=torch.float64), aty)  # (H+1, C)
    with torch.no_grad():
        out_layer.weight.copy_(sol[:-1].T.half().float())
        out_layer.bias.copy_(sol[-1].half().float())
    after = [psnr(nt.decode_mip(m), ref[m]) for m in range(args.mips)]
    print(args.file, args.weights)
    print("  before", " / ".join(f"{p:.2f}" for p in before))
    print("  after ", " / ".join(f"{p:.2f}" for p in after))
    print("  delta ", " / ".join(f"{a - b:+.2f}" for a, b in zip(after, before, strict=True)))


if __name__ == "__main__":
    main()
