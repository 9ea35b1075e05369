"""engine.mesh: vertices, OBJ texture coordinates, vertex colours; and the layout's triangle winding."""

from __future__ import annotations

import numpy as np
import pytest
from arrays import assert_close
from synthetic import gradient_photo, layout, posed_face
from tolerances import FRONT_FACING_MIN, STEEP_FRONT_FACING_MIN, UV_EXACT, VERTEX_COLOR_LEVELS

from engine.mesh import mesh_uv, mesh_vertices, outer_border, vertex_colors

BORDER_UV_MOVE_PX = 2.0  # layout px: the smoothed outline rounds the layout's sharpest corners by ≈1.7 px
STEEP_COSINE = 0.5  # triangles whose normal is within 60° of the view axis


def test_mesh_vertices_are_the_face_pixels_in_row_major_order():
    face = posed_face(yaw=20)
    assert_close(mesh_vertices(face.position_map, layout()), face.vertices, 0.0, "vertices")
    with pytest.raises(ValueError, match=r"\(128, 128, 3\)"):
        mesh_vertices(np.zeros((128, 128, 3)), layout())


def test_mesh_uv_is_in_the_unit_square_with_v_up():
    lay = layout()
    uv = mesh_uv(lay)
    assert uv.shape == (lay.n_vertices, 2) and uv.dtype == np.float32
    assert uv.min() >= 0.0 and uv.max() <= 1.0
    rows, cols = np.divmod(lay.face_indices, lay.size)
    inside = np.ones(lay.n_vertices, bool)
    inside[outer_border(lay)] = False  # the outer border's vertices sit on a smoothed outline
    assert_close(uv[inside, 0], cols[inside] / (lay.size - 1), UV_EXACT, "u = column / (S - 1)")
    assert_close(uv[inside, 1], 1.0 - rows[inside] / (lay.size - 1), UV_EXACT, "v = 1 - row / (S - 1)")
    pixel = np.stack([cols, (lay.size - 1) - rows], axis=1) / (lay.size - 1)
    assert_close(uv[~inside], pixel[~inside], BORDER_UV_MOVE_PX / (lay.size - 1), "border uv near its pixel")
    # the forehead (top rows of the layout) is at the top of the texture: larger v than the chin
    chin, brow = lay.keypoints_uv[8], lay.keypoints_uv[19]
    assert chin[1] > brow[1]
    assert uv[rows.argmin(), 1] > uv[rows.argmax(), 1]


def test_triangles_face_the_camera_after_flipping_y_up():
    lay = layout()
    face = posed_face()  # frontal
    v = face.vertices.astype(np.float64) * np.array([1.0, -1.0, 1.0])  # y up: a right-handed frame
    a, b, c = (v[lay.triangles[:, k]] for k in range(3))
    normals = np.cross(b - a, c - a)
    cosine = normals[:, 2] / np.linalg.norm(normals, axis=1)
    assert (cosine > 0).mean() >= FRONT_FACING_MIN
    steep = np.abs(cosine) > STEEP_COSINE
    assert (cosine[steep] > 0).mean() >= STEEP_FRONT_FACING_MIN
    assert normals.sum(axis=0)[2] > 0.4 * np.linalg.norm(normals, axis=1).sum()


def test_vertex_colors_bilinear_on_a_gradient():
    photo = gradient_photo()
    pts = np.array([[10.25, 20.5, 0.0], [100.0, 200.0, 5.0], [639.0, 479.0, 0.0]])
    got = vertex_colors(photo, pts)
    x0, y0 = 10, 20
    p = photo.astype(np.float64)
    expect0 = 0.5 * (p[y0, x0] * 0.75 + p[y0, x0 + 1] * 0.25) + 0.5 * (p[y0 + 1, x0] * 0.75 + p[y0 + 1, x0 + 1] * 0.25)
    assert_close(got[0] * 255, expect0, VERTEX_COLOR_LEVELS, "bilinear colour")
    assert_close(got[1] * 255, p[200, 100], VERTEX_COLOR_LEVELS, "colour at a pixel centre")
    assert_close(got[2] * 255, p[479, 639], VERTEX_COLOR_LEVELS, "colour at the last pixel")
    assert got.dtype == np.float32 and got.min() >= 0 and got.max() <= 1


def test_vertex_colors_clamp_outside_and_blank_non_finite():
    photo = gradient_photo()
    got = vertex_colors(photo, np.array([[-50.0, -50.0, 0.0], [1e4, 1e4, 0.0], [np.nan, 3.0, 0.0]]))
    assert_close(got[0] * 255, photo[0, 0], VERTEX_COLOR_LEVELS, "clamped to the top-left pixel")
    assert_close(got[1] * 255, photo[-1, -1], VERTEX_COLOR_LEVELS, "clamped to the bottom-right pixel")
    assert_close(got[2], 0.0, 0.0, "non-finite vertex")


@pytest.mark.parametrize(
    ("image", "points"),
    [
        (np.zeros((4, 4), np.uint8), np.zeros((1, 3))),
        (np.zeros((4, 4, 3), np.float32), np.zeros((1, 3))),
        (np.zeros((4, 4, 3), np.uint8), np.zeros((1, 4))),
    ],
)
def test_vertex_colors_reject_bad_shapes(image, points):
    with pytest.raises(ValueError):
        vertex_colors(image, points)
