"""The vertices' read-out (engine.surface_readout): exact on the maps it must reproduce, and a clean
surface from a noisy map where the plain bilinear read-out is not."""

from __future__ import annotations

import numpy as np
import pytest
from arrays import assert_close
from mean_face import mean_face_crop
from tolerances import MESH_BORDER_ROUGHNESS, MESH_NORMAL_DEVIATION_DEG

from engine.layout import default_layout
from engine.mesh import vertex_uv_px
from engine.mesh_quality import measure_mesh
from engine.position_map import MapSampler, layout_pixel_uv, map_from_vertices
from engine.readout import output_mask
from engine.surface_readout import (
    EXTENSION_PX,
    MAP_EDGE_PX,
    SurfaceReadout,
    catmull_rom_weights,
    extension_matrix,
)

FLOAT_PX = 1e-3  # float32 round-off on maps of a few hundred px
NOISE_PX = 0.2  # per-pixel noise on the 160² mean-face map: the bilinear read-out fails every bar with it


def _disk_mask(size: int = 40, radius: float = 12.0) -> np.ndarray:
    r, c = np.mgrid[:size, :size]
    return (r - size / 2) ** 2 + (c - size / 2) ** 2 <= radius**2


def test_the_extension_continues_a_linear_map_exactly_and_reads_only_trusted_pixels():
    valid = _disk_mask()
    r, c = np.mgrid[: valid.shape[0], : valid.shape[1]].astype(np.float64)
    linear = np.stack([2.0 * c + 1.0, -0.5 * r + 3.0, 0.25 * r + 0.75 * c], axis=-1)
    extend, known = extension_matrix(valid)
    assert known.sum() > valid.sum() and (known & valid).sum() == valid.sum()
    junk = np.where(valid[..., None], linear, np.nan)  # untrusted pixels may hold NaN
    out = np.asarray(extend @ np.nan_to_num(junk, nan=1e9).reshape(-1, 3)).reshape(linear.shape)
    assert_close(out[known], linear[known], FLOAT_PX, "extended linear map")
    assert set(extend.indices.tolist()) <= set(np.flatnonzero(valid).tolist())


def test_catmull_rom_weights_sum_to_one_and_reproduce_a_line():
    t = np.linspace(0.0, 0.999, 50)
    w = catmull_rom_weights(t)
    assert_close(w.sum(axis=1), np.ones(len(t)), 1e-12, "weight sums")
    assert_close(w @ np.array([-1.0, 0.0, 1.0, 2.0]), t, 1e-12, "a line through the taps")


def test_a_map_equal_to_its_base_is_read_exactly_inside():
    """No residual, nothing smoothed: the vertices are the base map, read by Catmull–Rom (exact at pixel
    centres) — the model's mean face keeps its shape."""
    layout = default_layout()
    base = np.nan_to_num(map_from_vertices(mean_face_crop(layout), layout))
    valid = output_mask(layout, layout.size)
    reader = SurfaceReadout.build(valid, layout_pixel_uv(layout, layout.size), base=base)
    got = reader(base)
    inner = _interior(valid, layout)
    assert_close(got[inner], mean_face_crop(layout)[inner], FLOAT_PX, "interior vertices")


def _interior(valid: np.ndarray, layout) -> np.ndarray:
    """(N,) bool: face pixels at least EXTENSION_PX + MAP_EDGE_PX from the trusted region's edge."""
    from scipy import ndimage

    depth = ndimage.distance_transform_edt(np.pad(valid, 1))[1:-1, 1:-1]
    return depth[layout.face_mask] > EXTENSION_PX + MAP_EDGE_PX


NETWORK_SIZE = 160  # the shipped network's output side


@pytest.fixture(scope="module")
def noisy_mean_face():
    """The mean face as a 160² network map (its layout map read at the 160 grid), and that map with
    per-pixel noise."""
    layout = default_layout()
    face_map = np.nan_to_num(map_from_vertices(mean_face_crop(layout), layout))
    grid = np.arange(NETWORK_SIZE) * (layout.size - 1) / (NETWORK_SIZE - 1)
    u, v = np.meshgrid(grid, grid, indexing="xy")
    points = np.stack([u.ravel(), v.ravel()], axis=1)
    clean = MapSampler.build(layout.face_mask, points)(face_map).reshape(NETWORK_SIZE, NETWORK_SIZE, 3)
    noise = np.random.default_rng(3).normal(0.0, NOISE_PX, clean.shape).astype(np.float32)
    return layout, clean, clean + noise


def test_a_noisy_map_gives_a_clean_surface_where_the_bilinear_read_out_does_not(noisy_mean_face):
    layout, clean, noisy = noisy_mean_face
    valid = output_mask(layout, NETWORK_SIZE)
    uv = vertex_uv_px(layout) * (NETWORK_SIZE - 1) / (layout.size - 1)
    smooth = SurfaceReadout.build(valid, uv, base=clean)(noisy)
    q = measure_mesh(smooth, layout.triangles)
    assert q.zero_area_triangles == 0 and q.long_edges == 0
    assert q.normal_deviation_deg <= MESH_NORMAL_DEVIATION_DEG and q.border_roughness <= MESH_BORDER_ROUGHNESS
    plain = MapSampler.build(valid, layout_pixel_uv(layout, NETWORK_SIZE))(noisy)
    old = measure_mesh(plain, layout.triangles)
    assert old.zero_area_triangles > 0 and old.normal_deviation_deg > MESH_NORMAL_DEVIATION_DEG
    assert old.border_roughness > MESH_BORDER_ROUGHNESS
