"""engine.crc32c and engine.prnet_import.tf_checkpoint: CRC-32C vectors, bit-exact checkpoint round trips, errors."""

from __future__ import annotations

import numpy as np
import pytest
from tf_checkpoint_writer import write_checkpoint, write_table

from engine.prnet_import import crc32c
from engine.prnet_import.tf_checkpoint import CheckpointError, load_checkpoint, read_index, read_table, read_tensor

# Published CRC-32C check values (iSCSI, RFC 3720 §B.4) and the standard "123456789" check.
CRC_VECTORS = [
    (b"123456789", 0xE3069283),
    (bytes(32), 0x8A9136AA),
    (b"\xff" * 32, 0x62A8AB43),
    (bytes(range(32)), 0x46DD794E),
    (b"", 0x0),
]


@pytest.mark.parametrize(("data", "expected"), CRC_VECTORS)
def test_crc32c_matches_published_values(data, expected):
    assert crc32c.crc32c(data) == expected


@pytest.mark.parametrize("n", [crc32c.SMALL, crc32c.SMALL + 1, 70_001, 1 << 20])
def test_vectorised_crc_equals_the_byte_loop(n):
    data = np.random.default_rng(n).integers(0, 256, n, dtype=np.uint8)
    assert crc32c.crc32c(data) == crc32c._raw_small(data.tobytes(), crc32c.U32) ^ crc32c.U32


def test_mask_round_trips():
    for value in (0, 1, 0xE3069283, 0xFFFFFFFF):
        assert crc32c.unmask(crc32c.mask(value)) == value
    assert crc32c.mask(0) == 0xA282EAD8


def _tensors(rng: np.random.Generator) -> dict[str, np.ndarray]:
    out = {
        "a/scalar": np.float32(rng.normal()).reshape(()),
        "a/kernel": rng.normal(size=(4, 4, 3, 16)).astype(np.float32),
        "a/big": rng.normal(size=(70, 300)).astype(np.float32),  # > SMALL bytes: the vector CRC path
        "b/int64": rng.integers(-(2**40), 2**40, size=(5,)).astype(np.int64),
        "b/uint8": rng.integers(0, 256, size=(3, 7)).astype(np.uint8),
        "b/double": rng.normal(size=(2, 3)),
        "b/half": rng.normal(size=(9,)).astype(np.float16),
        "empty": np.zeros((0, 3), np.float32),
    }
    # many names sharing prefixes: several data blocks, restarts, prefix compression
    out |= {
        f"scope/layer_{i}/BatchNorm/moving_variance": rng.normal(size=(i % 5 + 1,)).astype(np.float32)
        for i in range(120)
    }
    return out


def test_checkpoint_round_trips_bit_exactly(tmp_path):
    tensors = _tensors(np.random.default_rng(0))
    prefix = tmp_path / "model"
    write_checkpoint(prefix, tensors, block_size=512, restart_interval=4)
    index = read_index(f"{prefix}.index")
    assert set(index) == set(tensors)
    assert index["a/kernel"].shape == (4, 4, 3, 16) and index["a/kernel"].dtype == np.float32
    loaded = load_checkpoint(prefix)
    for name, expected in tensors.items():
        got = loaded[name]
        assert got.shape == expected.shape and got.dtype == expected.dtype, name
        assert got.tobytes() == np.ascontiguousarray(expected).tobytes(), name
    assert set(load_checkpoint(prefix, names={"a/big"})) == {"a/big"}


def test_table_keeps_sorted_keys_and_values(tmp_path):
    pairs = [(f"k{i:04d}".encode() * (i % 3 + 1), bytes([i % 256]) * (i % 11)) for i in range(300)]
    write_table(tmp_path / "t.index", pairs, block_size=256, restart_interval=3)
    assert read_table(tmp_path / "t.index") == sorted(pairs)


def test_corruption_is_reported(tmp_path):
    prefix = tmp_path / "model"
    write_checkpoint(prefix, {"w": np.arange(12, dtype=np.float32)})
    entry = read_index(f"{prefix}.index")["w"]
    data = tmp_path / "model.data-00000-of-00001"
    raw = bytearray(data.read_bytes())
    raw[5] ^= 0x01
    data.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="crc32c"):
        read_tensor(data, entry)

    index = tmp_path / "model.index"
    table = bytearray(index.read_bytes())
    table[3] ^= 0x01  # inside the first data block
    index.write_bytes(bytes(table))
    with pytest.raises(CheckpointError, match="crc32c"):
        read_index(index)
    index.write_bytes(b"not a table" * 10)
    with pytest.raises(CheckpointError, match="magic"):
        read_index(index)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing")


def _varint_at(buf: bytes, pos: int) -> int:
    value = shift = 0
    while True:
        value |= (buf[pos] & 0x7F) << shift
        if not buf[pos] & 0x80:
            return value
        pos, shift = pos + 1, shift + 7


def test_compressed_blocks_are_refused_clearly(tmp_path):
    write_checkpoint(tmp_path / "m", {"w": np.ones(3, np.float32)})  # one data block, then the metaindex
    index = tmp_path / "m.index"
    table = bytearray(index.read_bytes())
    metaindex_offset = _varint_at(table, len(table) - 48)  # the footer starts with the metaindex handle
    table[metaindex_offset - 5] = 1  # the data block's type byte: 1 = snappy
    index.write_bytes(bytes(table))
    with pytest.raises(CheckpointError, match="snappy"):
        read_index(index)
