"""Measures of a face mesh's surface that an artist sees: degenerate triangles, spikes, roughness.

All four are invariant to the mesh's scale and rotation, so they read the same on the engine's
image-frame vertices, an OBJ, or the canonical (frontal) vertices:

* :func:`zero_area_triangles` — triangles whose area is under :data:`ZERO_AREA_FRACTION` of the
  median triangle's (collapsed vertices: shading artefacts, broken normals);
* :func:`long_edges` — edges longer than :data:`LONG_EDGE_FACTOR` × the median edge (spikes);
* :func:`normal_deviation_deg` — per vertex, the angle between its normal and the mean normal of
  its neighbours (ripples and stair steps read as large angles; the layout's own mean face: 0.14°);
* :func:`border_roughness` — the outer border loop's length over the length of the same loop
  smoothed along itself (Gaussian, σ = :data:`BORDER_SIGMA_VERTICES`): 1 for a smooth border.

:func:`measure_mesh` gathers them as a :class:`MeshQuality` (``benchmarks/mesh_quality.py`` prints
them for photos).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

ZERO_AREA_FRACTION = 1e-6  # of the median triangle area: float round-off of a collapsed triangle, not a thin one
LONG_EDGE_FACTOR = 8.0  # the layout's mean face has no edge over 8× its median edge
BORDER_SIGMA_VERTICES = 4.0  # smoothing scale of the border loop: removes px-scale serration, keeps the outline


@dataclass(frozen=True, slots=True)
class MeshQuality:
    """The four measures of one mesh (see the module's text)."""

    zero_area_triangles: int
    long_edges: int
    normal_deviation_deg: float  # median over the vertices
    border_roughness: float


def triangle_areas(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """(T,) areas of the (T, 3) triangles over (N, 3) vertices, in the vertices' unit squared."""
    v = np.asarray(vertices, np.float64)[np.asarray(triangles)]
    return 0.5 * np.linalg.norm(np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0]), axis=1)


def unique_edges(triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(E, 2) sorted vertex pairs of the mesh's edges and (E,) how many triangles share each."""
    t = np.asarray(triangles, np.int64)
    pairs = np.sort(np.concatenate([t[:, [0, 1]], t[:, [1, 2]], t[:, [2, 0]]]), axis=1)
    edges, counts = np.unique(pairs, axis=0, return_counts=True)
    return edges, counts


def zero_area_triangles(vertices: np.ndarray, triangles: np.ndarray) -> int:
    areas = triangle_areas(vertices, triangles)
    return int((areas <= ZERO_AREA_FRACTION * np.median(areas)).sum())


def long_edges(vertices: np.ndarray, triangles: np.ndarray) -> int:
    edges, _ = unique_edges(triangles)
    v = np.asarray(vertices, np.float64)
    length = np.linalg.norm(v[edges[:, 0]] - v[edges[:, 1]], axis=1)
    return int((length > LONG_EDGE_FACTOR * np.median(length)).sum())


def vertex_normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """(N, 3) unit area-weighted vertex normals (zero for a vertex of no non-degenerate triangle)."""
    v = np.asarray(vertices, np.float64)
    t = np.asarray(triangles, np.int64)
    face = np.cross(v[t[:, 1]] - v[t[:, 0]], v[t[:, 2]] - v[t[:, 0]])  # length = 2 × area
    corners = t.ravel()  # each triangle's normal goes to its three corners (bincount: no np.add.at)
    per_corner = np.repeat(face, 3, axis=0)
    normals = np.stack([np.bincount(corners, per_corner[:, k], minlength=len(v)) for k in range(3)], axis=1)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return np.divide(normals, length, out=np.zeros_like(normals), where=length > 0)


def normal_deviation_deg(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """(N,) degrees between each vertex normal and the mean normal of its edge neighbours (NaN for a
    vertex without neighbours or normal)."""
    normals = vertex_normals(vertices, triangles)
    edges, _ = unique_edges(triangles)
    mean = np.zeros_like(normals)
    np.add.at(mean, edges[:, 0], normals[edges[:, 1]])
    np.add.at(mean, edges[:, 1], normals[edges[:, 0]])
    length = np.linalg.norm(mean, axis=1)
    ok = (length > 0) & (np.linalg.norm(normals, axis=1) > 0)
    cos = np.einsum("ij,ij->i", normals[ok], mean[ok]) / length[ok]
    out = np.full(len(normals), np.nan)
    out[ok] = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
    return out


def boundary_loops(triangles: np.ndarray) -> list[np.ndarray]:
    """The mesh's boundary loops (edges of one triangle), each as an array of vertex indices in order,
    longest first. A vertex where several loops touch is visited once per loop."""
    edges, counts = unique_edges(triangles)
    border = edges[counts == 1]
    nxt: dict[int, list[int]] = {}
    for a, b in border:
        nxt.setdefault(int(a), []).append(int(b))
        nxt.setdefault(int(b), []).append(int(a))
    unused = {tuple(e) for e in border.tolist()}
    loops = []
    for a, b in border.tolist():
        if (a, b) not in unused:
            continue
        unused.discard((a, b))
        loop, prev, cur = [a], a, b
        while cur != a:
            loop.append(cur)
            step = next((n for n in nxt[cur] if (min(cur, n), max(cur, n)) in unused and n != prev), None)
            if step is None:
                break
            unused.discard((min(cur, step), max(cur, step)))
            prev, cur = cur, step
        loops.append(np.asarray(loop))
    return sorted(loops, key=len, reverse=True)


def border_roughness(vertices: np.ndarray, triangles: np.ndarray) -> float:
    """Length of the outer (longest) border loop over the length of that loop smoothed along itself."""
    loop = boundary_loops(triangles)[0]
    points = np.asarray(vertices, np.float64)[loop]
    smooth = ndimage.gaussian_filter1d(points, BORDER_SIGMA_VERTICES, axis=0, mode="wrap")

    def length(p: np.ndarray) -> float:
        return float(np.linalg.norm(np.diff(p, axis=0, append=p[:1]), axis=1).sum())

    return length(points) / length(smooth)


def measure_mesh(vertices: np.ndarray, triangles: np.ndarray) -> MeshQuality:
    """The four measures of a (N, 3) / (T, 3) mesh."""
    return MeshQuality(
        zero_area_triangles=zero_area_triangles(vertices, triangles),
        long_edges=long_edges(vertices, triangles),
        normal_deviation_deg=float(np.nanmedian(normal_deviation_deg(vertices, triangles))),
        border_roughness=border_roughness(vertices, triangles),
    )
