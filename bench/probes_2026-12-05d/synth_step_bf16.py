"""The synthesizer's training forward and backward, 48 wide, bf16, 8192 texels, one thread: ms a step.

    python bench/probes_2026-12-05d/synth_step_bf16.py   (run it at two commits to compare)
"""

import time

import torch

from models.texture_synthesizer import TextureSynthesizer

STEPS = 40


def main() -> None:
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    synth = TextureSynthesizer(64, 32, 7, hidden_dim=48, activation="silu").train()
    synth.train_dtype = torch.bfloat16
    features = torch.rand(8192, 96, generator=gen, requires_grad=True)
    uv, mip = torch.rand(8192, 2, generator=gen), torch.zeros(8192)

    def step() -> None:
        synth(features, uv, mip).square().mean().backward()

    for _ in range(5):
        step()
    start = time.perf_counter()
    for _ in range(STEPS):
        step()
    print(f"{1000 * (time.perf_counter() - start) / STEPS:.2f} ms a step")


if __name__ == "__main__":
    main()
