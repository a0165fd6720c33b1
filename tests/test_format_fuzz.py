"""A seeded, structure-aware fuzz of the bundled `.ngtc`: over a thousand variants (truncations, bit flips,
and checksum-resealed mutations of every metadata field, of the tensor table and of the tensors), each of
which must either be refused with the format's one-line error or load, decode at mip 0 and at the last mip
to finite texels in [0, 1], and be prepared for the GPU (limits, packed grids and weights, shader defines).
No other outcome: no other exception, no hang (a per-variant alarm), no write.

NGTC_FUZZ_SEED picks another seed (the default is fixed so CI is reproducible)."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import msgspec
import numpy as np
import pytest
import torch
from ngtc_mutate import DELETE, Parts, build, leaf_paths, seal, set_path, split

from models import ngtc_file
from models.decoder import NeuralTexture
from models.ngtc_file import HEADER, CompressedTexture, NgtcError
from viewer.neural_gl import check_limits, decoder_defines, pack_grid, pack_weights

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = (ROOT / "assets" / "tiles.ngtc").read_bytes()
SEED = int(os.environ.get("NGTC_FUZZ_SEED", "20261201"))
PER_VARIANT_S = 10  # far above the slowest legitimate variant (~0.05 s): only a hang trips it
VALUES = [DELETE, None, True, False, 0, -1, 1, 3, 2**31, 2**63, -(2**63), 0.5, 8.0, -0.0, float("nan"),
          float("inf"), 1e308, "", "x", "8", "../../etc/passwd", "A" * 5000, [], [1, 2], {}, {"a": 1}]
F16_SPECIALS = [0x7C00, 0xFC00, 0x7E00, 0x7BFF, 0xFBFF, 0x0001, 0x0000]  # inf, -inf, NaN, max, -max, tiny, 0


def variants(rng: random.Random) -> Iterator[tuple[str, bytes]]:
    base = split(BUNDLED)
    n = len(BUNDLED)
    for _ in range(120):
        cut = rng.randrange(n)
        yield f"truncated at {cut}", BUNDLED[:cut]
    for _ in range(120):
        data = bytearray(BUNDLED)
        i = rng.randrange(n)
        data[i] ^= 1 << rng.randrange(8)
        yield f"bit flip at {i}", bytes(data)
    for _ in range(60):
        yield "appended bytes", BUNDLED + rng.randbytes(rng.randint(1, 64))
    payload = BUNDLED[HEADER.size:]
    for _ in range(150):  # flips anywhere in the payload, checksum resealed
        data = bytearray(payload)
        i = rng.randrange(len(data))
        data[i] ^= 1 << rng.randrange(8)
        yield f"resealed flip at payload byte {i}", seal(bytes(data))
    paths = leaf_paths(base.meta)
    for path in paths:  # every metadata field, each with several hostile values
        for value in rng.sample(VALUES, 4):
            parts = base.copy()
            set_path(parts.meta, path, value)
            yield f"metadata {path} = {_short(value)}", build(parts)
    for name in sorted(base.table):
        for how in ("dtype", "shape", "offsets", "delete", "duplicate"):
            parts = base.copy()
            entry = parts.table[name]
            if how == "dtype":
                entry["dtype"] = rng.choice(["F32", "U8", "F16", "I64", "BOOL", "??"])
            elif how == "shape":
                entry["shape"] = [rng.choice([0, 1, 2**20, 2**40, -1]) for _ in entry["shape"]]
            elif how == "offsets":
                entry["data_offsets"] = [rng.randrange(len(parts.blob)), rng.randrange(2**40)]
            elif how == "delete":
                del parts.table[name]
            else:
                parts.table[name + "_copy"] = dict(entry)
            yield f"tensor table {name}: {how}", build(parts)
    weights = [k for k in base.table if k.startswith("synthesizer.")]
    for _ in range(80):  # tensor values: fp16 specials in the weights, random bytes in the grids
        parts = base.copy()
        blob = bytearray(parts.blob)
        if rng.random() < 0.6:
            name = rng.choice(weights)
            lo, hi = parts.table[name]["data_offsets"]
            at = lo + 2 * rng.randrange((hi - lo) // 2)
            blob[at:at + 2] = rng.choice(F16_SPECIALS).to_bytes(2, "little")
        else:
            name = rng.choice(["g0", "g1"])
            lo, hi = parts.table[name]["data_offsets"]
            at = rng.randrange(lo, hi)
            blob[at] = rng.randrange(256)
        yield f"tensor {name} value at {at}", build(Parts(parts.meta, parts.table, bytes(blob)))


def _short(value) -> str:
    text = "<delete>" if value is DELETE else repr(value)
    return text if len(text) < 40 else text[:37] + "..."


def _decoder_key(ct: CompressedTexture) -> str:
    """What decoding depends on: variants that differ only in reported info decode identically."""
    h = hashlib.sha256(json.dumps([ct.width, ct.height, msgspec.to_builtins(ct.shape),
                                   msgspec.to_builtins(ct.layout)]).encode())
    for a in (ct.g0, ct.g1, *ct.weights.values()):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def decode_and_prepare(ct: CompressedTexture) -> None:
    nt = NeuralTexture(ct, "cpu")
    gen = torch.Generator().manual_seed(0)
    for mip, texels in ((0, nt.decode(torch.rand(512, 2, generator=gen), 0.0)),
                        (nt.mips - 1, torch.from_numpy(nt.decode_mip(nt.mips - 1)))):
        assert texels.shape[-1] == ct.out_channels, mip
        assert torch.isfinite(texels).all() and texels.min() >= 0 and texels.max() <= 1, mip
    check_limits(ct, "fuzz")
    pack_grid(ct.g0, ct.shape.g0_bits), pack_grid(ct.g1, ct.shape.g1_bits), pack_weights(ct)
    decoder_defines(ct)


class _Hang(Exception):
    pass


def _alarm(_signum, _frame):
    raise _Hang


def test_fuzzed_files_are_refused_or_decode(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # anything written by mistake would land here, and be noticed
    torch.set_num_threads(1)
    rng = random.Random(SEED)
    outcomes, decoded, failures = Counter(), {}, []
    previous = signal.signal(signal.SIGALRM, _alarm)
    try:
        for what, data in variants(rng):
            signal.setitimer(signal.ITIMER_REAL, PER_VARIANT_S)
            try:
                ct = ngtc_file.from_bytes(data, "fuzz.ngtc")
            except NgtcError as e:
                msg = str(e)
                if not msg.startswith("fuzz.ngtc: ") or "\n" in msg:
                    failures.append(f"{what}: badly formed error {msg!r}")
                outcomes["refused"] += 1
                continue
            except _Hang:
                failures.append(f"{what}: loading hung")
                continue
            except Exception as e:  # noqa: BLE001 - any other outcome is the failure being looked for
                failures.append(f"{what}: load raised {type(e).__name__}: {e}")
                continue
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            key = _decoder_key(ct)
            if key not in decoded:
                signal.setitimer(signal.ITIMER_REAL, PER_VARIANT_S)
                try:
                    decode_and_prepare(ct)
                    decoded[key] = None
                except _Hang:
                    decoded[key] = "decoding hung"
                except Exception as e:  # noqa: BLE001
                    decoded[key] = f"decoding raised {type(e).__name__}: {e}"
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
            if decoded[key]:
                failures.append(f"{what}: {decoded[key]}")
            outcomes["accepted"] += 1
    finally:
        signal.signal(signal.SIGALRM, previous)
    total = sum(outcomes.values()) + len(failures)
    print(f"seed {SEED}: {total} variants, {dict(outcomes)}, {len(decoded)} distinct decoders decoded")
    assert total >= 1000
    assert not failures, "\n".join(failures[:20])
    assert outcomes["accepted"] > 50 and outcomes["refused"] > 500  # both paths really exercised
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("seed", [1, 2])
def test_variants_are_reproducible(seed):
    a = [d for _, d in zip(range(400), variants(random.Random(seed)), strict=False)]
    b = [d for _, d in zip(range(400), variants(random.Random(seed)), strict=False)]
    assert a == b
