"""Point caches (PC2): a mesh's vertex positions per frame, the format Blender's Mesh Cache modifier reads.

PC2 (little-endian): a 32-byte header — ``b"POINTCACHE2\\0"``, int32 version 1, int32 vertex count,
float32 start frame, float32 sample rate (frames per sample), int32 sample count — then, per sample,
the vertex count × 3 float32 positions. :class:`PC2Writer` streams samples into a file (a video's
frames need not fit in memory) and fixes the sample count in the header when it closes. Numpy and
the standard library only: the Blender add-on imports it (prnet_blender.engine_link).
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np

MAGIC = b"POINTCACHE2\0"
VERSION = 1
HEADER = struct.Struct("<12siiffi")  # magic, version, vertices, start frame, sample rate, samples
COUNT_OFFSET = HEADER.size - 4  # where the sample count sits in the header


class PC2Writer:
    """Writes samples of ``n_vertices`` (x, y, z) to the open binary file ``stream`` (positioned at
    its start); :meth:`close` writes the final sample count (the stream stays open: its owner
    closes or moves it)."""

    def __init__(self, stream: BinaryIO, n_vertices: int, *, start_frame: float = 0.0, sample_rate: float = 1.0):
        if n_vertices < 1 or sample_rate <= 0:
            raise ValueError(f"need n_vertices >= 1 and sample_rate > 0, got {n_vertices}, {sample_rate}")
        self.stream, self.n_vertices, self.samples = stream, int(n_vertices), 0
        stream.write(HEADER.pack(MAGIC, VERSION, self.n_vertices, float(start_frame), float(sample_rate), 0))

    def write(self, positions: np.ndarray) -> None:
        """Append one sample: (n_vertices, 3) positions (any float dtype; stored as float32)."""
        positions = np.asarray(positions)
        if positions.shape != (self.n_vertices, 3):
            raise ValueError(f"a sample must be ({self.n_vertices}, 3), got {positions.shape}")
        self.stream.write(np.ascontiguousarray(positions, dtype="<f4").tobytes())
        self.samples += 1

    def close(self) -> None:
        end = self.stream.tell()
        self.stream.seek(COUNT_OFFSET)
        self.stream.write(struct.pack("<i", self.samples))
        self.stream.seek(end)
        self.stream.flush()


def read_pc2(path: str | Path) -> tuple[np.ndarray, float, float]:
    """``(samples (F, V, 3) float32, start frame, sample rate)`` of a PC2 file; ValueError when the
    file is not one or its size disagrees with its header."""
    data = Path(path).read_bytes()
    if len(data) < HEADER.size:
        raise ValueError(f"{path}: too short for a PC2 header")
    magic, version, n, start, rate, count = HEADER.unpack_from(data)
    if magic != MAGIC or version != VERSION:
        raise ValueError(f"{path}: not a PC2 version {VERSION} file")
    if len(data) != HEADER.size + count * n * 12:
        raise ValueError(f"{path}: {len(data)} bytes, the header promises {count} samples of {n} vertices")
    samples = np.frombuffer(data, "<f4", offset=HEADER.size).reshape(count, n, 3)
    return samples.astype(np.float32), float(start), float(rate)
