"""The .ngtc container: byte-exact round trip, and clean refusal of damaged or foreign files."""

from __future__ import annotations

import dataclasses
import json
import random
import struct
import zlib

import numpy as np
import pytest

from models import ngtc_file
from models.layout import MapInfo
from models.ngtc_file import HEADER, NgtcError
from models.spec import FORMAT_VERSION


def test_round_trip_is_byte_exact(small_ngtc, tmp_path):
    ct = ngtc_file.from_bytes(small_ngtc)
    again = ngtc_file.to_bytes(ct)
    assert again == small_ngtc
    path = tmp_path / "m.ngtc"
    assert ngtc_file.save(ct, path) == len(small_ngtc)
    assert path.read_bytes() == small_ngtc
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind
    back = ngtc_file.load(path)
    assert np.array_equal(back.g0, ct.g0) and np.array_equal(back.g1, ct.g1)
    assert all(np.array_equal(back.weights[k], v) for k, v in ct.weights.items())


def test_strided_grids_are_stored_in_texel_order(small_ngtc):
    """Grids that are views with other strides (the encoder's are permuted) store the same texels."""
    ct = ngtc_file.from_bytes(small_ngtc)
    h, w, c = ct.g0.shape
    strided = np.ascontiguousarray(ct.g0.transpose(2, 0, 1)).transpose(1, 2, 0)  # same values, (H, W, C) view
    assert not strided.flags["C_CONTIGUOUS"] and np.array_equal(strided, ct.g0)
    ct.g0 = strided
    back = ngtc_file.from_bytes(ngtc_file.to_bytes(ct))
    assert np.array_equal(back.g0, strided)


def test_encoder_grids_survive_storage():
    """The encoder path's grids (refined as free parameters) decode from the file as the model has them."""
    import torch

    from models.compression_model import CompressionModel, decompress
    from models.presets import preset
    from models.quantization import from_codes, to_codes

    torch.manual_seed(0)
    model = CompressionModel(3, preset("t", 4, 4, 4, 16).shape, encoder_channels=(8, 8, 8))
    model.init_grids(64, 32, values=model.construct_grids(torch.rand(3, 32, 64), quant_mode="none"))
    ct = model.compress(64, 32, 7, [MapInfo("basecolor", 3, "srgb", "b.png", 8, 0)])
    back = decompress(ngtc_file.from_bytes(ngtc_file.to_bytes(ct)))
    for g, d in zip(model.grids, back.grids, strict=True):
        assert torch.equal(from_codes(to_codes(g.detach())), d)


def test_grids_of_other_widths_round_trip_and_decode_as_stored():
    """2-bit G0 and 8-bit G1: the file packs each grid at its own width, the decoder reads the model's values."""
    import msgspec
    import torch

    from models.compression_model import CompressionModel, decompress
    from models.decoder_shape import decoder_shape

    torch.manual_seed(0)
    fields = msgspec.to_builtins(preset_shape())
    shape = decoder_shape(**{**fields, "g0_channels": 8, "g0_bits": 2, "g1_bits": 8})
    model = CompressionModel(3, shape, encoder_channels=None)
    model.init_grids(64, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        for g in model.grids:
            g.uniform_(-1, 1)
    ct = model.compress(64, 32, 7, [MapInfo("basecolor", 3, "srgb", "b.png", 8, 0)])
    assert int(ct.g0.max()) == 3 and int(ct.g1.max()) > 15
    data = ngtc_file.to_bytes(ct)
    back = ngtc_file.from_bytes(data)
    assert np.array_equal(back.g0, ct.g0) and np.array_equal(back.g1, ct.g1)
    # the rate counts what is stored: the same codes as 4-bit G0 take 2 more bytes a cell (8 x 2 bits more)
    as_4bit = dataclasses.replace(ct, shape=msgspec.structs.replace(shape, g0_bits=4))
    cells = ct.g0.shape[0] * ct.g0.shape[1]
    assert abs(len(ngtc_file.to_bytes(as_4bit)) - len(data) - 2 * cells) <= 16
    decoder = decompress(back)
    uv, mip = torch.rand(256, 2), torch.zeros(256)
    model.eval()
    with torch.no_grad():
        assert torch.allclose(decoder(uv, mip), model(uv, mip, quant_mode="ste"), atol=2e-3)


def preset_shape():
    from models.presets import get_preset
    return get_preset("bpp4").shape


def test_files_written_before_per_grid_bits_still_load():
    """The bundled file names its one width (quantization bits 4, levels 16, the nibble packing): it loads as
    4-bit grids; the same legacy block beside 2-bit grids is refused."""
    from pathlib import Path

    data = (Path(__file__).resolve().parents[1] / "assets" / "tiles.ngtc").read_bytes()
    payload = data[HEADER.size:]
    (n,) = struct.unpack_from("<Q", payload)
    head = payload[8:8 + n].decode()
    assert '\\"levels\\": 16' in head and "g0_bits" not in head
    ct = ngtc_file.from_bytes(data)
    assert ct.shape.grid_bits == (4, 4)
    meta = json.loads(json.loads(head)["__metadata__"]["ngtc"])
    meta["synthesizer"]["g0_bits"] = 2
    with pytest.raises(NgtcError, match="quantization bits 4, but grids of 2 and 4 bits"):
        ngtc_file._decode_metadata(json.dumps(meta))


def test_rate_is_the_stored_size(small_ngtc):
    ct = ngtc_file.from_bytes(small_ngtc)
    assert ct.info.stored_bytes == len(small_ngtc)
    assert ct.info.stored_bits_per_texel == pytest.approx(len(small_ngtc) * 8 / (ct.width * ct.height), abs=1e-5)


def test_header_fields(small_ngtc):
    magic, version, length, crc, reserved = HEADER.unpack_from(small_ngtc)
    assert magic == b"NGTC" and version == FORMAT_VERSION and reserved == 0
    assert length == len(small_ngtc) - HEADER.size
    assert crc == zlib.crc32(small_ngtc[HEADER.size:])


@pytest.mark.parametrize("cut", [0, 3, 23, 24, 100, -1])
def test_truncated_files_are_refused(small_ngtc, cut):
    data = small_ngtc[: cut if cut >= 0 else len(small_ngtc) + cut]
    with pytest.raises(NgtcError, match=r"^x\.ngtc: (too short|truncated)"):
        ngtc_file.from_bytes(data, "x.ngtc")


def test_many_random_corruptions_are_refused(small_ngtc):
    rng = random.Random(0)
    for _ in range(300):
        data = bytearray(small_ngtc)
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
        with pytest.raises(NgtcError) as e:
            ngtc_file.from_bytes(bytes(data), "bad.ngtc")
        assert str(e.value).startswith("bad.ngtc: ") and "\n" not in str(e.value)


def test_future_version_and_foreign_files(small_ngtc):
    future = bytearray(small_ngtc)
    struct.pack_into("<I", future, 4, FORMAT_VERSION + 1)
    with pytest.raises(NgtcError, match="newer ngtc"):
        ngtc_file.from_bytes(bytes(future), "f.ngtc")
    with pytest.raises(NgtcError, match="bad magic"):
        ngtc_file.from_bytes(b"\x89PNG\r\n\x1a\n" + bytes(40), "img.png")
    with pytest.raises(NgtcError, match="trailing data"):
        ngtc_file.from_bytes(small_ngtc + b"\0", "t.ngtc")


def _reseal(payload: bytes) -> bytes:
    """A file whose checksum is right but whose contents were altered: validation must still catch it."""
    return HEADER.pack(b"NGTC", FORMAT_VERSION, len(payload), zlib.crc32(payload), 0) + payload


def test_inconsistent_contents_with_valid_checksum(small_ngtc):
    payload = small_ngtc[HEADER.size:]
    (n,) = struct.unpack_from("<Q", payload)
    head = payload[8:8 + n].decode()
    for old, new in [('\\"mips\\": 7', '\\"mips\\": 9'), ('\\"g0_cell\\": 2', '\\"g0_cell\\": 8'),
                     ('\\"g0_bits\\": 2', '\\"g0_bits\\": 3'), ('\\"g1_bits\\": 4', '\\"g1_bits\\": 2')]:
        assert old in head, old
        changed = head.replace(old, new)
        changed += " " * (n - len(changed))
        with pytest.raises(NgtcError):
            ngtc_file.from_bytes(_reseal(payload[:8] + changed.encode() + payload[8 + n:]), "c.ngtc")


def test_unwritable_output_keeps_existing_file(small_ngtc, tmp_path):
    with pytest.raises(NgtcError, match="cannot write"):
        ngtc_file.write_atomic(tmp_path / "missing" / "x.ngtc", small_ngtc)
    target = tmp_path / "keep.ngtc"
    target.write_bytes(b"old")
    ngtc_file.write_atomic(target, small_ngtc)
    assert target.read_bytes() == small_ngtc


def test_stored_size_converges_whatever_the_digits(small_ngtc):
    # Rates whose printed digits change with the size itself once made the fixed point oscillate.
    ct = ngtc_file.from_bytes(small_ngtc)
    for seconds in range(200):
        ct.info.seconds = seconds / 7
        data = ngtc_file.to_bytes(ct)
        assert ngtc_file.from_bytes(data).info.stored_bytes == len(data)
