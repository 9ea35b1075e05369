"""Rasterise a triangle mesh in UV space: for every pixel centre, its triangle and barycentric weights.

This is the one geometric step behind both the layout (which pixels are face) and the training labels
(a position map is ``sum_k bary[:, k] * vertices[vertex_ids[:, k]]`` over the covered pixels, a fixed
sparse linear map from mesh vertices to pixels). Pixel (row v, column u) has its centre at the point
(u, v) — the PRNet convention where UV in [0, 1] maps to [0, S − 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

INSIDE_EPS = 1e-6  # barycentric tolerance so that pixel centres exactly on a shared edge are covered
DEGENERATE_AREA = 1e-12  # UV triangles with a smaller doubled area (px²) cover no pixel centre


@dataclass(frozen=True, slots=True)
class UVRaster:
    size: int
    pixels: np.ndarray  # (P,) int64 flat row-major pixel indices, increasing
    vertex_ids: np.ndarray  # (P, 3) int64 mesh vertex ids of the covering triangle
    bary: np.ndarray  # (P, 3) float64 barycentric weights (sum 1)

    def interpolate(self, attributes: np.ndarray) -> np.ndarray:
        """(V, C) per-vertex attributes → (P, C) values at the covered pixel centres."""
        return np.einsum("pk,pkc->pc", self.bary, attributes[self.vertex_ids])

    def mask(self) -> np.ndarray:
        """(S, S) bool coverage mask."""
        m = np.zeros(self.size * self.size, dtype=bool)
        m[self.pixels] = True
        return m.reshape(self.size, self.size)


def rasterize_uv(uv_px: np.ndarray, triangles: np.ndarray, size: int) -> UVRaster:
    """Cover pixel centres with triangles.

    Args:
        uv_px: (V, 2) float, (u, v) of every vertex in map pixels (u = column, v = row).
        triangles: (T, 3) int vertex ids.
        size: side S of the map.
    Returns:
        :class:`UVRaster`; a pixel covered by several triangles (shared edges) takes the first.
    """
    uv_px = np.asarray(uv_px, dtype=np.float64)
    tri = np.asarray(triangles, dtype=np.int64)
    p0, p1, p2 = uv_px[tri[:, 0]], uv_px[tri[:, 1]], uv_px[tri[:, 2]]
    lo = np.floor(np.minimum(np.minimum(p0, p1), p2)).astype(np.int64)
    hi = np.ceil(np.maximum(np.maximum(p0, p1), p2)).astype(np.int64)
    window = int((hi - lo).max()) + 1
    du, dv = np.meshgrid(np.arange(window), np.arange(window), indexing="xy")
    offsets = np.stack([du.ravel(), dv.ravel()], axis=1)  # (W², 2) as (du, dv)

    cand = lo[:, None, :] + offsets[None, :, :]  # (T, W², 2) integer pixel centres
    e1 = (p1 - p0)[:, None, :]
    e2 = (p2 - p0)[:, None, :]
    r = cand - p0[:, None, :]
    det = e1[..., 0] * e2[..., 1] - e1[..., 1] * e2[..., 0]  # (T, 1)
    ok_tri = np.abs(det) > DEGENERATE_AREA
    safe = np.where(ok_tri, det, 1.0)
    w1 = (r[..., 0] * e2[..., 1] - r[..., 1] * e2[..., 0]) / safe
    w2 = (e1[..., 0] * r[..., 1] - e1[..., 1] * r[..., 0]) / safe
    w0 = 1.0 - w1 - w2
    inside = (
        ok_tri
        & (w0 >= -INSIDE_EPS)
        & (w1 >= -INSIDE_EPS)
        & (w2 >= -INSIDE_EPS)
        & (cand[..., 0] >= 0)
        & (cand[..., 0] < size)
        & (cand[..., 1] >= 0)
        & (cand[..., 1] < size)
    )
    t_idx, c_idx = np.nonzero(inside)
    pix = cand[t_idx, c_idx, 1] * size + cand[t_idx, c_idx, 0]
    # first triangle per pixel (t_idx is sorted, so a stable unique keeps the lowest triangle id)
    pix_sorted = np.argsort(pix, kind="stable")
    pix = pix[pix_sorted]
    first = np.ones(pix.shape, dtype=bool)
    first[1:] = pix[1:] != pix[:-1]
    keep = pix_sorted[first]
    bary = np.stack([w0[t_idx, c_idx], w1[t_idx, c_idx], w2[t_idx, c_idx]], axis=1)[keep]
    bary = np.clip(bary, 0.0, None)
    bary /= bary.sum(axis=1, keepdims=True)
    return UVRaster(size=size, pixels=pix[first], vertex_ids=tri[t_idx[keep]], bary=bary)
