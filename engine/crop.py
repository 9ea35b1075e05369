"""Square crops: the similarity between a crop box in the photo and the network's S×S input.

The crop box (``roi``) follows the 3DDFA protocol the training crops were cut with: a square box in
image pixels; the crop maps its left/top corner to (0, 0) and its side to S pixels. A model may ask
for a tighter crop than the roi (``zoom`` > 1, bundle.json ``inference.crop_zoom``): the crop is then
the roi shrunk about its centre to side / zoom, so the face fills more of the network's input. Position maps
predicted in the crop frame go back to the image frame through :meth:`CropTransform.to_image`
(x, y by the inverse similarity, z divided by the same scale).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .types import BoundingBox

LANDMARK_ROI_SCALE = math.sqrt(2.0)  # roi side / longer side of the 68-landmark box (3DDFA rule)


@dataclass(frozen=True, slots=True)
class CropTransform:
    """Image px → crop px: ``crop = (image − (left, top)) · scale``."""

    left: float
    top: float
    scale: float  # crop px per image px
    size: int  # S, crop side in px

    @classmethod
    def from_roi(cls, roi: BoundingBox, size: int, zoom: float = 1.0) -> CropTransform:
        """The crop of the square around ``roi`` (side = its longer side / ``zoom``, same centre)."""
        if not zoom > 0:
            raise ValueError(f"crop zoom must be positive, got {zoom}")
        side = max(roi.width, roi.height) / zoom
        cx, cy = roi.center
        return cls(left=cx - side / 2, top=cy - side / 2, scale=size / side, size=size)

    @property
    def matrix(self) -> np.ndarray:
        """(2, 3) float64 affine image → crop, for ``cv2.warpAffine``."""
        s = self.scale
        return np.array([[s, 0.0, -self.left * s], [0.0, s, -self.top * s]])

    def to_crop(self, points: np.ndarray) -> np.ndarray:
        """(..., 2|3) image px → crop px (z, if present, scaled by the same factor)."""
        p = np.array(points, dtype=np.float64, copy=True)
        p[..., 0] = (p[..., 0] - self.left) * self.scale
        p[..., 1] = (p[..., 1] - self.top) * self.scale
        if p.shape[-1] == 3:
            p[..., 2] *= self.scale
        return p

    def to_image(self, points: np.ndarray) -> np.ndarray:
        """(..., 2|3) crop px → image px; the exact inverse of :meth:`to_crop`."""
        p = np.array(points, dtype=np.float64, copy=True)
        p[..., 0] = p[..., 0] / self.scale + self.left
        p[..., 1] = p[..., 1] / self.scale + self.top
        if p.shape[-1] == 3:
            p[..., 2] /= self.scale
        return p


def crop_image(image: np.ndarray, roi: BoundingBox, size: int, zoom: float = 1.0) -> tuple[np.ndarray, CropTransform]:
    """Cut the square ``roi`` (shrunk about its centre by ``zoom``) out of an (H, W, 3) uint8 image,
    resampled to (size, size, 3).

    Pixels outside the photo are black. Area averaging is used when shrinking a lot, so a large
    photo does not alias.
    """
    t = CropTransform.from_roi(roi, size, zoom)
    flags = cv2.INTER_AREA if t.scale < 0.5 else cv2.INTER_LINEAR
    if flags == cv2.INTER_AREA:
        # warpAffine has no area filter: cut the box at full resolution first, then shrink it
        k = int(1 / t.scale)  # integer shrink factor done by area averaging, the rest by warpAffine
        side = (int(math.ceil(size / t.scale)) // k + 2) * k
        x0, y0 = int(math.floor(t.left)), int(math.floor(t.top))
        patch = np.zeros((side, side, 3), np.uint8)
        h, w = image.shape[:2]
        sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x0 + side, w), min(y0 + side, h)
        if sx1 > sx0 and sy1 > sy0:
            patch[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = image[sy0:sy1, sx0:sx1]
        small = cv2.resize(patch, (side // k, side // k), interpolation=cv2.INTER_AREA)
        # small pixel q has its centre at patch coordinate (q + 0.5)·k − 0.5
        sub = CropTransform(left=t.left - x0, top=t.top - y0, scale=t.scale, size=size).matrix
        m = sub.copy()
        m[:, :2] *= k
        m[:, 2] += sub[:, :2] @ np.full(2, 0.5 * k - 0.5)
        out = cv2.warpAffine(small, m, (size, size), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
        return out, t
    out = cv2.warpAffine(image, t.matrix, (size, size), flags=flags, borderValue=(0, 0, 0))
    return out, t


def roi_from_landmarks(landmarks_2d: np.ndarray) -> BoundingBox:
    """Square crop box around 68 landmarks (image px): same centre, side √2 × the longer side."""
    pts = np.asarray(landmarks_2d, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] < 2:
        raise ValueError(f"landmarks must be (K, 2), got {pts.shape}")
    lo, hi = pts[:, :2].min(axis=0), pts[:, :2].max(axis=0)
    cx, cy = (lo + hi) / 2
    half = max(hi - lo) * LANDMARK_ROI_SCALE / 2
    return BoundingBox(cx - half, cy - half, cx + half, cy + half)


def roi_change(old: BoundingBox, new: BoundingBox) -> float:
    """How far ``new`` moved from ``old``: the larger of the centre shift and the change of the
    longer side, as a fraction of ``old``'s longer side (0 = the same box)."""
    side = max(old.width, old.height)
    (ox, oy), (nx, ny) = old.center, new.center
    return max(math.hypot(nx - ox, ny - oy), abs(max(new.width, new.height) - side)) / side


def scaled_roi(roi: BoundingBox, factor: float) -> BoundingBox:
    """The square box around ``roi``'s centre whose side is ``factor`` × its longer side (image px)."""
    if not factor > 0:
        raise ValueError(f"scale factor must be positive, got {factor}")
    cx, cy = roi.center
    half = max(roi.width, roi.height) * factor / 2
    return BoundingBox(cx - half, cy - half, cx + half, cy + half)
