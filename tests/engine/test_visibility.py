"""engine.visibility: the vectorised z-buffer and vertex / landmark visibility."""

from __future__ import annotations

import numpy as np
import pytest
from arrays import assert_close
from synthetic import PHOTO_SIZE, layout, posed_face
from tolerances import FRONTAL_VISIBLE_MIN, HIDDEN_SIDE_SEEN_MAX, NEAR_SIDE_SEEN_MIN, POSITION_PX

from engine.landmarks import LANDMARK_GROUPS, landmarks_from_position_map
from engine.visibility import BUFFER_MAX_SIDE, ZBuffer, depth_buffer, landmark_visibility, vertex_visibility

FAR_JAW = {80: range(12, 17), -80: range(0, 5)}  # yaw → jaw landmarks on the side turned away
NEAR_JAW = {80: range(0, 5), -80: range(12, 17)}


def _plane_triangle():
    """One triangle with z = 2x + 3y + 1 on its (x, y)."""
    xy = np.array([[1.2, 1.1], [8.7, 2.3], [3.1, 7.9]])
    v = np.column_stack([xy, 2 * xy[:, 0] + 3 * xy[:, 1] + 1])
    return v, np.array([[0, 1, 2]])


@pytest.mark.parametrize("order", [[0, 1, 2], [0, 2, 1]])  # both windings rasterise
def test_depth_buffer_interpolates_a_plane(order):
    v, _ = _plane_triangle()
    depth = depth_buffer(v, np.array([order]), 10, 10)
    y, x = np.nonzero(np.isfinite(depth))
    assert len(x) > 15
    assert_close(depth[y, x], 2 * x + 3 * y + 1, POSITION_PX * 10, "z on the plane")
    # pixel centres well outside the triangle are empty; those well inside are covered
    assert np.isnan(depth[0, 9]) and np.isnan(depth[9, 0]) and np.isfinite(depth[3, 4])


def test_depth_buffer_keeps_the_nearest_surface_and_clips_to_the_grid():
    v, _ = _plane_triangle()
    near = v + np.array([0.0, 0.0, 100.0])
    off_right = v + np.array([5.0, 0.0, 1000.0])  # partly beyond the last column: must not wrap around
    depth = depth_buffer(np.vstack([v, near, off_right]), np.array([[0, 1, 2], [3, 4, 5], [6, 7, 8]]), 10, 10)
    y, x = np.nonzero(np.isfinite(depth) & (depth < 500))
    assert_close(depth[y, x], 2 * x + 3 * y + 101, POSITION_PX * 10, "nearest of two stacked planes")
    assert np.nanmax(depth[:, :6]) < 500 and np.nanmax(depth[:, 6:]) > 500


def test_depth_buffer_skips_non_finite_and_degenerate_triangles():
    v, _ = _plane_triangle()
    v = np.vstack([v, [[np.nan, 1.0, 1.0], [2.0, 2.0, 2.0], [4.0, 4.0, 4.0], [6.0, 6.0, 6.0]]])
    depth = depth_buffer(v, np.array([[3, 1, 2], [4, 5, 6]]), 10, 10)
    assert np.isnan(depth).all()


def test_frontal_face_is_nearly_all_visible():
    lay = layout()
    face = posed_face()
    vis = vertex_visibility(face.vertices, lay.triangles)
    assert vis.shape == (lay.n_vertices,) and vis.dtype == bool
    assert vis.mean() >= FRONTAL_VISIBLE_MIN
    lm = landmarks_from_position_map(face.position_map, lay)
    lv = landmark_visibility(lm, face.vertices, lay.triangles)
    inner = [i for g in ("brow_R", "brow_L", "nose", "eye_R", "eye_L", "mouth") for i in LANDMARK_GROUPS[g]]
    assert lv[inner].all()


@pytest.mark.parametrize("yaw", [80, -80])
def test_far_cheek_is_hidden_at_80_degrees(yaw):
    lay = layout()
    face = posed_face(yaw)
    zbuffer = ZBuffer.from_mesh(face.vertices, lay.triangles)
    lm = landmarks_from_position_map(face.position_map, lay)
    lv = landmark_visibility(lm, face.vertices, lay.triangles, zbuffer=zbuffer)
    assert not lv[list(FAR_JAW[yaw])].any(), lv[:17]
    assert lv[list(NEAR_JAW[yaw])].all(), lv[:17]
    # vertices: the far half of the layout (u > centre for yaw > 0) is mostly hidden, the near half seen
    vis = vertex_visibility(face.vertices, lay.triangles, zbuffer=zbuffer)
    cols = lay.face_indices % lay.size
    far = cols > lay.size / 2 if yaw > 0 else cols < lay.size / 2
    assert vis[far].mean() < HIDDEN_SIDE_SEEN_MAX and vis[~far].mean() > NEAR_SIDE_SEEN_MIN


def test_zbuffer_resolution_is_capped():
    lay = layout()
    face = posed_face(scale=5.0, centre=(800.0, 600.0))  # ≈ 780 px wide face
    zb = ZBuffer.from_mesh(face.vertices, lay.triangles)
    assert max(zb.depth.shape) <= BUFFER_MAX_SIDE + 1
    assert zb.scale < 1.0 and zb.face_size > 700


def test_tolerance_is_relative_to_face_size():
    lay = layout()
    face = posed_face(80)
    tight = vertex_visibility(face.vertices, lay.triangles, tolerance=0.0)
    loose = vertex_visibility(face.vertices, lay.triangles, tolerance=10.0)
    assert loose.all() and tight.sum() <= vertex_visibility(face.vertices, lay.triangles).sum()


def test_points_off_the_mesh_are_visible():
    lay = layout()
    zb = ZBuffer.from_mesh(posed_face().vertices, lay.triangles)
    far_away = np.array([[-100.0, -100.0, -5.0], [PHOTO_SIZE[1] + 100.0, 10.0, -5.0], [np.nan, 0.0, 0.0]])
    assert zb.visible(far_away)[:2].all()


@pytest.mark.parametrize(
    ("vertices", "triangles"),
    [
        (np.zeros((3, 2)), np.zeros((1, 3), int)),
        (np.zeros((3, 3)), np.array([[0, 1, 3]])),
        (np.zeros((3, 3)), np.zeros((1, 4), int)),
    ],
)
def test_bad_meshes_raise(vertices, triangles):
    with pytest.raises(ValueError):
        depth_buffer(vertices, triangles, 4, 4)
