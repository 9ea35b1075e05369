"""Read TensorFlow checkpoints (format V2, "tensor bundle") with numpy alone — no TensorFlow.

A checkpoint ``PREFIX`` is ``PREFIX.index`` plus ``PREFIX.data-SSSSS-of-NNNNN`` shards. The index is
a LevelDB-format sorted table ("SSTable"): data blocks of prefix-compressed keys with restart points,
an index block pointing at them, a metaindex block, and a 48-byte footer (two block handles, padding,
magic ``0xdb4775248b80fb57``). Every block is followed by a type byte (0 = raw; TensorFlow never
compresses, so snappy is refused with a clear error) and a masked CRC-32C of block + type byte.
Each key is a variable name; its value is a serialized ``BundleEntryProto`` (dtype, shape, shard,
offset, size, masked crc32c of the tensor bytes). The empty key holds the ``BundleHeaderProto``
(number of shards, endianness). Tensor bytes are raw, row-major, little-endian.

The protobuf wire format is decoded by the few lines below (varints, fixed32/64, length-delimited).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import CheckpointError
from . import crc32c

FOOTER_SIZE = 48  # two BlockHandles padded to 40 bytes + 8-byte magic (LevelDB table format)
TABLE_MAGIC = 0xDB4775248B80FB57
BLOCK_TRAILER = 5  # 1 type byte + 4-byte masked crc32c after every block
RAW_BLOCK = 0  # block type byte: uncompressed (1 would be snappy)
BIG_ENDIAN = 1  # BundleHeaderProto.Endianness
# TensorFlow DataType enum → numpy little-endian dtype (the numeric types a weight file can hold)
DTYPES = {1: "<f4", 2: "<f8", 3: "<i4", 4: "u1", 5: "<i2", 6: "i1", 9: "<i8", 10: "?", 19: "<f2"}


@dataclass(frozen=True, slots=True)
class TensorEntry:
    dtype: np.dtype  # numpy dtype of the stored tensor (little-endian)
    shape: tuple[int, ...]  # as TensorFlow stores it (a conv kernel is [h, w, in, out])
    shard: int  # which .data-SSSSS-of-NNNNN file
    offset: int  # byte offset in that shard
    size: int  # bytes
    crc32c: int  # masked CRC-32C of the bytes, as stored


# ---- protobuf wire format ------------------------------------------------------------------------


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise CheckpointError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, value) pairs of one message: ints for varint/fixed, bytes for length-delimited."""
    out, pos = [], 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = int.from_bytes(buf[pos : pos + 8], "little"), pos + 8
        elif wire == 5:
            value, pos = int.from_bytes(buf[pos : pos + 4], "little"), pos + 4
        elif wire == 2:
            n, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + n], pos + n
        else:
            raise CheckpointError(f"unsupported protobuf wire type {wire} (field {number})")
        if pos > len(buf):
            raise CheckpointError(f"truncated protobuf field {number}")
        out.append((number, value))
    return out


def _entry(name: str, value: bytes) -> TensorEntry:
    f: dict[int, int | bytes] = {}
    dims: list[int] = []
    for number, v in _fields(value):
        f[number] = v
        if number == 2:
            dims = [int(dict(_fields(d)).get(1, 0)) for n, d in _fields(v) if n == 2]
    if 7 in f:
        raise CheckpointError(f"variable {name!r} is stored in slices (partitioned), which is not supported")
    code = int(f.get(1, 0))
    if code not in DTYPES:
        raise CheckpointError(f"variable {name!r} has unsupported TensorFlow dtype enum {code}")
    return TensorEntry(
        np.dtype(DTYPES[code]), tuple(dims), int(f.get(3, 0)), int(f.get(4, 0)), int(f.get(5, 0)), int(f.get(6, 0))
    )


# ---- sorted table (LevelDB format) -------------------------------------------------------------


def _block(data: bytes, handle: bytes, path: Path) -> bytes:
    offset, pos = _varint(handle, 0)
    size, _ = _varint(handle, pos)
    if offset + size + BLOCK_TRAILER > len(data):
        raise CheckpointError(f"{path}: block at {offset} (+{size}) runs past the end of the file")
    body, kind = data[offset : offset + size], data[offset + size]
    if kind != RAW_BLOCK:
        raise CheckpointError(
            f"{path}: block compression type {kind} (snappy?) is not supported; "
            "TensorFlow writes checkpoint indexes uncompressed"
        )
    stored = int.from_bytes(data[offset + size + 1 : offset + size + BLOCK_TRAILER], "little")
    if crc32c.mask(crc32c.crc32c(data[offset : offset + size + 1])) != stored:
        raise CheckpointError(f"{path}: block at byte {offset} fails its crc32c check")
    return body


def _block_entries(block: bytes, path: Path) -> list[tuple[bytes, bytes]]:
    if len(block) < 4:
        raise CheckpointError(f"{path}: block too short")
    n_restarts = int.from_bytes(block[-4:], "little")
    end = len(block) - 4 - 4 * n_restarts
    if end < 0:
        raise CheckpointError(f"{path}: block restart array larger than the block")
    entries, pos, key = [], 0, b""
    while pos < end:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        length, pos = _varint(block, pos)
        if shared > len(key) or pos + unshared + length > end:
            raise CheckpointError(f"{path}: corrupt block entry at byte {pos}")
        key = key[:shared] + block[pos : pos + unshared]
        pos += unshared
        entries.append((key, block[pos : pos + length]))
        pos += length
    return entries


def read_table(path: str | Path) -> list[tuple[bytes, bytes]]:
    """All (key, value) pairs of a LevelDB-format table, in key order."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint index not found: {path}")
    data = path.read_bytes()
    if len(data) < FOOTER_SIZE or struct.unpack("<Q", data[-8:])[0] != TABLE_MAGIC:
        raise CheckpointError(f"{path} is not a TensorFlow checkpoint index (no table magic)")
    footer = data[-FOOTER_SIZE:]
    _, pos = _varint(footer, _varint(footer, 0)[1])  # skip the metaindex handle (offset, size)
    index = _block(data, footer[pos:], path)
    pairs = []
    for _, handle in _block_entries(index, path):
        pairs.extend(_block_entries(_block(data, handle, path), path))
    return pairs


# ---- checkpoint --------------------------------------------------------------------------------


def _read_index(path: Path) -> tuple[dict[str, TensorEntry], int]:
    entries, shards = {}, 1
    for key, value in read_table(path):
        name = key.decode("utf-8", "replace")
        if key == b"":
            header = dict(_fields(value))
            if int(header.get(2, 0)) == BIG_ENDIAN:
                raise CheckpointError(f"{path}: big-endian checkpoints are not supported")
            shards = int(header.get(1, 1))
        else:
            entries[name] = _entry(name, value)
    return entries, shards


def read_index(path: str | Path) -> dict[str, TensorEntry]:
    """Variable name → where and how its tensor is stored, from a ``.index`` file."""
    return _read_index(Path(path))[0]


def data_file(prefix: str | Path, shard: int, shards: int) -> Path:
    return Path(f"{prefix}.data-{shard:05d}-of-{shards:05d}")


def read_tensor(data_path: str | Path, entry: TensorEntry) -> np.ndarray:
    """One tensor from its shard, checked against the stored masked crc32c."""
    with open(data_path, "rb") as f:
        f.seek(entry.offset)
        raw = f.read(entry.size)
    if len(raw) != entry.size:
        raise CheckpointError(f"{data_path}: tensor at byte {entry.offset} is truncated ({len(raw)} of {entry.size})")
    if crc32c.mask(crc32c.crc32c(raw)) != entry.crc32c:
        raise CheckpointError(f"{data_path}: tensor at byte {entry.offset} fails its crc32c check (corrupt download?)")
    count = int(np.prod(entry.shape, dtype=np.int64))
    if count * entry.dtype.itemsize != entry.size:
        raise CheckpointError(f"{data_path}: tensor of shape {entry.shape} cannot be {entry.size} bytes")
    return np.frombuffer(raw, dtype=entry.dtype).astype(entry.dtype.newbyteorder("="), copy=True).reshape(entry.shape)


def load_checkpoint(prefix: str | Path, *, names: set[str] | None = None) -> dict[str, np.ndarray]:
    """Every variable of the checkpoint at ``prefix`` (or only ``names``) as numpy arrays."""
    index_path = Path(f"{prefix}.index")
    if not index_path.is_file():
        raise CheckpointError(f"checkpoint index not found: {index_path}")
    entries, shards = _read_index(index_path)
    out = {}
    for name, entry in entries.items():
        if names is None or name in names:
            path = data_file(prefix, entry.shard, shards)
            if not path.is_file():
                raise CheckpointError(f"checkpoint data file not found: {path}")
            out[name] = read_tensor(path, entry)
    return out
