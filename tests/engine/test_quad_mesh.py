"""engine.quad_mesh: the all-quad face mesh resampled from the position map on a regular UV grid."""

from __future__ import annotations

import numpy as np
import pytest
from arrays import assert_close
from synthetic import gradient_photo

from engine.api import Reconstructor
from engine.errors import InvalidOptionError
from engine.mesh_quality import boundary_loops, measure_mesh
from engine.position_map import map_from_vertices, sample_map
from engine.quad_mesh import face_mesh, quad_grid
from engine.types import BoundingBox

CELLS = 64
SURFACE_PX = 0.5  # quad corners vs the (bilinear) surface of the face's own map: cubic vs bilinear reads
FRONTAL_MM = 1.0  # frontalised quad corners vs the canonical surface at the same UV (mean face bundle)


@pytest.fixture(scope="module")
def faces(mean_face_bundle):
    rec = Reconstructor.from_bundle(mean_face_bundle)
    photo = gradient_photo()
    box = [BoundingBox(220, 140, 420, 340)]
    return rec, photo, {m: rec(photo, boxes=box, texture_size=256, mouth=m)[0] for m in ("closed", "open")}


def _triangulated(quads: np.ndarray) -> np.ndarray:
    return np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]])


@pytest.mark.parametrize("mouth", ["closed", "open"])
def test_the_grid_is_all_quads_wound_like_the_layout_and_holes_only_where_the_mouth_is_open(faces, mouth):
    rec, photo, by_mouth = faces
    mesh = face_mesh(by_mouth[mouth], rec.layout, "quads", CELLS, photo)
    assert mesh.topology == "quads" and mesh.faces.shape[1] == 4
    assert np.unique(mesh.faces).tolist() == list(range(len(mesh.vertices)))  # no loose vertex
    assert all(len(set(q)) == 4 for q in mesh.faces.tolist())
    assert len(boundary_loops(_triangulated(mesh.faces))) == (1 if mouth == "closed" else 2)
    uv = mesh.uv.astype(np.float64)
    p = uv[mesh.faces]
    area = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    t = rec.layout.triangles
    lay_uv = by_mouth[mouth].uv.astype(np.float64)
    lay_area = np.cross(lay_uv[t[:, 1]] - lay_uv[t[:, 0]], lay_uv[t[:, 2]] - lay_uv[t[:, 0]])
    assert (np.sign(area) == np.sign(np.median(lay_area))).all()
    assert ((mesh.uv >= 0) & (mesh.uv <= 1)).all()


def test_quad_corners_lie_on_the_face_surface_and_frontalise_to_the_mean_face(faces):
    rec, photo, by_mouth = faces
    face = by_mouth["closed"]
    mesh = face_mesh(face, rec.layout, "quads", CELLS, photo)
    last = rec.layout.size - 1
    uv_px = np.stack([mesh.uv[:, 0] * last, (1 - mesh.uv[:, 1]) * last], 1).astype(np.float64)
    inside = rec.layout.face_mask[np.rint(uv_px[:, 1]).astype(int), np.rint(uv_px[:, 0]).astype(int)]
    surface = sample_map(face.position_map, rec.layout.face_mask, uv_px[inside])
    assert_close(mesh.vertices[inside], surface, SURFACE_PX, "quad corners vs the face's map (px)")
    canonical = sample_map(
        map_from_vertices(rec.layout.canonical_vertices, rec.layout), rec.layout.face_mask, uv_px[inside]
    )
    assert_close(mesh.frontal_vertices[inside], canonical, FRONTAL_MM, "frontal corners vs the mean face (mm)")
    quality = measure_mesh(mesh.vertices, _triangulated(mesh.faces))
    assert quality.zero_area_triangles == 0 and quality.long_edges == 0
    assert mesh.vertex_colors.shape == (len(mesh.vertices), 3)


def test_density_follows_the_cell_count_and_bad_options_are_refused(faces):
    rec, photo, by_mouth = faces
    coarse = quad_grid(rec.layout, 32, "closed")
    fine = quad_grid(rec.layout, 128, "closed")
    assert 12 < len(fine.quads) / len(coarse.quads) < 20  # ≈ 16 = (128 / 32)²
    with pytest.raises(InvalidOptionError, match="quad cells"):
        face_mesh(by_mouth["closed"], rec.layout, "quads", 8, photo)
    with pytest.raises(InvalidOptionError, match="topology"):
        face_mesh(by_mouth["closed"], rec.layout, "ngons", CELLS, photo)
    triangles = face_mesh(by_mouth["closed"], rec.layout, "triangles", CELLS, photo)
    assert triangles.faces is by_mouth["closed"].triangles and triangles.topology == "triangles"
