"""An all-quad face mesh: the position map resampled on a regular UV grid, for sculpting and retopology.

The UV square is divided into ``cells`` × ``cells`` cells (:data:`engine.options.QUAD_CELLS_MIN` …
``MAX``); a grid corner is kept when it lies on the face (inside the layout's triangles, the lip slit
counted as face), a quad when its four corners are kept. Corners on the grid's outer border loop are
moved along the loop by a Gaussian of :data:`BORDER_UV_SIGMA_CELLS` cells, so the outline is a smooth
curve, not a staircase. Each corner's position is the face's position map read out there by the
Catmull–Rom sampler of :mod:`engine.surface_readout`, after the lip slit is filled between the lips
(:func:`engine.mouth.closed_map`). With the mouth ``open`` the quads whose centre lies inside the
inner-lip contour are left out, as for the triangle mesh (:mod:`engine.mouth`). UVs are the corners'
own, so the face's texture fits unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import ndimage

from .layout import UVLayout
from .mesh import vertex_colors
from .mesh_quality import boundary_loops
from .mouth import INNER_LIPS, closed_map, inside_polygon, slit_pixels
from .options import TOPOLOGIES, check_choice, check_quad_cells
from .pose import frontalize
from .position_map import MapSampler
from .surface_readout import cubic_sampler
from .types import FaceMesh, FaceReconstruction

BORDER_UV_SIGMA_CELLS = 1.0  # smoothing of the outline along itself: removes the grid's staircase


@dataclass(frozen=True, slots=True, eq=False)
class QuadGrid:
    """The layout-only part of a quad mesh (computed once per layout, cell count and mouth)."""

    uv: np.ndarray  # (V, 2) float32 OBJ texture coordinates of the kept corners (u right, v up)
    quads: np.ndarray  # (Q, 4) int32, CCW seen from the camera like the layout's triangles
    sampler: MapSampler  # reads (S, S, C) maps valid on the face mask ∪ lip slit at the corners


def in_footprint(valid: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """(K,) bool: points ``uv`` (K, 2) layout px inside the grid triangles over ``valid`` (S, S):
    each cell (a b / c d) is split into (a, c, b) and (b, c, d) as engine.layout's triangles are."""
    s = valid.shape[0]
    cell = np.clip(np.floor(uv).astype(np.int64), 0, s - 2)
    frac = uv - cell
    col, row = cell[:, 0], cell[:, 1]
    a, b = valid[row, col], valid[row, col + 1]
    c, d = valid[row + 1, col], valid[row + 1, col + 1]
    upper = frac[:, 0] + frac[:, 1] <= 1.0
    return b & c & np.where(upper, a, d)


@lru_cache(maxsize=4)
def quad_grid(layout: UVLayout, cells: int, mouth: str) -> QuadGrid:
    """The quad grid of ``cells`` across the UV square for a ``closed`` or ``open`` mouth."""
    cells = check_quad_cells(cells)
    if mouth not in ("closed", "open"):
        raise ValueError(f"mouth must be 'closed' or 'open' here, got {mouth!r}")
    last = layout.size - 1
    valid = layout.face_mask | slit_pixels(layout)
    ticks = np.arange(cells + 1) * (last / cells)
    u, v = np.meshgrid(ticks, ticks, indexing="xy")  # corner (r, c) at u = ticks[c], v = ticks[r]
    corners = np.stack([u.ravel(), v.ravel()], axis=1)
    kept = in_footprint(valid, corners).reshape(cells + 1, cells + 1)
    # corner order a (r, c), c (r+1, c), d (r+1, c+1), b (r, c+1): the turn of the layout's (a, c, b)
    index = np.arange((cells + 1) ** 2).reshape(cells + 1, cells + 1)
    quads = np.stack([index[:-1, :-1], index[1:, :-1], index[1:, 1:], index[:-1, 1:]], axis=-1).reshape(-1, 4)
    whole = kept[:-1, :-1] & kept[1:, :-1] & kept[1:, 1:] & kept[:-1, 1:]
    quads = quads[whole.ravel()]
    if mouth == "open":
        lips = layout.keypoints_uv[INNER_LIPS].astype(np.float64)
        quads = quads[~inside_polygon(corners[quads].mean(axis=1), lips)]
    used, quads = np.unique(quads, return_inverse=True)
    quads = quads.reshape(-1, 4).astype(np.int32)
    uv_px = corners[used]
    outline = boundary_loops(np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]]))[0]
    uv_px[outline] = ndimage.gaussian_filter1d(uv_px[outline], BORDER_UV_SIGMA_CELLS, axis=0, mode="wrap")
    uv = np.stack([uv_px[:, 0] / last, 1.0 - uv_px[:, 1] / last], axis=1).astype(np.float32)
    return QuadGrid(uv=uv, quads=quads, sampler=cubic_sampler(valid, uv_px))


def triangle_mesh(face: FaceReconstruction) -> FaceMesh:
    """The reconstruction's own dense triangle mesh as a :class:`FaceMesh`."""
    return FaceMesh(
        vertices=face.vertices,
        faces=face.triangles,
        uv=face.uv,
        vertex_colors=face.vertex_colors,
        frontal_vertices=face.frontal_vertices,
    )


def quad_mesh(face: FaceReconstruction, layout: UVLayout, cells: int, image: np.ndarray) -> FaceMesh:
    """The all-quad mesh of ``face`` (see the module's text); ``image`` (H, W, 3) uint8 RGB, the photo,
    gives the vertex colours."""
    if face.layout_id != layout.layout_id:
        raise ValueError(f"face was built on layout {face.layout_id!r}, not {layout.layout_id!r}")
    grid = quad_grid(layout, cells, face.mouth)
    filled, _ = closed_map(face.position_map, layout)
    vertices = grid.sampler(np.nan_to_num(filled)).astype(np.float32)
    return FaceMesh(
        vertices=vertices,
        faces=grid.quads,
        uv=grid.uv,
        vertex_colors=vertex_colors(image, vertices),
        frontal_vertices=frontalize(vertices, face.pose).astype(np.float32),
    )


def face_mesh(face: FaceReconstruction, layout: UVLayout, topology: str, cells: int, image: np.ndarray) -> FaceMesh:
    """The mesh of ``face`` in ``topology`` (engine.options.TOPOLOGIES)."""
    if check_choice(topology, TOPOLOGIES, "topology") == "quads":
        return quad_mesh(face, layout, cells, image)
    return triangle_mesh(face)
