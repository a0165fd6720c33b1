"""The free-grid training set-up the probes here time: a material's sampler and model for a preset, 2 threads
(`PROBE_THREADS` sets another count)."""
import torch

from models.bench_speed import preset_of
from models.fit import FitConfig, fit_sampler, pick_device, reuse_large_allocations, training_model
from models.material import load_material


def training_setup(material: str, preset: str):
    """(cfg, sampler, model) as `fit`'s grids phase has them, the grids initialised, the model training."""
    torch.set_num_threads(int(__import__("os").environ.get("PROBE_THREADS", "2")))
    reuse_large_allocations()
    mips = load_material(material).mip_chain()
    cfg = FitConfig(preset_of(preset), steps=100, seconds=None, device="cpu")
    dev = pick_device("cpu")
    gen = torch.Generator().manual_seed(0)
    sampler = fit_sampler(mips, cfg, dev, gen)
    h, w, c = mips[0].shape
    model = training_model(c, cfg, dev)
    model.init_grids(w, h, generator=gen)
    model.train()
    return cfg, sampler, model
