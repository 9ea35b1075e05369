"""engine.mouth: the lip slit zipped shut or cut open along the inner lips, on the shipped layout."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic import layout

from engine.errors import InvalidOptionError
from engine.mesh import vertex_uv_px
from engine.mesh_quality import boundary_loops, measure_mesh, unique_edges
from engine.mouth import (
    INNER_LIPS,
    closed_map,
    closed_triangles,
    ear_clip,
    inside_polygon,
    mouth_triangles,
    open_triangles,
    slit_loop,
    slit_pixels,
)
from engine.position_map import map_from_vertices

SLIT_PIXELS = (100, 200)  # the shipped layout's slit: 129 pixels between the lips


def _directed_edges(triangles: np.ndarray) -> np.ndarray:
    t = np.asarray(triangles, np.int64)
    return np.concatenate([t[:, [0, 1]], t[:, [1, 2]], t[:, [2, 0]]])


def test_the_layout_has_one_slit_between_the_inner_lips():
    lay = layout()
    slit = slit_pixels(lay)
    assert SLIT_PIXELS[0] < slit.sum() < SLIT_PIXELS[1] and not (slit & lay.face_mask).any()
    rows, cols = np.nonzero(slit)
    lips = lay.keypoints_uv[INNER_LIPS]
    assert lips[:, 0].min() - 2 < cols.mean() < lips[:, 0].max() + 2
    assert lips[:, 1].min() < rows.mean() < lips[:, 1].max()
    assert len(slit_loop(lay)) < len(boundary_loops(lay.triangles)[0])


def test_closed_mouth_zips_the_slit_into_one_consistently_wound_surface():
    lay = layout()
    tris = closed_triangles(lay)
    assert len(tris) == len(lay.triangles) + len(slit_loop(lay)) - 2
    assert len(boundary_loops(tris)) == 1  # only the outer border is left open
    directed = _directed_edges(tris)
    assert len(np.unique(directed, axis=0)) == len(directed)  # no edge twice the same way: one winding
    _, counts = unique_edges(tris)
    assert counts.max() == 2  # manifold
    quality = measure_mesh(lay.canonical_vertices, tris)
    assert quality.zero_area_triangles == 0


def test_open_mouth_cuts_along_the_inner_lips_and_keeps_every_vertex():
    lay = layout()
    tris = open_triangles(lay)
    lips = lay.keypoints_uv[INNER_LIPS].astype(np.float64)
    centroids = vertex_uv_px(lay)[tris].mean(axis=1)
    assert not inside_polygon(centroids, lips).any()
    loops = boundary_loops(tris)
    assert len(loops) == 2  # the outer border and the mouth
    mouth = vertex_uv_px(lay)[loops[1]]
    assert mouth[:, 1].min() < lips[:, 1].min() + 1.5 and mouth[:, 1].max() > lips[:, 1].max() - 1.5
    assert tris.max() < lay.n_vertices and len(tris) < len(lay.triangles)


def test_mouth_triangles_by_mode_and_a_bad_mode_is_refused():
    lay = layout()
    assert mouth_triangles(lay, "closed") is closed_triangles(lay)
    assert mouth_triangles(lay, "open") is open_triangles(lay)
    with pytest.raises(InvalidOptionError, match="mouth"):
        mouth_triangles(lay, "auto")


def test_ear_clipping_covers_a_slit_polygon_once_without_flat_triangles():
    top = np.stack([np.arange(10.0), np.full(10, 0.0)], 1)
    bottom = np.stack([np.arange(8.0, 0.0, -1.0), np.full(8, 3.0)], 1)
    polygon = np.concatenate([top, bottom])  # a 9 × 3 slit, walked once round
    tris = ear_clip(polygon)
    assert len(tris) == len(polygon) - 2
    p = polygon[tris]
    area = 0.5 * np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    x, y = polygon[:, 0], polygon[:, 1]
    polygon_area = 0.5 * (np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))
    assert np.sign(area).tolist() == [np.sign(polygon_area)] * len(tris)
    assert area.sum() == pytest.approx(polygon_area)


def test_closed_map_fills_the_slit_between_the_lips_linearly():
    lay = layout()
    values = map_from_vertices(lay.canonical_vertices, lay)
    filled, valid = closed_map(values, lay)
    slit = slit_pixels(lay)
    assert (valid == (lay.face_mask | slit)).all() and np.isfinite(filled[valid]).all()
    rows, cols = np.nonzero(slit)
    c = int(np.median(cols))
    r = rows[cols == c]
    top, bottom = values[r.min() - 1, c], values[r.max() + 1, c]
    column = filled[r, c]
    t = (r - (r.min() - 1)) / (r.max() + 1 - (r.min() - 1))
    np.testing.assert_allclose(column, (1 - t)[:, None] * top + t[:, None] * bottom, atol=1e-4)
