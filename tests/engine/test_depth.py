"""engine.depth: full-resolution depth map and its 8-bit picture."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic import PHOTO_SIZE, layout, posed_face
from tolerances import COVERED_PIXELS, NEAREST_VERTEX_PX, NOSE_TIP_PX

from engine.depth import FARTHEST_LEVEL, NEAREST_LEVEL, depth_image, depth_map
from engine.landmarks import landmarks_from_position_map

NOSE_TIP = 30  # iBUG index of the nose tip


def test_frontal_nose_tip_is_the_nearest_pixel():
    lay = layout()
    face = posed_face()
    depth = depth_map(face.vertices, lay.triangles, PHOTO_SIZE)
    assert depth.shape == PHOTO_SIZE and depth.dtype == np.float32
    y, x = np.unravel_index(np.nanargmax(depth), depth.shape)
    nearest = face.vertices[face.vertices[:, 2].argmax()]
    assert np.hypot(x - nearest[0], y - nearest[1]) <= NEAREST_VERTEX_PX
    tip = landmarks_from_position_map(face.position_map, lay)[NOSE_TIP]
    assert np.hypot(x - tip[0], y - tip[1]) < NOSE_TIP_PX
    assert np.nanmax(depth) == pytest.approx(face.vertices[:, 2].max(), abs=0.5)
    # background: no face at the photo corners
    assert np.isnan(depth[0, 0]) and np.isnan(depth[-1, -1])
    covered = np.isfinite(depth).sum()
    assert COVERED_PIXELS[0] * depth.size < covered < COVERED_PIXELS[1] * depth.size


def test_depth_image_levels():
    depth = np.full((4, 5), np.nan, np.float32)
    depth[1, 1:4] = [10.0, 20.0, 30.0]
    img = depth_image(depth)
    assert img.dtype == np.uint8 and img.shape == (4, 5)
    assert img[1, 3] == NEAREST_LEVEL and img[1, 1] == FARTHEST_LEVEL
    assert FARTHEST_LEVEL < img[1, 2] < NEAREST_LEVEL
    assert (img[np.isnan(depth)] == 0).all()
    fixed = depth_image(depth, z_range=(0.0, 40.0))
    assert fixed[1, 1] < fixed[1, 2] < fixed[1, 3] < NEAREST_LEVEL


def test_depth_image_edge_cases():
    assert (depth_image(np.full((3, 3), np.nan)) == 0).all()
    flat = depth_image(np.ones((2, 2)))
    assert (flat == NEAREST_LEVEL).all()
    with pytest.raises(ValueError):
        depth_image(np.ones((2, 2)), z_range=(5.0, 1.0))
    with pytest.raises(ValueError, match=r"\(2, 2, 1\)"):
        depth_image(np.ones((2, 2, 1)))
