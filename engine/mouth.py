"""The mouth of the face mesh: the lip slit stitched closed, or cut open along the inner lips.

The layout's face mask has one hole, a slit between the lips (rows ≈ 138–141 of the 256² layout).
The grid mesh leaves it open, so a closed mouth shows a thin gap; on a photo with the mouth open the
network stretches the lips' surface across the opening instead, and the texture paints the teeth
and the dark of the mouth onto it. The modes of :data:`engine.options.MOUTH_MODES`:

* ``closed`` — the slit's boundary loop is triangulated in UV (ear clipping, shortest new edge
  first: a strip of triangles from the upper lip's edge to the lower's), so the lips meet and
  nothing shows through. Vertex count and order stay the layout's.
* ``open`` — every triangle whose UV centroid lies inside the inner-lip contour (landmarks 61–68,
  iBUG numbering) is removed: the opening follows the lips. Its vertices stay in the mesh, unused.

There is no automatic choice: the model's inner-lip landmarks do not tell an open mouth from a
closed one (docs/decisions.md), so ``closed``, right for a neutral face, is the default.

The triangle sets depend on the layout only and are computed once per layout.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import ndimage

from .layout import UVLayout
from .mesh import vertex_uv_px
from .mesh_quality import boundary_loops
from .options import DEFAULT_MOUTH, check_mouth_mode
from .rig import uv_to_layout_px

INNER_LIPS = np.arange(60, 68)  # 0-based landmarks 61–68: around the inner lip contour, in order


def _signed_area(points: np.ndarray) -> float:
    x, y = points[:, 0], points[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def _cross(o: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    return float((a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]))


def _inside_triangle(p: np.ndarray, tri: np.ndarray, sign: float) -> np.ndarray:
    """(K,) bool: points ``p`` (K, 2) inside or on the triangle ``tri`` (3, 2) wound by ``sign``."""
    out = np.ones(len(p), bool)
    for k in range(3):
        a, b = tri[k], tri[(k + 1) % 3]
        out &= sign * ((b[0] - a[0]) * (p[:, 1] - a[1]) - (b[1] - a[1]) * (p[:, 0] - a[0])) >= 0
    return out


def ear_clip(points: np.ndarray) -> np.ndarray:
    """Triangulate the simple polygon ``points`` (K, 2) → (K − 2, 3) indices, each triangle wound like
    the polygon. Each step cuts the ear with the shortest new edge, so on a slit every triangle spans
    it locally; straight runs of the outline (corners of no turn) are never ears, so no triangle is flat."""
    points = np.asarray(points, np.float64)
    sign = 1.0 if _signed_area(points) >= 0 else -1.0
    left = list(range(len(points)))
    out = []
    while len(left) > 3:
        best = None
        for k in range(len(left)):
            i, j, m = left[k - 1], left[k], left[(k + 1) % len(left)]
            if sign * _cross(points[i], points[j], points[m]) <= 0:
                continue  # a reflex or straight corner is no ear
            others = [q for q in left if q not in (i, j, m)]
            if _inside_triangle(points[others], points[[i, j, m]], sign).any():
                continue
            length = float(np.linalg.norm(points[i] - points[m]))
            if best is None or length < best[0]:
                best = (length, k)
        if best is None:
            raise ValueError("polygon is not simple: no ear to cut")
        k = best[1]
        out.append((left[k - 1], left[k], left[(k + 1) % len(left)]))
        del left[k]
    out.append(tuple(left))
    return np.asarray(out, np.int64)


@lru_cache(maxsize=4)
def slit_loop(layout: UVLayout) -> np.ndarray:
    """(K,) vertex indices of the boundary loop around the lip slit: of the mesh's inner boundary loops,
    the one whose UV centre is nearest the inner lips' (ValueError when the layout has none)."""
    loops = boundary_loops(layout.triangles)[1:]
    if not loops:
        raise ValueError(f"layout {layout.layout_id!r} has no lip slit")
    uv = vertex_uv_px(layout)
    centre = layout.keypoints_uv[INNER_LIPS].mean(axis=0)
    loop = min(loops, key=lambda lp: float(np.linalg.norm(uv[lp].mean(axis=0) - centre)))
    loop.setflags(write=False)
    return loop


@lru_cache(maxsize=4)
def closed_triangles(layout: UVLayout) -> np.ndarray:
    """(T + K − 2, 3) int32: the layout's triangles and the lip slit triangulated."""
    loop = slit_loop(layout)
    stitch = loop[ear_clip(vertex_uv_px(layout)[loop])]
    # the stitch must run along each loop edge against the mesh triangle beside it
    t = layout.triangles.astype(np.int64)
    mesh_edges = {(int(u), int(v)) for u, v in np.concatenate([t[:, [0, 1]], t[:, [1, 2]], t[:, [2, 0]]])}
    stitch_edges = np.concatenate([stitch[:, [0, 1]], stitch[:, [1, 2]], stitch[:, [2, 0]]])
    if any((int(u), int(v)) in mesh_edges for u, v in stitch_edges):
        stitch = stitch[:, ::-1]
    out = np.concatenate([layout.triangles, stitch.astype(np.int32)])
    out.setflags(write=False)
    return out


def inside_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """(K,) bool: ``points`` (K, 2) inside ``polygon`` (P, 2) by the even–odd rule."""
    x, y = points[:, 0:1], points[:, 1:2]
    a, b = polygon, np.roll(polygon, -1, axis=0)
    crosses = (a[:, 1] > y) != (b[:, 1] > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        at_x = a[:, 0] + (y - a[:, 1]) * (b[:, 0] - a[:, 0]) / (b[:, 1] - a[:, 1])
    return ((crosses & (x < at_x)).sum(axis=1) % 2).astype(bool)


@lru_cache(maxsize=4)
def open_triangles(layout: UVLayout) -> np.ndarray:
    """(T', 3) int32: the layout's triangles less those inside the inner-lip contour in UV."""
    uv = vertex_uv_px(layout)
    centroids = uv[layout.triangles].mean(axis=1)
    out = layout.triangles[~inside_polygon(centroids, layout.keypoints_uv[INNER_LIPS].astype(np.float64))]
    out.setflags(write=False)
    return out


def mouth_triangles(layout: UVLayout, mode: str = DEFAULT_MOUTH) -> np.ndarray:
    """The face mesh's triangles for mouth ``mode`` (``closed`` or ``open``)."""
    return closed_triangles(layout) if check_mouth_mode(mode) == "closed" else open_triangles(layout)


@lru_cache(maxsize=4)
def slit_pixels(layout: UVLayout) -> np.ndarray:
    """(S, S) bool: the map pixels of the lip slit (the face mask's hole nearest the inner lips)."""
    holes = ndimage.binary_fill_holes(layout.face_mask) & ~layout.face_mask
    labels, n = ndimage.label(holes)
    if n == 0:
        raise ValueError(f"layout {layout.layout_id!r} has no lip slit")
    centre = layout.keypoints_uv[INNER_LIPS].mean(axis=0)
    centres = np.asarray(ndimage.center_of_mass(holes, labels, range(1, n + 1)))[:, ::-1]  # (u, v)
    out = labels == 1 + int(np.argmin(np.linalg.norm(centres - centre, axis=1)))
    out.setflags(write=False)
    return out


def closed_map(position_map: np.ndarray, layout: UVLayout) -> tuple[np.ndarray, np.ndarray]:
    """The (S, S, C) map with its lip-slit pixels filled, and the (S, S) bool mask it is valid on
    (face mask ∪ slit): each slit pixel is interpolated linearly along its column between the face
    pixels just above and below the slit (the lips' edges)."""
    slit = slit_pixels(layout)
    out = np.array(position_map, dtype=np.float32, copy=True)
    rows, cols = np.nonzero(slit)
    for c in np.unique(cols):
        r = rows[cols == c]
        top, bottom = r.min() - 1, r.max() + 1
        t = ((r - top) / (bottom - top))[:, None]
        out[r, c] = (1 - t) * out[top, c] + t * out[bottom, c]
    return out, layout.face_mask | slit


def mouth_faces(uv: np.ndarray, faces: np.ndarray, layout: UVLayout) -> np.ndarray:
    """(F,) bool: the polygons of a mesh that fill the lip slit (their UV centroid lies inside the slit's
    boundary loop): with the mouth closed, the strip between the lips, which a face rig stretches into
    the open mouth. ``uv`` (V, 2) OBJ texture coordinates (v up), ``faces`` (F, 3|4) indices."""
    px = uv_to_layout_px(uv, layout.size)
    loop = vertex_uv_px(layout)[slit_loop(layout)]
    return inside_polygon(px[np.asarray(faces)].mean(axis=1), loop)
