"""Test videos made from a still photo: the photo moved by a known roll, shift and zoom per frame.

:func:`moving_clip` writes the clip (Motion-JPEG AVI: every frame re-encoded, as a camera's stream
is) and returns each frame's similarity, so that a test knows where every landmark of the photo
went and by how much the head turned. Used by tests/engine/test_tracker.py and benchmarks/track_accuracy.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

CLIP_FPS = 25.0
CLIP_SIZE = (640, 480)  # (width, height): a webcam frame
BACKGROUND = 96  # grey around the moved photo
CODEC = "MJPG"


@dataclass(frozen=True, slots=True)
class ClipMotion:
    """Per frame: ``roll`` (degrees, the engine's sign: clockwise as seen), ``matrices`` (F, 2, 3)
    photo px → frame px."""

    roll: np.ndarray
    matrices: np.ndarray

    def move(self, frame: int, points: np.ndarray) -> np.ndarray:
        """(K, 2+) photo px → (K, 2) frame px at ``frame``."""
        m = self.matrices[frame]
        return np.asarray(points, np.float64)[:, :2] @ m[:, :2].T + m[:, 2]


def motion(n_frames: int, *, roll_deg: float = 20.0, shift_px: float = 40.0, zoom: float = 0.15) -> np.ndarray:
    """(F, 4) per frame: roll (degrees), dx, dy (px), scale — a roll 0 → +roll → −roll → 0 with a shift
    and zoom out of phase, so that the three vary independently."""
    t = np.linspace(0.0, 1.0, n_frames)
    roll = roll_deg * np.sin(2 * math.pi * t)
    dx, dy = shift_px * np.sin(4 * math.pi * t), 0.5 * shift_px * np.sin(2 * math.pi * t)
    return np.stack([roll, dx, dy, 1.0 + zoom * np.sin(3 * math.pi * t)], axis=1)


def moving_clip(
    path: Path, photo_rgb: np.ndarray, centre: tuple[float, float], moves: np.ndarray, *, fit: float = 1.0
) -> ClipMotion:
    """Write the clip of ``photo_rgb`` moved by ``moves`` ((F, 4) roll, dx, dy, scale) about ``centre``
    (photo px; ``fit`` scales the photo first), centred in a :data:`CLIP_SIZE` frame."""
    w, h = CLIP_SIZE
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*CODEC), CLIP_FPS, (w, h))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {CODEC} video here")
    rolls, matrices = [], []
    try:
        for roll, dx, dy, scale in moves:
            # cv2 turns counter-clockwise (as seen) for a positive angle: the engine's roll is clockwise
            m = cv2.getRotationMatrix2D(centre, -float(roll), float(scale) * fit)
            m[:, 2] += (w / 2 - centre[0] + dx, h / 2 - centre[1] + dy)
            frame = cv2.warpAffine(photo_rgb, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=(BACKGROUND,) * 3)
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            rolls.append(float(roll))
            matrices.append(m)
    finally:
        writer.release()
    return ClipMotion(np.array(rolls), np.array(matrices))


def still_clip(path: Path, photo_rgb: np.ndarray, centre: tuple[float, float], n_frames: int, *, fit: float = 1.0):
    """The photo unmoved in every frame (each frame encoded anew): for jitter."""
    return moving_clip(path, photo_rgb, centre, np.tile([0.0, 0.0, 0.0, 1.0], (n_frames, 1)), fit=fit)
