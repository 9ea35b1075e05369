"""The surface measures (engine.mesh_quality) on meshes whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from engine.layout import grid_triangles
from engine.mesh_quality import (
    LONG_EDGE_FACTOR,
    border_roughness,
    boundary_loops,
    long_edges,
    measure_mesh,
    normal_deviation_deg,
    zero_area_triangles,
)

RADIUS = 20.0  # px of the disk mesh


def _disk(smooth_border: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A flat grid mesh over a disk of pixels; with ``smooth_border`` the border vertices are moved
    onto the circle through them (no staircase)."""
    size = int(2 * RADIUS + 5)
    r, c = np.mgrid[:size, :size]
    mask = (r - size // 2) ** 2 + (c - size // 2) ** 2 <= RADIUS**2
    rows, cols = np.nonzero(mask)
    vertices = np.stack([cols, rows, np.zeros(len(rows))], axis=1).astype(np.float64)
    triangles = grid_triangles(mask)
    if smooth_border:
        loop = boundary_loops(triangles)[0]
        d = vertices[loop, :2] - size // 2
        vertices[loop, :2] = size // 2 + d / np.linalg.norm(d, axis=1, keepdims=True) * RADIUS
    return vertices, triangles


def test_a_flat_grid_is_clean_and_its_pixel_staircase_border_is_rough():
    vertices, triangles = _disk()
    q = measure_mesh(vertices, triangles)
    assert q.zero_area_triangles == 0 and q.long_edges == 0 and q.normal_deviation_deg == pytest.approx(0.0)
    assert q.border_roughness > 1.15  # the staircase: diagonal stretches are √2 longer than their line
    assert border_roughness(*_disk(smooth_border=True)) < 1.02


def test_a_collapsed_vertex_makes_zero_area_triangles():
    vertices, triangles = _disk()
    a = int(np.argmin(np.linalg.norm(vertices[:, :2] - vertices[:, :2].mean(axis=0), axis=1)))
    b = a + 1  # its right-hand neighbour in the same row: an inner edge
    vertices[b] = vertices[a]
    shared = (triangles == a).any(axis=1) & (triangles == b).any(axis=1)
    assert shared.sum() >= 1 and zero_area_triangles(vertices, triangles) == shared.sum()


def test_a_spike_makes_long_edges_and_bends_the_normals():
    vertices, triangles = _disk()
    centre = int(np.argmin(np.linalg.norm(vertices[:, :2] - vertices[:, :2].mean(axis=0), axis=1)))
    vertices[centre, 2] = 2 * LONG_EDGE_FACTOR  # the grid's edges are 1 and √2 long
    assert long_edges(vertices, triangles) >= 4
    deviation = normal_deviation_deg(vertices, triangles)
    assert np.nanmax(deviation) > 45.0 and np.nanmedian(deviation) == pytest.approx(0.0)


def test_the_outer_border_is_the_longest_loop():
    vertices, triangles = _disk()
    inner = np.linalg.norm(vertices[:, :2] - vertices[:, :2].mean(axis=0), axis=1) < 4
    keep = ~inner[triangles].any(axis=1)  # a hole in the middle
    loops = boundary_loops(triangles[keep])
    assert len(loops) == 2 and len(loops[0]) > len(loops[1])
