"""Synthetic faces for the engine tests: the layout's canonical face under a known similarity.

``image = scale · R @ canonical + t`` with R from the HeadPose convention; z is then shifted so the
face's nearest-to-farthest range starts at 0, as in the engine's image frame. Position maps are the
posed canonical vertices written at the layout's face pixels (NaN elsewhere, so any read-out that
touches a pixel off the mask shows up as NaN).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from engine.layout import UVLayout, default_layout
from engine.pose import euler_to_rotation
from engine.position_map import map_from_vertices

PHOTO_SIZE = (480, 640)  # (height, width) px of the synthetic photos
FACE_SCALE = 2.0  # image px per canonical mm: a ≈ 310 px wide face
FACE_CENTRE = (320.0, 240.0)  # image px (x, y)


@cache
def layout() -> UVLayout:
    return default_layout()


@dataclass(frozen=True)
class SyntheticFace:
    vertices: np.ndarray  # (N, 3) float32 image px
    position_map: np.ndarray  # (S, S, 3) float32 image px, NaN off the face mask
    rotation: np.ndarray  # (3, 3) float64
    scale: float
    translation: np.ndarray  # (3,) float64, including the z shift


def posed_face(
    yaw: float = 0.0,
    pitch: float = 0.0,
    roll: float = 0.0,
    *,
    scale: float = FACE_SCALE,
    centre: tuple[float, float] = FACE_CENTRE,
) -> SyntheticFace:
    lay = layout()
    r = euler_to_rotation(yaw, pitch, roll)
    v = scale * lay.canonical_vertices.astype(np.float64) @ r.T
    t = np.array([centre[0], centre[1], -v[:, 2].min()])
    v += t
    v32 = v.astype(np.float32)
    return SyntheticFace(v32, map_from_vertices(v32, lay), r, scale, t)


def gradient_photo(height: int = PHOTO_SIZE[0], width: int = PHOTO_SIZE[1]) -> np.ndarray:
    """(H, W, 3) uint8: red grows to the right, green downward, blue along the diagonal."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    rgb = np.stack([x / (width - 1) * 255, y / (height - 1) * 255, (x + y) / (width + height - 2) * 255], axis=-1)
    return np.rint(rgb).astype(np.uint8)


def locate(rec, photo, **kwargs):
    """(maps, transforms, rois) of the faces ``rec.search`` finds in ``photo`` (engine.face_search)."""
    found = rec.search.find(photo, **kwargs)
    return found.maps, found.transforms, found.rois
