"""The mesh vertices' read-out of a network map: the trusted pixels extended past their border, the
network's pixel-scale noise smoothed away, then a cubic (Catmull–Rom) read-out at the vertices.

A network's output map (s², e.g. 160²) is read at the layout's 45k face pixels (256² grid). A plain
mask-aware bilinear read-out gives a poor surface, for three reasons this module removes:

* **Border collapse.** The trusted output pixels (:func:`engine.readout.output_mask`) stop about one
  layout pixel short of the layout's border, so the outermost vertices have no trusted neighbour and
  each takes the nearest trusted pixel: neighbouring vertices collapse onto one point (zero-area
  triangles, a serrated border). The map is first extended :data:`EXTENSION_PX` pixels past its
  trusted region by linear extrapolation (each new pixel the mean, over the directions d with two
  known pixels, of 2·v(p+d) − v(p+2d)), so every vertex reads a distinct point on the surface.
* **Noise.** The network's map carries pixel-scale noise, and its outermost :data:`MAP_EDGE_PX`
  rows and columns are bent by the network's zero padding (spikes where the layout reaches the UV
  square's corners, the temples: those pixels are extrapolated like the border); a Gaussian of
  :data:`SURFACE_SIGMA_PX` output pixels, normalised over the known pixels, removes the noise. It
  smooths the map's difference from the model's mean map, so the average face's curvature (nose,
  lips) is kept as it is.
* **Kinks.** Bilinear interpolation is only C0: the surface bends at every output pixel row and
  column, at 160 → 256 every 1.6 vertex rows, which smooth shading shows as stair-step bands. The
  Catmull–Rom kernel is C1 and reproduces linear and quadratic maps exactly.

The 68 landmarks keep the bilinear read-out of the trusted pixels (engine.readout): the landmark
figures do not depend on this module. benchmarks/mesh_quality.py measures the surface.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage, sparse

from .position_map import MapSampler

EXTENSION_PX = 3  # rings of extrapolated pixels: the cubic kernel reaches 2 px past a vertex, plus one of margin
SURFACE_SIGMA_PX = 1.0  # output px: removes the network's pixel-scale noise, blurs under 1 mm of face
MAP_EDGE_PX = 2  # output px along the map's own edge left to extrapolation: zero padding bends them (temple spikes)
DIRECTIONS = tuple((dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if (dr, dc) != (0, 0))


def extension_matrix(valid: np.ndarray, rings: int = EXTENSION_PX) -> tuple[sparse.csr_matrix, np.ndarray]:
    """(P, P) sparse E (P = H·W) with ``E @ map.reshape(P, C)`` the map extended ``rings`` pixels past
    ``valid`` (H, W) by linear extrapolation, and the (H, W) bool mask of the pixels it defines.
    Rows of trusted pixels are the identity; every row's columns are trusted pixels only."""
    valid = np.asarray(valid, bool)
    h, w = valid.shape
    p = h * w
    known = valid.copy()
    rows = sparse.identity(p, format="csr", dtype=np.float64).multiply(valid.ravel()[:, None]).tocsr()
    for _ in range(rings):
        ring = _next_ring(known)
        if not ring.any():
            break
        r, c = np.nonzero(ring)
        coef_rows, coef_cols, coef_vals = [], [], []
        weight = np.zeros(len(r))
        for dr, dc in DIRECTIONS:
            r1, c1, r2, c2 = r + dr, c + dc, r + 2 * dr, c + 2 * dc
            inside = (r2 >= 0) & (r2 < h) & (c2 >= 0) & (c2 < w)
            ok = np.zeros(len(r), bool)
            ok[inside] = known[r1[inside], c1[inside]] & known[r2[inside], c2[inside]]
            idx = np.flatnonzero(ok)
            coef_rows += [idx, idx]
            coef_cols += [r1[idx] * w + c1[idx], r2[idx] * w + c2[idx]]
            coef_vals += [np.full(len(idx), 2.0), np.full(len(idx), -1.0)]
            weight[idx] += 1.0
        lone = np.flatnonzero(weight == 0)  # no two known pixels in a row: the mean of the known neighbours
        for dr, dc in DIRECTIONS:
            r1, c1 = r[lone] + dr, c[lone] + dc
            inside = (r1 >= 0) & (r1 < h) & (c1 >= 0) & (c1 < w)
            ok = np.zeros(len(lone), bool)
            ok[inside] = known[r1[inside], c1[inside]]
            idx = lone[ok]
            coef_rows.append(idx)
            coef_cols.append(r[idx] * w + c[idx] + dr * w + dc)
            coef_vals.append(np.ones(len(idx)))
            weight[idx] += 1.0
        vals = np.concatenate(coef_vals) / weight[np.concatenate(coef_rows)]
        step = sparse.csr_matrix((vals, (np.concatenate(coef_rows), np.concatenate(coef_cols))), shape=(len(r), p))
        new_rows = step @ rows  # in terms of trusted pixels
        rows = (rows + _placed(new_rows, r * w + c, p)).tocsr()
        known |= ring
    return rows, known


def _placed(block: sparse.spmatrix, at: np.ndarray, n_rows: int) -> sparse.csr_matrix:
    """A (n_rows, columns) sparse matrix holding row i of ``block`` (K, columns) at row ``at[i]``, zeros elsewhere."""
    scatter = sparse.csr_matrix((np.ones(len(at)), (at, np.arange(len(at)))), shape=(n_rows, len(at)))
    return (scatter @ block).tocsr()


def _next_ring(known: np.ndarray) -> np.ndarray:
    """Unknown pixels with a known 8-neighbour."""
    padded = np.pad(known, 1)
    h, w = known.shape
    near = np.zeros_like(known)
    for dr, dc in DIRECTIONS:
        near |= padded[1 + dr : 1 + dr + h, 1 + dc : 1 + dc + w]
    return near & ~known


def catmull_rom_weights(t: np.ndarray) -> np.ndarray:
    """(K,) fractional positions in [0, 1) → (K, 4) Catmull–Rom weights of the taps at −1, 0, 1, 2."""
    t = np.asarray(t, np.float64)
    t2, t3 = t * t, t * t * t
    return np.stack(
        [
            0.5 * (-t3 + 2 * t2 - t),
            0.5 * (3 * t3 - 5 * t2 + 2),
            0.5 * (-3 * t3 + 4 * t2 + t),
            0.5 * (t3 - t2),
        ],
        axis=1,
    )


def cubic_sampler(valid: np.ndarray, uv: np.ndarray) -> MapSampler:
    """Catmull–Rom read-out at ``uv`` (K, 2) (map px, u = column) of maps defined on ``valid`` (H, W); a
    point whose 4×4 taps are not all valid takes the mask-aware bilinear read-out instead."""
    valid = np.asarray(valid, bool)
    uv = np.asarray(uv, np.float64)
    h, w = valid.shape
    u0, v0 = np.floor(uv[:, 0]).astype(np.int64), np.floor(uv[:, 1]).astype(np.int64)
    wu, wv = catmull_rom_weights(uv[:, 0] - u0), catmull_rom_weights(uv[:, 1] - v0)
    taps_r, taps_c = np.broadcast_arrays(
        v0[:, None, None] + np.arange(-1, 3)[None, :, None], u0[:, None, None] + np.arange(-1, 3)[None, None, :]
    )  # (K, 4, 4) each
    ok = ((taps_r >= 0) & (taps_r < h) & (taps_c >= 0) & (taps_c < w)).all(axis=(1, 2))
    ok[ok] = valid[taps_r[ok], taps_c[ok]].all(axis=(1, 2))
    weights = wv[:, :, None] * wu[:, None, :]
    rows = np.repeat(np.flatnonzero(ok), 16)
    matrix = sparse.csr_matrix(
        (weights[ok].ravel(), (rows, (taps_r[ok] * w + taps_c[ok]).ravel())), shape=(len(uv), h * w)
    )
    if not ok.all():
        lost = np.flatnonzero(~ok)
        matrix = matrix + _placed(MapSampler.build(valid, uv[lost]).matrix, lost, len(uv))
    return MapSampler(shape=(h, w), matrix=matrix.tocsr().astype(np.float32))


@dataclass(frozen=True, slots=True, eq=False)
class SurfaceReadout:
    """The vertices' read-out (see the module's text): ``readout(out_map)`` (s, s, 3) → (N, 3) float32.

    The map is extended past its trusted pixels (``extend``, defined on ``known``); its difference from
    ``base`` (the model's mean map, whose curvature is the average face's and no noise; zero when the
    model has none) is smoothed by a Gaussian of :data:`SURFACE_SIGMA_PX` normalised over ``known``,
    so the smoothing removes noise without flattening the face; the result is read by ``sample``."""

    extend: sparse.csr_matrix  # (s·s, s·s), columns on trusted pixels only
    known: np.ndarray  # (s, s) bool: trusted pixels and the extension rings
    coverage: np.ndarray  # (s, s) float64: the Gaussian of ``known`` (the smoothing's normaliser)
    base: np.ndarray  # (s, s, 3) float64: the extended base map (zeros without one)
    sample: MapSampler  # Catmull–Rom over ``known``

    @classmethod
    def build(cls, valid: np.ndarray, uv: np.ndarray, base: np.ndarray | None = None) -> SurfaceReadout:
        """For maps trusted on ``valid`` (s, s), read at ``uv`` (N, 2) map px (u = column); ``base``
        (s, s, 3): the model's mean map, or None. The :data:`MAP_EDGE_PX` pixels along the map's edge
        are not trusted here, whatever ``valid`` says."""
        valid = np.asarray(valid, bool).copy()
        valid[:MAP_EDGE_PX], valid[-MAP_EDGE_PX:], valid[:, :MAP_EDGE_PX], valid[:, -MAP_EDGE_PX:] = (
            False,
            False,
            False,
            False,
        )
        extend, known = extension_matrix(valid)
        s = known.shape
        coverage = ndimage.gaussian_filter(known.astype(np.float64), SURFACE_SIGMA_PX)
        if base is None:
            ext_base = np.zeros((*s, 3))
        else:
            base = np.asarray(base, np.float64)
            if base.shape != (*s, 3):
                raise ValueError(f"base map must be {s} + (3,), got shape {base.shape}")
            ext_base = np.asarray(extend @ np.nan_to_num(base).reshape(-1, 3)).reshape(*s, 3)
            smooth = _smoothed(ext_base * known[..., None], coverage)  # the extrapolated rings smoothed,
            ext_base = np.where(valid[..., None], ext_base, smooth)  # the trusted pixels kept
        return cls(extend=extend, known=known, coverage=coverage, base=ext_base, sample=cubic_sampler(known, uv))

    def __len__(self) -> int:
        return len(self.sample)

    def __call__(self, out_map: np.ndarray) -> np.ndarray:
        out_map = np.asarray(out_map)
        s = self.known.shape
        if out_map.ndim != 3 or out_map.shape[:2] != s:
            raise ValueError(f"map must be {s} + (C,), got shape {out_map.shape}")
        c = out_map.shape[2]
        if c != self.base.shape[2]:
            raise ValueError(f"map must have {self.base.shape[2]} channels, got {c}")
        flat = np.nan_to_num(out_map.reshape(-1, c).astype(np.float64, copy=False))  # junk outside the mask may be NaN
        residual = (np.asarray(self.extend @ flat).reshape(*s, c) - self.base) * self.known[..., None]
        return self.sample((self.base + _smoothed(residual, self.coverage)).astype(np.float32))


def _smoothed(values: np.ndarray, coverage: np.ndarray) -> np.ndarray:
    """(s, s, C) values (zero off the known pixels) → their Gaussian of :data:`SURFACE_SIGMA_PX`,
    normalised by ``coverage`` (the Gaussian of the known pixels' mask)."""
    smooth = ndimage.gaussian_filter(values, (SURFACE_SIGMA_PX, SURFACE_SIGMA_PX, 0))
    return smooth / np.maximum(coverage, np.finfo(np.float64).tiny)[..., None]
