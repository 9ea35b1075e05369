"""Quarter turns of a photo, for faces lying on their side.

The cascades find upright faces only, and the network was trained on crops turned by at most ±15°,
so a face lying down (a person on a bed, a phone photo held sideways without an EXIF orientation) is
missed. ``Reconstructor.locate`` then searches the photo again turned a quarter turn each way
(``numpy.rot90``, exact: no resampling) and reports what it finds in the photo's own frame.

Pixel centres sit at integer coordinates (as in ``cv2.warpAffine`` and engine.crop), so a quarter
turn maps pixel centres onto pixel centres. For an (H, W) photo, ``numpy.rot90(photo, k)`` shows the
point (x, y) of the photo at

* k = 1 (counter-clockwise): (y, W − 1 − x);
* k = 3 (clockwise): (H − 1 − y, x);

both are rotations (determinant +1), so meshes keep their winding and z (toward the camera) is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .crop import CropTransform
from .types import BoundingBox

QUARTER_TURNS = (1, 3)  # numpy.rot90 k tried when an upright photo shows no face: a quarter turn each way


def turn_image(image: np.ndarray, k: int) -> np.ndarray:
    """(H, W, …) photo turned k quarter turns counter-clockwise (``numpy.rot90``), contiguous."""
    return np.ascontiguousarray(np.rot90(image, k))


def _check(k: int) -> int:
    if k % 4 not in (0, 1, 3):
        raise ValueError(f"quarter turns supported: 0, 1, 3 (counter-clockwise); got {k}")
    return k % 4


def to_turned(points: np.ndarray, k: int, photo_hw: tuple[int, int]) -> np.ndarray:
    """(..., 2|3) points of the (H, W) photo → the frame of ``turn_image(photo, k)`` (z unchanged)."""
    h, w = photo_hw
    p = np.array(points, dtype=np.float64, copy=True)
    x, y = p[..., 0].copy(), p[..., 1].copy()
    k = _check(k)
    if k == 1:
        p[..., 0], p[..., 1] = y, (w - 1) - x
    elif k == 3:
        p[..., 0], p[..., 1] = (h - 1) - y, x
    return p


def from_turned(points: np.ndarray, k: int, photo_hw: tuple[int, int]) -> np.ndarray:
    """(..., 2|3) points in the frame of ``turn_image(photo, k)`` → the (H, W) photo's frame; the
    inverse of :func:`to_turned`: turning the (W, H) turned photo on by the remaining 4 − k quarter
    turns brings it back upright."""
    h, w = photo_hw
    return to_turned(points, 4 - _check(k), (w, h))


def box_from_turned(box: BoundingBox, k: int, photo_hw: tuple[int, int]) -> BoundingBox:
    """The box (in the turned photo) as a box of the photo: its corners turned back."""
    corners = from_turned(np.array([[box.left, box.top], [box.right, box.bottom]]), k, photo_hw)
    (x0, y0), (x1, y1) = corners.min(axis=0), corners.max(axis=0)
    return BoundingBox(float(x0), float(y0), float(x1), float(y1), box.score)


@dataclass(frozen=True, slots=True)
class TurnedCrop:
    """A crop cut from the photo turned ``k`` quarter turns: crop px ↔ the (unturned) photo's px.

    The point maps of :class:`engine.crop.CropTransform` (``to_crop``, ``to_image``), so the read-out,
    landmarks and pose of a face found in a turned photo land in the photo's own frame."""

    crop: CropTransform  # crop of turn_image(photo, k)
    k: int
    photo_hw: tuple[int, int]  # (H, W) of the photo before turning

    def to_crop(self, points: np.ndarray) -> np.ndarray:
        """(..., 2|3) photo px → crop px."""
        return self.crop.to_crop(to_turned(points, self.k, self.photo_hw))

    def to_image(self, points: np.ndarray) -> np.ndarray:
        """(..., 2|3) crop px → photo px; the exact inverse of :meth:`to_crop`."""
        return from_turned(self.crop.to_image(points), self.k, self.photo_hw)
