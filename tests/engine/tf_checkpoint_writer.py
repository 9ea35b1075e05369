"""A small writer of TensorFlow V2 checkpoints (index table + one data shard), for tests only.

Writes what ``tf.train.Saver`` writes, independently of ``engine.prnet_import.tf_checkpoint``'s parsing code:
a LevelDB-format table (prefix-compressed keys, a restart point every ``restart_interval`` keys,
blocks cut at ``block_size`` bytes, each followed by a type byte and a masked CRC-32C), an index
block whose keys are each block's last key, an empty metaindex block and the 48-byte footer. Values
are ``BundleEntryProto`` messages; the empty key holds the ``BundleHeaderProto``. The only shared
piece is ``engine.crc32c`` (itself pinned by published test vectors and by TF-written blocks).
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from engine.prnet_import import crc32c

TABLE_MAGIC = 0xDB4775248B80FB57
DT_ENUM = {
    np.dtype("<f4"): 1,
    np.dtype("<f8"): 2,
    np.dtype("<i4"): 3,
    np.dtype("u1"): 4,
    np.dtype("<i8"): 9,
    np.dtype("<f2"): 19,
}


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field_varint(number: int, value: int) -> bytes:
    return varint(number << 3) + varint(value)


def field_bytes(number: int, value: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(value)) + value


def field_fixed32(number: int, value: int) -> bytes:
    return varint(number << 3 | 5) + struct.pack("<I", value)


def entry_proto(array: np.ndarray, offset: int, raw: bytes) -> bytes:
    shape = b"".join(field_bytes(2, field_varint(1, d)) for d in array.shape)
    return (
        field_varint(1, DT_ENUM[array.dtype.newbyteorder("<")])
        + field_bytes(2, shape)
        + field_varint(4, offset)
        + field_varint(5, len(raw))
        + field_fixed32(6, crc32c.mask(crc32c.crc32c(raw)))
    )


def _block(entries: list[tuple[bytes, bytes]], restart_interval: int) -> bytes:
    body, restarts, previous = bytearray(), [], b""
    for i, (key, value) in enumerate(entries):
        shared = 0
        if i % restart_interval == 0:
            restarts.append(len(body))
        else:
            while shared < min(len(key), len(previous)) and key[shared] == previous[shared]:
                shared += 1
        body += varint(shared) + varint(len(key) - shared) + varint(len(value)) + key[shared:] + value
        previous = key
    body += b"".join(struct.pack("<I", r) for r in restarts or [0]) + struct.pack("<I", len(restarts or [0]))
    return bytes(body)


def _append_block(out: bytearray, block: bytes) -> bytes:
    """Append block + trailer to ``out``; return its handle."""
    handle = varint(len(out)) + varint(len(block))
    out += block + b"\x00" + struct.pack("<I", crc32c.mask(crc32c.crc32c(block + b"\x00")))
    return handle


def write_table(
    path: Path, pairs: list[tuple[bytes, bytes]], *, block_size: int = 4096, restart_interval: int = 16
) -> None:
    out, index, current, size = bytearray(), [], [], 0
    for key, value in sorted(pairs):
        current.append((key, value))
        size += len(key) + len(value) + 6
        if size >= block_size:
            index.append((key, _append_block(out, _block(current, restart_interval))))
            current, size = [], 0
    if current:
        index.append((current[-1][0], _append_block(out, _block(current, restart_interval))))
    meta_handle = _append_block(out, _block([], restart_interval))
    index_handle = _append_block(out, _block(index, 1))
    footer = (meta_handle + index_handle).ljust(40, b"\x00") + struct.pack("<Q", TABLE_MAGIC)
    path.write_bytes(bytes(out) + footer)


def write_checkpoint(prefix: Path, tensors: dict[str, np.ndarray], **table_options: int) -> None:
    """``prefix.index`` + ``prefix.data-00000-of-00001`` holding ``tensors`` (little-endian, row-major)."""
    data, pairs = bytearray(), []
    header = field_varint(1, 1) + field_bytes(3, field_varint(1, 1))  # num_shards 1, version {producer 1}
    pairs.append((b"", header))
    for name, array in tensors.items():
        array = np.asarray(array)
        raw = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
        pairs.append((name.encode(), entry_proto(array, len(data), raw)))
        data += raw
    Path(f"{prefix}.data-00000-of-00001").write_bytes(bytes(data))
    write_table(Path(f"{prefix}.index"), pairs, **table_options)
