"""Probe: G1's digit pairs, as G0's (models/digit_pairs.py), training only (no stored file, no GLSL), through
bench_capacity. G1 stored as 2-bit channels, G1_PAIRS of their pairs trained as one 4-bit feature each:

    G1_PAIRS=4 OMP_NUM_THREADS=1 PYTHONPATH=. python bench/probes_2026-12-06b/g1_pairs.py MATERIAL --preset P \
        --steps N --threads 1 --mips 5 --variants g1_bits=2+g1_channels=16 --out F

(16 channels of 2 bits store what 8 of 4 bits do; with 4 pairs training sees 4 features of 4 bits and 8 of 2.)
"""

from __future__ import annotations

import os
import sys

from models import bench_capacity, compression_model, digit_pairs
from models.spec import FEATURES_PER_CHANNEL
from models.texture_synthesizer import TextureSynthesizer

PAIRS = int(os.environ["G1_PAIRS"])
_init = compression_model.CompressionModel.__init__


def __init__(self, in_channels, shape, *args, **kwargs):
    _init(self, in_channels, shape, *args, **kwargs)
    if not PAIRS or self.global_transformer is not None:
        return
    self.grid_bits = (self.grid_bits[0], digit_pairs.trained_bits(shape.g1_bits, shape.g1_channels, PAIRS))
    self.grid_channels = (self.grid_channels[0], shape.g1_channels - PAIRS)
    g0_features = self.grid_channels[0] * FEATURES_PER_CHANNEL[shape.g0_sampling]
    self.texture_synthesizer = TextureSynthesizer(g0_features, self.grid_channels[1], in_channels, shape.hidden_dim,
                                                  shape.num_residual_blocks, shape.positional_encoding_levels,
                                                  shape.activation)


compression_model.CompressionModel.__init__ = __init__

if __name__ == "__main__":
    sys.argv[0] = "bench_capacity"
    bench_capacity.main()
