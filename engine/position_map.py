"""Reading a position map between its pixels: mask-aware bilinear sampling (PRNet §3.1 readout).

A position map stores values only on the layout's face pixels; the pixels around them hold whatever
the network wrote there (or NaN). Plain bilinear interpolation near the mask edge would mix those in,
so every read-out here is bilinear over the *valid* neighbours only, with the four weights
renormalised to sum to one; a point none of whose four neighbours is valid takes the nearest valid
pixel (Euclidean distance transform). Coordinates are (u, v) = (column, row) in map pixels, pixel
centres at integers, as in :mod:`engine.layout`. :class:`MapSampler` precomputes the weights for a
fixed set of points as a sparse matrix, so that repeated reads (45k vertices per photo: ≈ 0.3 ms;
the 0.7M texels of a 1024² texture) cost one sparse product.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage, sparse

from .layout import UVLayout

N_CORNERS = 4  # bilinear reads the 2×2 neighbourhood of a point
BUILD_CHUNK = 1 << 20  # points per step when building a sampler: bounds temporaries to ≈ 100 MB


def _check_map(values: np.ndarray, valid: np.ndarray) -> None:
    if values.ndim != 3:
        raise ValueError(f"map values must be (S, S, C), got shape {values.shape}")
    if valid.shape != values.shape[:2]:
        raise ValueError(f"valid mask must be {values.shape[:2]}, got shape {valid.shape}")
    if not valid.any():
        raise ValueError("valid mask has no True pixel")


@dataclass(frozen=True, slots=True, eq=False)
class MapSampler:
    """A fixed mask-aware bilinear read-out, stored as a sparse (K, H·W) matrix with ≤ 4 weights a row.

    Only valid pixels are stored, so junk (even NaN) outside the mask never reaches the result, and a
    read is one sparse product: ``sampler(values) = matrix @ values.reshape(H·W, C)``.
    """

    shape: tuple[int, int]  # (rows, columns) of the maps it reads
    matrix: sparse.csr_matrix  # (K, H·W) float32, rows sum to 1, columns = flat row-major pixels

    @classmethod
    def build(cls, valid: np.ndarray, uv: np.ndarray) -> MapSampler:
        """Precompute the read-out at ``uv`` (K, 2) (u = column, v = row) of maps whose mask is ``valid``."""
        valid = np.asarray(valid, dtype=bool)
        uv = np.asarray(uv, dtype=np.float64)
        if valid.ndim != 2 or min(valid.shape) < 2:
            raise ValueError(f"valid mask must be (H, W) with H, W >= 2, got shape {valid.shape}")
        if uv.ndim != 2 or uv.shape[1] != 2:
            raise ValueError(f"uv must be (K, 2), got shape {uv.shape}")
        if not valid.any():
            raise ValueError("valid mask has no True pixel")
        if not np.isfinite(uv).all():
            raise ValueError("uv contains non-finite coordinates")
        h, w = valid.shape
        flat_valid = valid.ravel()
        nearest: list[np.ndarray] = []  # flat index of the nearest valid pixel, computed when first needed
        data, columns, counts = [], [], []
        for start in range(0, len(uv), BUILD_CHUNK):
            idx, wgt = _corners(uv[start : start + BUILD_CHUNK], flat_valid, h, w)
            total = wgt.sum(axis=1)
            lost = total <= 0.0  # all four corners invalid: take the nearest valid pixel of the rounded point
            if lost.any():
                if not nearest:
                    _, (near_r, near_c) = ndimage.distance_transform_edt(~valid, return_indices=True)
                    nearest.append((near_r * w + near_c).ravel())
                u, v = np.rint(uv[start : start + BUILD_CHUNK][lost]).astype(np.int64).T
                u, v = np.clip(u, 0, w - 1), np.clip(v, 0, h - 1)
                idx[lost, 0] = nearest[0][v * w + u]
                wgt[lost] = (1.0, 0.0, 0.0, 0.0)
                total[lost] = 1.0
            wgt /= total[:, None]
            keep = wgt > 0.0  # invalid corners are not stored: their pixels are never read
            data.append(wgt[keep].astype(np.float32))
            columns.append(idx[keep].astype(np.int32))
            counts.append(keep.sum(axis=1))
        indptr = np.concatenate([[0], np.cumsum(np.concatenate(counts))])
        matrix = sparse.csr_matrix((np.concatenate(data), np.concatenate(columns), indptr), shape=(len(uv), h * w))
        return cls(shape=(h, w), matrix=matrix)

    def __len__(self) -> int:
        return int(self.matrix.shape[0])

    def __call__(self, values: np.ndarray) -> np.ndarray:
        """(H, W, C) map → (K, C) float32 samples."""
        values = np.asarray(values)
        if values.ndim != 3 or values.shape[:2] != self.shape:
            raise ValueError(f"values must be {self.shape} + (C,), got shape {values.shape}")
        flat = values.reshape(-1, values.shape[2]).astype(np.float32, copy=False)
        return np.asarray(self.matrix @ flat, dtype=np.float32)


def _corners(uv: np.ndarray, flat_valid: np.ndarray, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """(K, 2) points → flat indices (K, 4) and bilinear weights (K, 4), zero on invalid corners."""
    u = np.clip(uv[:, 0], 0.0, w - 1.0)
    v = np.clip(uv[:, 1], 0.0, h - 1.0)
    u0 = np.minimum(u.astype(np.int64), w - 2)  # u >= 0, so truncation is floor
    v0 = np.minimum(v.astype(np.int64), h - 2)
    fu, fv = u - u0, v - v0
    # corners as rows of (4, K) arrays (contiguous writes), returned as (K, 4) views
    indices = np.empty((N_CORNERS, len(uv)), np.int64)
    weights = np.empty((N_CORNERS, len(uv)), np.float64)
    for j, (dv, du) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        indices[j] = (v0 + dv) * w + (u0 + du)
        np.multiply(fu if du else 1.0 - fu, fv if dv else 1.0 - fv, out=weights[j])
        weights[j] *= flat_valid[indices[j]]
    indices, weights = indices.T, weights.T
    return indices, weights


def sample_map(values: np.ndarray, valid: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Mask-aware bilinear read-out of ``values`` (S, S, C) at ``uv`` (K, 2) → (K, C) float32.

    Only pixels where ``valid`` (S, S) is True contribute; their bilinear weights are renormalised.
    Points outside the map are clamped to its border.
    """
    values = np.asarray(values)
    valid = np.asarray(valid, dtype=bool)
    _check_map(values, valid)
    return MapSampler.build(valid, uv)(values)


def layout_pixel_uv(layout: UVLayout, out_size: int) -> np.ndarray:
    """(N, 2) float32 (u, v) of the layout's face pixels in the pixel grid of a map of side ``out_size``.

    Both grids span the same UV square with pixel centres on its borders, so
    ``u' = u · (out_size − 1) / (S − 1)``; a 128² network output is read at the 256 layout's pixels
    with ``sample_map(map128, mask128, layout_pixel_uv(layout, 128))``.
    """
    if out_size < 2:
        raise ValueError(f"out_size must be >= 2, got {out_size}")
    rows, cols = np.divmod(layout.face_indices, layout.size)
    factor = (out_size - 1) / (layout.size - 1)
    return np.stack([cols * factor, rows * factor], axis=1).astype(np.float32)


def map_from_vertices(vertex_values: np.ndarray, layout: UVLayout, *, fill: float = np.nan) -> np.ndarray:
    """Scatter per-face-pixel values (N, C) into an (S, S, C) float32 map; other pixels get ``fill``."""
    vertex_values = np.asarray(vertex_values)
    if vertex_values.ndim != 2 or vertex_values.shape[0] != layout.n_vertices:
        raise ValueError(f"vertex values must be ({layout.n_vertices}, C), got shape {vertex_values.shape}")
    out = np.full((layout.size, layout.size, vertex_values.shape[1]), fill, dtype=np.float32)
    out[layout.face_mask] = vertex_values
    return out
