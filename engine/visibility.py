"""Which parts of the face the camera sees: a vectorised z-buffer of the dense mesh.

The mesh is rasterised in numpy without a loop over triangles: every triangle tests the pixel centres
of its bounding box at once (triangles are grouped by box size, so a 2×2 box costs 4 tests, not the
largest box's count), interpolates z barycentrically, and ``np.maximum.at`` keeps the nearest
surface per pixel (z toward the camera, larger = nearer). :func:`depth_buffer` does this at image
resolution; :class:`ZBuffer` does it on a reduced grid whose side is the face's size in image pixels,
capped at :data:`BUFFER_MAX_SIDE` (256), which resolves occlusion at the vertex spacing of the 256²
layout and keeps 90k triangles near 20 ms.

A point is visible when its z is within a tolerance of the nearest surface at its (x, y); that
surface is read as the farthest of the four buffer pixels around the point, so a point on the
visible surface is never hidden by a sampling offset across a depth edge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

VISIBILITY_TOLERANCE = 0.02  # depth slack as a fraction of the face size (≈ 3 mm on a 155 mm wide face)
# side cap (px) of the reduced visibility buffer: about one buffer px per 256² layout cell across the
# face, i.e. occlusion resolved at vertex spacing; 90k triangles rasterise in ≈ 20 ms at this size
BUFFER_MAX_SIDE = 256
EDGE_EPS = 1e-5  # barycentric slack: pixel centres on a shared edge are covered by both triangles
MIN_DOUBLE_AREA = 1e-6  # px²; edge-on triangles (zero projected area) cover no pixel centre
MAX_CANDIDATES = 2_000_000  # candidate pixels per vectorised chunk (bounds temporary memory ≈ 60 MB)


def _check_mesh(vertices: np.ndarray, triangles: np.ndarray) -> None:
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise ValueError(f"vertices must be (N, 3), got shape {vertices.shape}")
    if triangles.ndim != 2 or triangles.shape[1] != 3:
        raise ValueError(f"triangles must be (T, 3), got shape {triangles.shape}")
    if triangles.size and (triangles.min() < 0 or triangles.max() >= len(vertices)):
        raise ValueError(f"triangle indices outside 0..{len(vertices) - 1}")


def _rasterize(xy: np.ndarray, z: np.ndarray, triangles: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest z per pixel centre of an (height, width) grid → (height, width) float32, NaN if empty."""
    x = np.asarray(xy[:, 0], dtype=np.float32)
    y = np.asarray(xy[:, 1], dtype=np.float32)
    z = np.asarray(z, dtype=np.float32)
    tri = np.asarray(triangles, dtype=np.int64)
    xs = [x[tri[:, k]] for k in range(3)]  # axis reductions over (T, 3) are slow: work per corner
    ys = [y[tri[:, k]] for k in range(3)]
    with np.errstate(invalid="ignore"):
        lo_x = np.maximum(np.ceil(np.minimum(np.minimum(xs[0], xs[1]), xs[2]) - EDGE_EPS), 0)
        lo_y = np.maximum(np.ceil(np.minimum(np.minimum(ys[0], ys[1]), ys[2]) - EDGE_EPS), 0)
        ext_x = np.minimum(np.floor(np.maximum(np.maximum(xs[0], xs[1]), xs[2]) + EDGE_EPS), width - 1) - lo_x
        ext_y = np.minimum(np.floor(np.maximum(np.maximum(ys[0], ys[1]), ys[2]) + EDGE_EPS), height - 1) - lo_y
        ok = (ext_x >= 0) & (ext_y >= 0)  # False for boxes off the grid and for NaN corners
    ext = np.where(ok, np.maximum(ext_x, ext_y), -1).astype(np.int64) + 1  # window side; 0 = no pixel
    # window sides: exact up to 4 px, then the next power of two (few groups, little waste)
    window = np.where(ext <= 4, ext, 2 ** np.ceil(np.log2(np.maximum(ext, 1))).astype(np.int64))
    sides = np.flatnonzero(np.bincount(window, minlength=1))
    sides = sides[sides > 0]
    # windows overhang the grid's far edges by < side px: a margin there keeps them from wrapping rows
    margin = int(sides.max()) if len(sides) else 0
    stride = width + margin
    buf = np.full((height + margin) * stride, -np.inf, dtype=np.float32)
    base = np.where(ok, lo_y, 0).astype(np.int64) * stride + np.where(ok, lo_x, 0).astype(np.int64)
    for side in sides.tolist():
        members = np.flatnonzero(window == side)
        step = max(1, MAX_CANDIDATES // (side * side))
        for c in range(0, len(members), step):
            t = members[c : c + step]
            _cover(buf, stride, tri[t], (x, y, z), (lo_x[t], lo_y[t], base[t]), side)
    out = buf.reshape(height + margin, stride)[:height, :width].copy()
    out[np.isneginf(out)] = np.nan
    return out


def _cover(
    buf: np.ndarray,
    stride: int,
    tri: np.ndarray,
    xyz: tuple[np.ndarray, np.ndarray, np.ndarray],
    corner: tuple[np.ndarray, np.ndarray, np.ndarray],
    side: int,
) -> None:
    """Test side×side pixel centres from each triangle's box corner; keep the max z per pixel.

    ``corner`` = (x, y, flat buffer index) of each window's first pixel; ``stride`` the buffer's row length.
    """
    x, y, z = xyz
    lo_x, lo_y, base = corner
    xa, ya, za = (a[tri[:, 0], None, None] for a in (x, y, z))
    e1x, e1y, dz1 = (a[tri[:, 1], None, None] - b for a, b in ((x, xa), (y, ya), (z, za)))
    e2x, e2y, dz2 = (a[tri[:, 2], None, None] - b for a, b in ((x, xa), (y, ya), (z, za)))
    det = e1x * e2y - e1y * e2x
    ok = np.abs(det) > MIN_DOUBLE_AREA
    inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0).astype(np.float32)
    step = np.arange(side, dtype=np.float32)
    rx = (lo_x[:, None, None] - xa) + step[None, None, :]  # (t, 1, side): pixel centre − first corner
    ry = (lo_y[:, None, None] - ya) + step[None, :, None]  # (t, side, 1)
    w1 = (rx * e2y - ry * e2x) * inv
    w2 = (ry * e1x - rx * e1y) * inv
    inside = (w1 >= -EDGE_EPS) & (w2 >= -EDGE_EPS) & (w1 + w2 <= 1.0 + EDGE_EPS) & ok
    zc = za + w1 * dz1 + w2 * dz2
    offsets = np.arange(side)[:, None] * stride + np.arange(side)[None, :]  # (side, side) int64
    pix = base[:, None, None] + offsets[None]
    np.maximum.at(buf, pix[inside], zc[inside])


def depth_buffer(vertices: np.ndarray, triangles: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-surface z at every pixel centre of an (height, width) image → float32, NaN off the mesh.

    ``vertices`` (N, 3) are image px (pixel centres at integers, z toward the camera).
    """
    vertices = np.asarray(vertices)
    triangles = np.asarray(triangles)
    _check_mesh(vertices, triangles)
    if height < 1 or width < 1:
        raise ValueError(f"buffer size must be positive, got ({height}, {width})")
    return _rasterize(vertices[:, :2], vertices[:, 2], triangles, int(height), int(width))


@dataclass(frozen=True, slots=True, eq=False)
class ZBuffer:
    """A reduced-resolution depth buffer of one face: buffer px = (image px − origin) · scale."""

    depth: np.ndarray  # (h, w) float32, nearest z (image px units), NaN where no surface
    origin: np.ndarray  # (2,) float64, image px (x, y) of buffer pixel (0, 0)
    scale: float  # buffer px per image px (≤ 1)
    face_size: float  # image px, larger side of the mesh's (x, y) extent

    @classmethod
    def from_mesh(cls, vertices: np.ndarray, triangles: np.ndarray, *, max_side: int = BUFFER_MAX_SIDE) -> ZBuffer:
        """Rasterise a mesh (image px) on a grid of side ≈ min(face size, ``max_side``)."""
        if max_side < 2:
            raise ValueError(f"max_side must be >= 2, got {max_side}")
        vertices = np.asarray(vertices)
        triangles = np.asarray(triangles)
        _check_mesh(vertices, triangles)
        finite = vertices[np.isfinite(vertices).all(axis=1)]
        if not len(finite):
            raise ValueError("mesh has no finite vertex")
        lo, hi = finite[:, :2].min(axis=0).astype(np.float64), finite[:, :2].max(axis=0).astype(np.float64)
        face_size = float(max((hi - lo).max(), 1.0))
        scale = min(1.0, max_side / face_size)
        w, h = (np.ceil((hi - lo) * scale).astype(int) + 1).tolist()
        xy = (vertices[:, :2] - lo) * scale
        depth = _rasterize(xy, vertices[:, 2], triangles, h, w)
        return cls(depth=depth, origin=lo, scale=scale, face_size=face_size)

    def surface_z(self, points: np.ndarray) -> np.ndarray:
        """(K, 2|3) image px → (K,) float32 z of the farthest of the nearest surfaces on the 2×2 buffer
        pixels around each point; −inf where any of them (or the point) is off the mesh."""
        points = np.asarray(points, dtype=np.float64)
        if points.ndim != 2 or points.shape[1] not in (2, 3):
            raise ValueError(f"points must be (K, 2) or (K, 3), got shape {points.shape}")
        h, w = self.depth.shape
        b = (points[:, :2] - self.origin) * self.scale
        b = np.where(np.isfinite(b), b, -2.0)
        x0, y0 = np.floor(b[:, 0]).astype(np.int64), np.floor(b[:, 1]).astype(np.int64)
        out = np.full(len(points), np.inf, dtype=np.float32)
        flat = self.depth.ravel()
        for dy in (0, 1):
            for dx in (0, 1):
                x, y = x0 + dx, y0 + dy
                inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
                z = np.full(len(points), -np.inf, dtype=np.float32)
                z[inside] = flat[y[inside] * w + x[inside]]
                np.fmin(out, np.where(np.isnan(z), -np.inf, z), out=out)
        return out

    def visible(self, points: np.ndarray, *, tolerance: float = VISIBILITY_TOLERANCE) -> np.ndarray:
        """(K, 3) image px → (K,) bool: z within ``tolerance`` × face size of the nearest surface."""
        points = np.asarray(points)
        if points.ndim != 2 or points.shape[1] != 3:
            raise ValueError(f"points must be (K, 3), got shape {points.shape}")
        with np.errstate(invalid="ignore"):
            return points[:, 2] >= self.surface_z(points) - tolerance * self.face_size


def vertex_visibility(
    vertices: np.ndarray,
    triangles: np.ndarray,
    *,
    tolerance: float = VISIBILITY_TOLERANCE,
    zbuffer: ZBuffer | None = None,
) -> np.ndarray:
    """(N,) bool: vertex k is seen by the camera (not behind another part of the mesh).

    ``tolerance`` is a fraction of the face size (larger side of the vertices' x/y extent, px);
    ``zbuffer`` reuses a :class:`ZBuffer` already built from the same mesh.
    """
    if zbuffer is None:
        zbuffer = ZBuffer.from_mesh(vertices, triangles)
    return zbuffer.visible(np.asarray(vertices), tolerance=tolerance)


def landmark_visibility(
    landmarks_3d: np.ndarray,
    vertices: np.ndarray,
    triangles: np.ndarray,
    *,
    tolerance: float = VISIBILITY_TOLERANCE,
    zbuffer: ZBuffer | None = None,
) -> np.ndarray:
    """(68,) bool visibility of landmarks (68, 3) image px against the mesh ``vertices``/``triangles``."""
    landmarks_3d = np.asarray(landmarks_3d)
    if landmarks_3d.ndim != 2 or landmarks_3d.shape[1] != 3:
        raise ValueError(f"landmarks must be (68, 3), got shape {landmarks_3d.shape}")
    if zbuffer is None:
        zbuffer = ZBuffer.from_mesh(vertices, triangles)
    return zbuffer.visible(landmarks_3d, tolerance=tolerance)
