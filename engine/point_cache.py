"""Point caches (PC2): a mesh's vertex positions per frame, the format Blender's Mesh Cache modifier reads.

PC2 (little-endian): a 32-byte header — ``b"POINTCACHE2\\0"``, int32 version 1, int32 vertex count,
float32 start frame, float32 sample rate (frames per sample), int32 sample count — then, per sample,
the vertex count × 3 float32 positions. :class:`PC2Writer` streams samples into a file (a video's
frames need not fit in memory) and fixes the sample count in the header when it closes;
:class:`TrackCache` is a track's cache on disk (the CLI's and the worker's): it starts at the first
frame with a face and holds the last shape through gaps.
"""

from __future__ import annotations

import contextlib
import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .atomic_write import staged_file

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


class TrackCache:
    """A track's mesh per frame read, as a PC2 file at ``path``: it starts at the first frame given a
    shape, then holds one sample per frame read (``every`` video frames apart), a frame without a
    shape (a gap) repeating the last one. Written to a staged file (engine.atomic_write) that
    :meth:`close` moves into place and :meth:`abandon` removes; as a context manager, an exception
    abandons it and a normal exit closes it. ``first_frame`` is the video frame of sample 0."""

    def __init__(self, path: str | Path, every: int) -> None:
        self.path, self.every = Path(path), int(every)
        self.first_frame: int | None = None
        self._stack = contextlib.ExitStack()
        self._writer: PC2Writer | None = None
        self._shape: np.ndarray | None = None

    @property
    def started(self) -> bool:
        return self._writer is not None

    @property
    def vertices(self) -> int | None:
        """Vertices per sample (None before the first shape)."""
        return None if self._writer is None else self._writer.n_vertices

    def add(self, index: int, shape: np.ndarray | None) -> None:
        """The shape ((V, 3) positions) of video frame ``index``, or None in a gap."""
        if shape is not None:
            self._shape = shape
        if self._writer is None:
            if shape is None:
                return
            stream = self._stack.enter_context(staged_file(self.path))
            self._writer = PC2Writer(stream, len(shape), start_frame=index, sample_rate=self.every)
            self.first_frame = index
        self._writer.write(self._shape)

    def close(self) -> bool:
        """Finish the file and move it into place; False when no frame had a shape (no file)."""
        if self._writer is None:
            return False
        self._writer.close()
        self._stack.close()
        return True

    def abandon(self) -> None:
        """Remove the partial file (an error, not an interruption): nothing is left."""
        error = RuntimeError("track cache abandoned")
        self._stack.__exit__(type(error), error, None)

    def __enter__(self) -> TrackCache:
        return self

    def __exit__(self, kind, error, trace) -> None:
        if kind is None:
            self.close()
        else:
            self.abandon()


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
