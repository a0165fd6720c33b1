"""Train the warm start (models/warm_start.py): one shared encoder + synthesizer per preset, across many materials.

Two steps, reproducible from the Debian packages (docs/warmstart-data.md):

    # 1. crops: every set of scripts/warmstart_data.py's output, loaded through models.material, in the
    #    canonical channel stack, 256x256 uint8 crops (one per 256 texels of the shorter side, at most 2)
    python scripts/train_warm_start.py crops --sets .cache/warmstart/sets --out .cache/warmstart/crops.npz
    # 2. train one preset on 128x128 sub-crops with flips and transposes (normals turned with them)
    python scripts/train_warm_start.py train --crops .cache/warmstart/crops.npz --preset bpp2.4 --steps 8000

The weights go to assets/warmstart/<preset>.safetensors with the command, steps and data recorded.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models import grid_pyramid  # noqa: E402
from models.fit import cosine  # noqa: E402
from models.grid_sampler import SAMPLING, bilinear  # noqa: E402
from models.material import MaterialError, load_material  # noqa: E402
from models.presets import get_preset  # noqa: E402
from models.quantization import quantize  # noqa: E402
from models.warm_start import (  # noqa: E402
    WARM_CHANNELS,
    WEIGHTS_DIR,
    build_shared,
    canonical_slots,
    save,
    weights_path,
)

CROP_STORED = 256
VIRTUAL_SIZE = 1024  # the positional encoding sees crops as parts of a 1024x1024 texture


# ------------------------------------------------------------------------------------------------ crops
# The four sources; nexuiz-textures (same source package, not named there) stays out.
PACKAGES = ("nexuiz-data", "redeclipse-data", "warzone2100-data", "0ad-data")


def set_folders(root: Path, packages: tuple[str, ...] = PACKAGES) -> list[Path]:
    return sorted(p.parent for pkg in packages for p in (root / pkg).glob("*/basecolor.png"))


def material_crops(folder: Path, rng: np.random.Generator) -> tuple[list[np.ndarray], np.ndarray]:
    """Canonical uint8 crops (256, 256, 8) of one set and which slots it fills."""
    material = load_material(folder, channels={"specular": "luminance"} if (folder / "specular.png").exists() else None)
    slots = canonical_slots(material.layout())
    canon = np.zeros((material.height, material.width, WARM_CHANNELS), np.uint8)
    present = np.zeros(WARM_CHANNELS, bool)
    for channel, slot in enumerate(slots):
        if slot is not None:
            canon[..., slot] = np.round(material.texels[..., channel] * 255)
            present[slot] = True
    h, w = canon.shape[:2]
    count = min(2, min(h, w) // CROP_STORED)
    crops = []
    for _ in range(count):
        y, x = rng.integers(0, h - CROP_STORED + 1), rng.integers(0, w - CROP_STORED + 1)
        crops.append(canon[y:y + CROP_STORED, x:x + CROP_STORED])
    return crops, present


def build_crops(args: argparse.Namespace) -> None:
    folders = set_folders(Path(args.sets))
    if not folders:
        sys.exit(f"{args.sets}: no sets (folders with basecolor.png) found")
    rng = np.random.default_rng(0)
    crops, masks, names, skipped = [], [], [], {}
    start = time.perf_counter()
    for i, folder in enumerate(folders):
        try:
            found, present = material_crops(folder, rng)
        except MaterialError as e:
            skipped[str(folder)] = str(e)
            continue
        crops += found
        masks += [present] * len(found)
        names += [f"{folder.parent.name}/{folder.name}"] * len(found)
        if i % 100 == 0:
            print(f"{i}/{len(folders)} sets, {len(crops)} crops, {time.perf_counter() - start:.0f} s", flush=True)
    out = Path(args.out)
    tmp = out.with_name(out.name + ".tmp.npz")
    np.savez(tmp, crops=np.stack(crops), present=np.stack(masks), names=np.array(names))
    tmp.replace(out)
    print(f"{len(crops)} crops of {len(set(names))} sets -> {out} ({len(skipped)} skipped)")
    out.with_suffix(".skipped.json").write_text(json.dumps(skipped, indent=1))


# ------------------------------------------------------------------------------------------------ training
def dihedral(x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """A random flip / transpose of (B, C, H, W) canonical crops; normal XY (slots 3, 4, stored n*0.5+0.5)
    turn with the surface (OpenGL convention: X = -dh/dcolumn, Y = +dh/drow): a horizontal flip negates X,
    a vertical one Y, and a transpose swaps them negated."""
    if rng.random() < 0.5:
        x = x.flip(-1)
        x[:, 3] = 1 - x[:, 3]
    if rng.random() < 0.5:
        x = x.flip(-2)
        x[:, 4] = 1 - x[:, 4]
    if rng.random() < 0.5:
        x = x.transpose(-1, -2).clone()
        x[:, [3, 4]] = 1 - x[:, [4, 3]]
    return x


class CropBatches:
    def __init__(self, path: Path, crop: int, seed: int):
        data = np.load(path)
        self.crops = torch.from_numpy(data["crops"])  # (N, 256, 256, 8) uint8
        self.present = torch.from_numpy(data["present"])
        self.crop, self.rng = crop, np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.crops)

    def next(self, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = self.rng.integers(0, len(self.crops), count)
        y, x = self.rng.integers(0, CROP_STORED - self.crop + 1, 2)
        x = self.crops[idx, y:y + self.crop, x:x + self.crop].permute(0, 3, 1, 2).float() / 255
        return dihedral(x, self.rng), self.present[idx]


def grid_pair(model, x: torch.Tensor, quant: str) -> tuple[torch.Tensor, torch.Tensor]:
    z = model.global_transformer(x)
    return tuple(quantize(torch.tanh(head(z)).permute(0, 2, 3, 1), quant, b)
                 for head, b in zip(model.grid_constructor.heads, model.grid_constructor.bits, strict=True))


def grids_at_mip(model, g0: torch.Tensor, g1: torch.Tensor, mip: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The batched grids (B, H, W, C) a texel of `mip` reads: as stored, or for a shape with grid pyramids,
    past a grid's cell, its pyramid level (models/grid_pyramid.py: 2x2 means, of the codes filtered by
    [1, 6, 1] / 8 with the prefilter, clamped at the crop's border here), as decoding does."""
    if not model.shape.grid_pyramid:
        return g0, g1
    prefilter = model.shape.pyramid_prefilter
    out = []
    for g, cell in zip((g0, g1), model.grid_cells, strict=True):
        up = grid_pyramid.level(mip, cell, grid_pyramid.levels(*g.shape[1:3], prefilter), prefilter)
        x = g.permute(0, 3, 1, 2)
        if up and prefilter:
            taps = torch.tensor(grid_pyramid.prefilter_weights(1), dtype=x.dtype)  # [1, 6, 1] / 8
            kernel = torch.outer(taps, taps).expand(x.shape[1], 1, 3, 3)
            x, up = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel, groups=x.shape[1]), up - 1
        out.append((F.avg_pool2d(x, 2**up) if up else x).permute(0, 2, 3, 1))
    return out[0], out[1]


def read_grids(model, g0: torch.Tensor, g1: torch.Tensor, local: torch.Tensor, crop: torch.Tensor) -> torch.Tensor:
    """Features of texels at `local` uv inside crop `crop` of batched grids (B, H, W, C), clamped at the
    crop's border: the B grids are read as one tall grid, so all crops take one gather."""
    feats = []
    for g, read in ((g0, SAMPLING[model.grid_sampler.g0_sampling]), (g1, bilinear)):
        b, h, w, c = g.shape
        pos = local * torch.tensor([w, h], dtype=local.dtype) - 0.5
        pos = torch.minimum(pos.clamp(min=0), torch.tensor([w - 1, h - 1], dtype=local.dtype))
        pos[:, 1] += crop * h
        feats.append(read(g.reshape(b * h, w, c), pos, wrap=False))
    return torch.cat(feats, dim=-1)


def loss_on_crops(model, x: torch.Tensor, present: torch.Tensor, texels: int, max_mip: int, falloff: float,
                  quant: str, rng: np.random.Generator) -> torch.Tensor:
    """MSE of the texels the shared model reconstructs at mips 0..max_mip of each crop (present slots only)."""
    b, _, size0, _ = x.shape
    g0, g1 = grid_pair(model, x, quant)
    share = np.array([falloff**m for m in range(max_mip + 1)])
    share /= share.sum()
    feats, uv, mips, targets, crops = [], [], [], [], []
    for m, s in enumerate(share):
        level = F.avg_pool2d(x, 2**m) if m else x
        cw, n = size0 >> m, max(16 * b, int(round(texels * s)))
        crop = torch.from_numpy(rng.integers(0, b, n))
        ix, iy = (torch.from_numpy(rng.integers(0, cw, n)) for _ in range(2))
        offset = torch.from_numpy(rng.integers(0, (VIRTUAL_SIZE >> m) - cw + 1, (b, 2)))[crop]
        local = torch.stack([(ix + 0.5) / cw, (iy + 0.5) / cw], dim=-1).float()
        feats.append(read_grids(model, *grids_at_mip(model, g0, g1, m), local, crop))
        uv.append(torch.stack([ix + offset[:, 0] + 0.5, iy + offset[:, 1] + 0.5], dim=-1) / (VIRTUAL_SIZE >> m))
        mips.append(torch.full((n,), float(m)))
        targets.append(level[crop, :, iy, ix])
        crops.append(crop)
    pred = model.texture_synthesizer(torch.cat(feats), torch.cat(uv).float(), torch.cat(mips))
    mask = present[torch.cat(crops)].float()
    return ((pred - torch.cat(targets)) ** 2 * mask).sum() / mask.sum()


def train(args: argparse.Namespace) -> None:
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    preset = get_preset(args.preset)
    data = CropBatches(Path(args.crops), args.crop, args.seed)
    model = build_shared(preset.shape)
    max_mip = int(math.log2(args.crop)) - int(math.log2(max(model.grid_cells)))
    encoder = [p for m in (model.global_transformer, model.grid_constructor) for p in m.parameters()]
    opt = torch.optim.Adam([{"params": encoder, "lr": args.lr_encoder},
                            {"params": model.texture_synthesizer.parameters(), "lr": args.lr_synthesizer}])
    base = [g["lr"] for g in opt.param_groups]
    rng = np.random.default_rng(args.seed + 1)
    out = Path(args.out) if args.out else weights_path(preset.name)
    out.parent.mkdir(parents=True, exist_ok=True)
    start, running = time.perf_counter(), []
    provenance = {"command": " ".join(sys.argv), "crops": len(data), "steps": args.steps,
                  "data": "nexuiz-data, redeclipse-data, 0ad-data (docs/warmstart-data.md)"}
    for step in range(1, args.steps + 1):
        frac = step / args.steps
        for g, lr in zip(opt.param_groups, base, strict=True):
            g["lr"] = lr * cosine(frac, 0.02)  # the floor the shipped weights were trained with
        x, present = data.next(args.crops_per_step)
        loss = loss_on_crops(model, x, present, args.texels, max_mip, args.mip_falloff,
                             "noise" if frac < args.noise_share else "ste", rng)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        running.append(float(loss.detach()))
        if step % args.log_every == 0 or step == args.steps:
            mse = float(np.mean(running))
            running = []
            print(f"step {step}/{args.steps} loss {mse:.5f} ({-10 * math.log10(mse):.2f} dB) "
                  f"{time.perf_counter() - start:.0f} s", flush=True)
        if step % args.save_every == 0 or step == args.steps:
            save(model, preset, out, provenance | {"steps_done": step,
                                                    "seconds": round(time.perf_counter() - start)})
    print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("crops", help="build the training crops from the sets")
    c.add_argument("--sets", required=True, help="scripts/warmstart_data.py's output folder")
    c.add_argument("--out", required=True, help=".npz to write")
    t = sub.add_parser("train", help="train one preset's shared model")
    t.add_argument("--crops", required=True)
    t.add_argument("--preset", default="bpp2.4")
    t.add_argument("--steps", type=int, default=8000)
    t.add_argument("--crop", type=int, default=128)
    t.add_argument("--crops-per-step", type=int, default=8)
    t.add_argument("--texels", type=int, default=8192, help="texels a step, over all crops")
    # 1e-3 (the default until 2026-12-03) blew the latent up within 10 steps once G1 had the latent's own cell (8):
    # tanh saturated, the encoder's heads got no gradient and the loss stayed at 13 dB; 3e-4 trains (18.6 dB at 300)
    t.add_argument("--lr-encoder", type=float, default=3e-4)
    t.add_argument("--lr-synthesizer", type=float, default=3e-3)
    t.add_argument("--noise-share", type=float, default=0.6)
    t.add_argument("--mip-falloff", type=float, default=0.45)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=0,
                   help="PyTorch threads (0: its default); 1 is ~6x faster than 2 when another process holds a core")
    t.add_argument("--log-every", type=int, default=50)
    t.add_argument("--save-every", type=int, default=500)
    t.add_argument("--out", help=f"weights file (default {WEIGHTS_DIR}/<preset>.safetensors)")
    args = parser.parse_args()
    build_crops(args) if args.command == "crops" else train(args)


if __name__ == "__main__":
    main()
