"""CRC-32C (Castagnoli), as TensorFlow checkpoints and LevelDB tables use it, in numpy.

The CRC register update ``r ← T[(r ⊕ byte) & 0xFF] ⊕ (r ≫ 8)`` (reflected polynomial 0x82F63B78,
init and final xor 0xFFFFFFFF) is linear over GF(2) in the register and the data together. That lets
a large buffer be split into K equal chunks whose raw CRCs (register started at 0) run side by side
as numpy vectors, then be merged pairwise in a tree: ``crc(A‖B) = Z_|B|(crc(A)) ⊕ crc(B)``, where
``Z_n`` — running n zero bytes through the register — is a 32×32 bit matrix applied by four byte
lookups. Zero bytes in front of the data leave a zero register at zero, so the buffer is padded at
the front to K·L bytes and the init value is pushed through ``Z_n`` on its own. About 0.5 s for
16 MB on a busy 2-core CPU, versus tens of seconds for a byte-at-a-time Python loop.

TensorFlow stores *masked* CRCs (so that a CRC of data holding CRCs stays well distributed):
``((crc ≫ 15) | (crc ≪ 17)) + 0xA282EAD8 mod 2³²``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

POLY = 0x82F63B78  # Castagnoli polynomial, bit-reflected
MASK_DELTA = 0xA282EAD8  # TensorFlow / LevelDB crc32c::Mask constant
U32 = 0xFFFFFFFF
SMALL = 4096  # below this many bytes a plain loop is as fast as setting up the vector path
MAX_LANES_LOG2 = 16  # at most 65,536 chunks side by side
LANES_OVER_SQRT_LOG2 = 2  # lanes ≈ 4·√n: fewer Python steps, each on a longer vector
MIN_CHUNK = 64  # bytes per chunk at least, so the tree merge stays cheap


def _byte_table() -> np.ndarray:
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ np.uint32(POLY), table >> 1).astype(np.uint32)
    return table


TABLE = _byte_table()
_TABLE_LIST = [int(x) for x in TABLE]


@lru_cache(maxsize=256)
def _zeros_operator(n: int) -> np.ndarray:
    """Z_n as (4, 256) uint32 byte tables: Z_n(r) = ⊕_k table[k][byte k of r]."""
    cols = np.left_shift(np.uint32(1), np.arange(32, dtype=np.uint32))  # identity: column i = bit i
    if n == 1:
        for _ in range(8):  # one zero byte = eight zero bits
            cols = np.where(cols & 1, (cols >> 1) ^ np.uint32(POLY), cols >> 1).astype(np.uint32)
    else:  # Z_n = Z_a ∘ Z_(n−a), a the highest power of two below n (cached, so O(log n) work in all)
        a = 1 << ((n - 1).bit_length() - 1)
        cols = _apply(_zeros_operator(a), _apply(_zeros_operator(n - a), cols))
    bits = (np.arange(256, dtype=np.uint32)[:, None] >> np.arange(8, dtype=np.uint32)) & 1  # (256, 8)
    tables = np.zeros((4, 256), dtype=np.uint32)
    for k in range(4):
        for j in range(8):
            tables[k] ^= bits[:, j] * cols[8 * k + j]
    return tables


def _apply(tables: np.ndarray, values: np.ndarray) -> np.ndarray:
    """A zeros operator applied to each uint32 in ``values``."""
    v = np.asarray(values, dtype=np.uint32)
    return tables[0][v & 0xFF] ^ tables[1][(v >> 8) & 0xFF] ^ tables[2][(v >> 16) & 0xFF] ^ tables[3][v >> 24]


def _raw_small(data: bytes, register: int) -> int:
    for b in data:
        register = _TABLE_LIST[(register ^ b) & 0xFF] ^ (register >> 8)
    return register


def _raw_vector(buf: np.ndarray) -> int:
    """Raw CRC (register started at 0, no final xor) of a uint8 buffer."""
    n = buf.size
    lanes = 1 << max(0, min(MAX_LANES_LOG2, (n.bit_length() + 1) // 2 + LANES_OVER_SQRT_LOG2))
    while lanes > 1 and n < lanes * MIN_CHUNK:
        lanes //= 2
    length = -(-n // lanes)
    padded = np.zeros(lanes * length, dtype=np.uint8)
    padded[lanes * length - n :] = buf
    columns = np.ascontiguousarray(padded.reshape(lanes, length).T)  # row j = byte j of every chunk
    reg = np.zeros(lanes, dtype="<u4")
    low = reg.view(np.uint8)[0::4]  # the register's low byte (little-endian view, no copy)
    idx = np.empty(lanes, dtype=np.uint8)
    looked_up = np.empty(lanes, dtype=np.uint32)
    eight = np.uint32(8)
    for row in columns:
        np.bitwise_xor(low, row, out=idx)
        TABLE.take(idx, out=looked_up)
        np.right_shift(reg, eight, out=reg)
        np.bitwise_xor(reg, looked_up, out=reg)
    while reg.size > 1:  # merge neighbours: crc(A‖B) = Z_len(B)(crc A) ⊕ crc B
        reg = _apply(_zeros_operator(length), reg[0::2]) ^ reg[1::2]
        length *= 2
    return int(reg[0])


def crc32c(data: bytes | bytearray | memoryview | np.ndarray) -> int:
    """CRC-32C of ``data`` (any buffer; arrays are read as their raw bytes)."""
    if isinstance(data, np.ndarray):
        buf = np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    else:
        buf = np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)
    if buf.size < SMALL:
        return _raw_small(buf.tobytes(), U32) ^ U32
    init_through = int(_apply(_zeros_operator(buf.size), np.array([U32], dtype=np.uint32))[0])
    return (init_through ^ _raw_vector(buf)) ^ U32


def mask(crc: int) -> int:
    """TensorFlow's masked form of a CRC-32C."""
    return ((((crc >> 15) | (crc << 17)) & U32) + MASK_DELTA) & U32


def unmask(masked: int) -> int:
    rot = (masked - MASK_DELTA) & U32
    return ((rot >> 17) | (rot << 15)) & U32
