"""Probe: K times the mip-0 texels a step (the coarse mips' counts as they are), each weighing 1/K in the loss, so the
objective stays the same and only its mip-0 estimate is finer. Runs `python -m models.bench_capacity` with every fit's
boost set to K (`FitConfig.mip0_boost`, whose automatic rule this replaces): MIP0_BOOST=K python this_file.py ARGS.
(The first runs of this session patched `MipSampler` the same way before the boost was in models/fit.py.)"""
import os
import sys

from models import bench_capacity, fit

K = float(os.environ.get("MIP0_BOOST", "1"))
fit.auto_mip0_boost = lambda *size: K

if __name__ == "__main__":
    sys.argv[0] = "bench_capacity"
    bench_capacity.main()
