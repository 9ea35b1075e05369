"""The dense mesh of a position map: vertices, OBJ texture coordinates and per-vertex photo colours.

PRNet's mesh has one vertex per face pixel of the UV layout (row-major order, see
:attr:`engine.layout.UVLayout.face_indices`) and the layout's grid triangles. This module owns the
one UV convention every exporter and :mod:`engine.texture` share: a layout pixel (row r, column c)
of an S×S layout has the texture coordinate

    u = c / (S − 1),    v = 1 − r / (S − 1)

(OBJ/OpenGL: origin at the bottom-left of the texture image, v up) — the same normalisation the
layout itself was rasterised with, so the UV square's borders pass through the outermost pixel
centres; along the outer border the vertices sit on a smoothed outline between pixel centres
(:func:`vertex_uv_px`). A texture image of T×T texels, row 0 at the top (v = 1), has texel centres at
u = (j + 0.5) / T; :mod:`engine.texture` samples texel (i, j) at layout pixel
((i + 0.5)·(S − 1)/T, (j + 0.5)·(S − 1)/T), which is exactly this mapping inverted.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import ndimage

from .layout import UVLayout
from .mesh_quality import boundary_loops

RGB_MAX = 255.0  # uint8 full scale, mapped to 1.0
BORDER_UV_SIGMA_VERTICES = 4.0  # the outer border's UV outline smoothed over this many vertices (a px staircase)


def mesh_vertices(position_map: np.ndarray, layout: UVLayout) -> np.ndarray:
    """(S, S, 3) position map → (N, 3) float32 vertices, one per face pixel in row-major order."""
    position_map = np.asarray(position_map)
    s = layout.size
    if position_map.shape != (s, s, 3):
        raise ValueError(
            f"position map must be ({s}, {s}, 3) for layout {layout.layout_id!r}, got shape {position_map.shape}"
        )
    return position_map[layout.face_mask].astype(np.float32)


@lru_cache(maxsize=4)
def outer_border(layout: UVLayout) -> np.ndarray:
    """(B,) vertex indices of the layout mesh's outer border loop, in order (computed once per layout)."""
    loop = boundary_loops(layout.triangles)[0]
    loop.setflags(write=False)
    return loop


@lru_cache(maxsize=4)
def vertex_uv_px(layout: UVLayout) -> np.ndarray:
    """(N, 2) float64 layout-pixel (u = column, v = row) of the mesh's vertices: each face pixel's
    centre, except along the outer border loop, whose pixel staircase is smoothed along the loop
    (Gaussian, :data:`BORDER_UV_SIGMA_VERTICES`) so that the mesh's outline is a smooth curve. The
    vertices are read from the network's map at these points (engine.surface_readout) and textured
    at them (:func:`mesh_uv`)."""
    rows, cols = np.divmod(layout.face_indices, layout.size)
    uv = np.stack([cols, rows], axis=1).astype(np.float64)
    loop = outer_border(layout)
    uv[loop] = ndimage.gaussian_filter1d(uv[loop], BORDER_UV_SIGMA_VERTICES, axis=0, mode="wrap")
    uv.setflags(write=False)
    return uv


def mesh_uv(layout: UVLayout) -> np.ndarray:
    """(N, 2) float32 OBJ texture coordinates in [0, 1] (u right, v up) of the mesh's vertices
    (:func:`vertex_uv_px`)."""
    uv = vertex_uv_px(layout)
    last = layout.size - 1
    return np.stack([uv[:, 0] / last, 1.0 - uv[:, 1] / last], axis=1).astype(np.float32)


def vertex_colors(image: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Bilinear RGB of ``image`` (H, W, 3) uint8 at the vertices' (x, y) → (N, 3) float32 in [0, 1].

    ``vertices`` is (N, 2|3) in image px (pixel centres at integers, z ignored); points outside the
    photo take the colour of the nearest border pixel, non-finite points are black.
    """
    image = np.asarray(image)
    vertices = np.asarray(vertices, dtype=np.float64)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8, got shape {image.shape} {image.dtype}")
    if vertices.ndim != 2 or vertices.shape[1] not in (2, 3):
        raise ValueError(f"vertices must be (N, 2) or (N, 3), got shape {vertices.shape}")
    h, w = image.shape[:2]
    finite = np.isfinite(vertices[:, :2]).all(axis=1)
    x = np.clip(np.where(finite, vertices[:, 0], 0.0), 0.0, w - 1.0)
    y = np.clip(np.where(finite, vertices[:, 1], 0.0), 0.0, h - 1.0)
    x0 = np.minimum(x.astype(np.int64), max(w - 2, 0))
    y0 = np.minimum(y.astype(np.int64), max(h - 2, 0))
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]

    def at(yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
        return image[yy, xx].astype(np.float32)

    top = at(y0, x0) * (1 - fx) + at(y0, x1) * fx
    bottom = at(y1, x0) * (1 - fx) + at(y1, x1) * fx
    rgb = (top * (1 - fy) + bottom * fy) / RGB_MAX
    rgb[~finite] = 0.0
    return rgb.astype(np.float32)
