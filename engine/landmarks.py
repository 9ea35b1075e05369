"""The 68 iBUG landmarks of a position map, and their names.

PRNet reads the 68 landmarks straight out of the position map at fixed UV keypoints (§3.1). We read
each one at its exact sub-pixel (u, v) with the mask-aware bilinear read-out of
:mod:`engine.position_map`: at coarse map sizes (128²) two inner-lip keypoints sit on the edge of
the mouth hole, where rounding to a pixel or plain bilinear interpolation would use pixels outside
the face mask (measured on teacher maps: 3.5 and 1.5 NME points lost respectively).

Names follow the iBUG 300-W order; "R"/"L" are the *subject's* right/left, so ``brow_R`` (17–21)
and ``eye_R`` (36–41) appear on the image's left in a frontal photo.
"""

from __future__ import annotations

from types import MappingProxyType

import numpy as np

from .layout import UVLayout
from .position_map import sample_map


def _names(prefix: str, count: int, width: int = 1) -> tuple[str, ...]:
    return tuple(f"{prefix}_{i:0{width}d}" for i in range(count))


# (group, first index, count, digits in the name): the iBUG 68-point regions in order.
_GROUPS = (
    ("jaw", 0, 17, 2),
    ("brow_R", 17, 5, 1),
    ("brow_L", 22, 5, 1),
    ("nose", 27, 9, 1),
    ("eye_R", 36, 6, 1),
    ("eye_L", 42, 6, 1),
    ("mouth", 48, 20, 2),
)

LANDMARK_NAMES: tuple[str, ...] = tuple(name for g, _, n, width in _GROUPS for name in _names(g, n, width))

# group → landmark indices; mouth 48–59 is the outer lip contour, 60–67 the inner one.
LANDMARK_GROUPS = MappingProxyType({g: tuple(range(first, first + n)) for g, first, n, _ in _GROUPS})


# each landmark's left/right twin (iBUG order): jaw and brows reversed, the nose bridge and the
# lips' centre line on themselves, eyes and lip corners swapped (checked against the layout's UV
# symmetry in tests/engine/test_landmarks.py); one line per face part, so left unformatted
# fmt: off
LANDMARK_MIRROR: tuple[int, ...] = (
    *range(16, -1, -1),
    *range(26, 16, -1),
    27, 28, 29, 30,
    *range(35, 30, -1),
    45, 44, 43, 42, 47, 46,
    39, 38, 37, 36, 41, 40,
    *range(54, 47, -1),
    *range(59, 54, -1),
    *range(64, 59, -1),
    *range(67, 64, -1),
)
# fmt: on


def landmarks_from_position_map(position_map: np.ndarray, layout: UVLayout) -> np.ndarray:
    """(S, S, 3) position map → (68, 3) float32 landmarks in the map's frame (image px for image maps).

    Each landmark is the mask-aware bilinear read-out at ``layout.keypoints_uv``.
    """
    position_map = np.asarray(position_map)
    s = layout.size
    if position_map.shape != (s, s, 3):
        raise ValueError(
            f"position map must be ({s}, {s}, 3) for layout {layout.layout_id!r}, got shape {position_map.shape}"
        )
    return sample_map(position_map, layout.face_mask, layout.keypoints_uv)
