"""Profile a free-grid training step (torch.profiler, self CPU time per op) for one preset and quantization mode."""
import sys

from step_setup import training_setup
from torch.profiler import ProfilerActivity, profile, record_function

from models.fit import grid_groups, make_optimizer, texel_loss

mat, preset, quant = sys.argv[1], sys.argv[2], sys.argv[3]
bf16 = len(sys.argv) > 4 and sys.argv[4] == "bf16"
cfg, sampler, model = training_setup(mat, preset)
if not bf16:
    model.texture_synthesizer.train_dtype = None
opt = make_optimizer(grid_groups(model, cfg), cfg)


def step():
    uv, mip, target = sampler.sample(cfg.batch)
    with record_function("P:grid sampler"):
        feats = model.grid_features(uv, mip, quant, sampler.runs(cfg.batch))
    with record_function("P:synthesizer"):
        out = model.texture_synthesizer(feats, uv, mip)
    opt.zero_grad(set_to_none=True)
    with record_function("P:backward"):
        texel_loss(out, target, sampler.weights(cfg.batch)).backward()
    with record_function("P:optimizer"):
        opt.step()


for _ in range(20):
    step()
with profile(activities=[ProfilerActivity.CPU]) as prof:
    for _ in range(50):
        step()
print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=40))

if len(sys.argv) > 5:
    with profile(activities=[ProfilerActivity.CPU], with_stack=True) as prof:
        for _ in range(20):
            step()
    rows = prof.key_averages(group_by_stack_n=4)
    rows = sorted(rows, key=lambda e: -e.self_cpu_time_total)[:45]
    for e in rows:
        stack = " | ".join(s.split("/")[-1] for s in e.stack[:4] if "torch/" not in s)
        print(f"{e.self_cpu_time_total / 20 / 1000:7.3f} ms {e.count // 20:4d}x {e.key:28s} {stack}")
