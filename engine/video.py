"""Video files as the engine reads them: upright RGB frames with their index and time (OpenCV decoding).

:func:`open_video` checks the file and reads its frame rate and size; :meth:`VideoReader.frames`
yields the frames of a time range, every N-th, as :class:`VideoFrame` (index 0 = the video's
first frame, time = index / fps in seconds). Every failure is an
:class:`~engine.errors.InvalidVideoError` naming the file and the problem.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .errors import InvalidOptionError, InvalidVideoError
from .image_io import MAX_PIXELS

FALLBACK_FPS = 30.0  # a stream that declares no frame rate (some webcam captures) is taken as 30 frames/s
MAX_FPS = 1000.0  # above this a declared rate is a broken header, not a camera


@dataclass(frozen=True, slots=True, eq=False)
class VideoFrame:
    """One decoded frame: ``index`` (0 = first frame of the file), ``time`` (s), ``rgb`` (H, W, 3) uint8."""

    index: int
    time: float
    rgb: np.ndarray


@dataclass(frozen=True, slots=True)
class FrameRange:
    """Which frames to read: from ``start`` to ``end`` seconds (None = the end), every ``every``-th."""

    start: float = 0.0
    end: float | None = None
    every: int = 1

    def __post_init__(self) -> None:
        if not (isinstance(self.start, (int, float)) and math.isfinite(self.start) and self.start >= 0):
            raise InvalidOptionError(f"start must be a time >= 0 s, got {self.start!r}")
        if self.end is not None and not (isinstance(self.end, (int, float)) and self.end > self.start):
            raise InvalidOptionError(f"end must be a time after start ({self.start} s), got {self.end!r}")
        if not isinstance(self.every, int) or isinstance(self.every, bool) or self.every < 1:
            raise InvalidOptionError(f"every must be a whole number >= 1, got {self.every!r}")

    def indices(self, fps: float, frame_count: int | None) -> range:
        """The frame indices this range selects in a video of ``fps`` (frames beyond the file's
        ``frame_count``, when known, are not asked for)."""
        first = int(math.ceil(self.start * fps - 1e-6))
        stop = frame_count if frame_count is not None else 2**62
        if self.end is not None:
            stop = min(stop, int(math.floor(self.end * fps + 1e-6)) + 1)
        return range(first, max(first, stop), self.every)


class VideoReader:
    """An open video: ``fps``, ``frame_size`` (width, height) px, ``frame_count`` (None if the
    container does not say). Use as a context manager, or call :meth:`close`."""

    def __init__(self, path: Path, capture: cv2.VideoCapture, fps: float, frame_size: tuple[int, int], count: int):
        self.path, self._cap, self.fps, self.frame_size = path, capture, fps, frame_size
        self.frame_count = count if count > 0 else None

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._cap.release()

    def count(self, frame_range: FrameRange) -> int | None:
        """How many frames :meth:`frames` gives for ``frame_range`` (None when the container does not
        say how many frames it has)."""
        return len(frame_range.indices(self.fps, self.frame_count)) if self.frame_count else None

    def frames(self, frame_range: FrameRange | None = None) -> Iterator[VideoFrame]:
        """The frames of ``frame_range`` (default: all) in order; stops at the file's end. Frames
        that are skipped are grabbed, not decoded."""
        wanted = (frame_range or FrameRange()).indices(self.fps, self.frame_count)
        if not len(wanted):
            return
        index = wanted.start
        if index and not self._cap.set(cv2.CAP_PROP_POS_FRAMES, index):
            index = 0  # a stream that cannot seek: read from the start
        while index < wanted.stop:
            if index < wanted.start or (index - wanted.start) % wanted.step:
                if not self._cap.grab():
                    return
            else:
                ok, bgr = self._cap.read()
                if not ok:
                    return
                yield VideoFrame(index, index / self.fps, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            index += 1


def open_video(path: str | Path) -> VideoReader:
    """Open a video file for :meth:`VideoReader.frames`; InvalidVideoError when it is missing, not a
    video OpenCV can decode, empty, or its frames are larger than engine.image_io's MAX_PIXELS."""
    path = Path(path)
    if not path.is_file():
        raise InvalidVideoError(f"{path}: no such file")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise InvalidVideoError(f"{path}: not a video this OpenCV build can decode")
    width, height = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    fps = float(cap.get(cv2.CAP_PROP_FPS))
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    if width <= 0 or height <= 0:
        cap.release()
        raise InvalidVideoError(f"{path}: the video has no frames")
    if width * height > MAX_PIXELS:
        cap.release()
        raise InvalidVideoError(f"{path}: frames of {width}×{height} are larger than {MAX_PIXELS:,} pixels")
    if not (math.isfinite(fps) and 0 < fps <= MAX_FPS):
        fps = FALLBACK_FPS
    return VideoReader(path, cap, fps, (width, height), count)
