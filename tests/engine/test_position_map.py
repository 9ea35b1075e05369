"""engine.position_map: mask-aware bilinear read-out, MapSampler, layout pixels at other map sizes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from arrays import assert_close
from synthetic import layout, posed_face
from tolerances import POSITION_PX

from engine.position_map import MapSampler, layout_pixel_uv, map_from_vertices, sample_map


def _toy_map():
    """4×4 one-channel map whose valid pixels hold 10·row + column; invalid pixels are NaN."""
    values = (10.0 * np.arange(4)[:, None] + np.arange(4)[None, :]).astype(np.float32)[..., None]
    valid = np.ones((4, 4), bool)
    valid[1, 2] = valid[2, 1] = valid[2, 2] = False
    values[~valid] = np.nan
    return values, valid


def test_pixel_centres_read_back_exactly():
    values, valid = _toy_map()
    rows, cols = np.nonzero(valid)
    got = sample_map(values, valid, np.stack([cols, rows], axis=1).astype(np.float32))
    assert_close(got[:, 0], values[rows, cols, 0], 0.0, "read-out at valid pixel centres")


def test_weights_are_renormalised_over_valid_corners_only():
    values, valid = _toy_map()
    # (u, v) = (1.5, 1.25): corners (1,1) w .375, (1,2) invalid, (2,1) invalid, (2,2) invalid
    got = sample_map(values, valid, np.array([[1.5, 1.25], [0.25, 0.5]]))
    assert_close(got[0, 0], values[1, 1, 0], 1e-6, "single valid corner")
    # all four valid: plain bilinear of the linear field 10·v + u
    assert_close(got[1, 0], 10 * 0.5 + 0.25, 1e-5, "full bilinear")
    # (u, v) = (1.5, 1.0): corners (1,1) and (1,2 invalid) → (1,1) only
    assert_close(sample_map(values, valid, np.array([[1.5, 1.0]]))[0, 0], 11.0, 1e-6, "edge of the mask")


def test_nearest_valid_pixel_when_no_corner_is_valid():
    values = np.arange(25, dtype=np.float32).reshape(5, 5, 1)
    valid = np.zeros((5, 5), bool)
    valid[0, 0] = valid[4, 4] = True
    got = sample_map(values, valid, np.array([[1.4, 1.4], [2.6, 2.6], [3.0, 3.0]]))
    assert_close(got[:, 0], [0.0, 24.0, 24.0], 0.0, "nearest-valid fallback")


def test_out_of_range_points_are_clamped():
    values, valid = _toy_map()
    got = sample_map(values, valid, np.array([[-5.0, -5.0], [9.0, 0.0]]))
    assert_close(got[:, 0], [0.0, 3.0], 0.0, "clamped to the border")


def test_sampler_matches_sample_map_and_ignores_junk_off_mask():
    lay = layout()
    face = posed_face(yaw=30, pitch=-10, roll=5)
    uv = lay.keypoints_uv + np.float32(0.37)
    sampler = MapSampler.build(lay.face_mask, uv)
    junk = np.where(lay.face_mask[..., None], face.position_map, 1e6).astype(np.float32)
    assert_close(sampler(junk), sample_map(face.position_map, lay.face_mask, uv), POSITION_PX, "sampler vs sample_map")
    assert len(sampler) == len(uv)


def test_sampler_reads_45k_vertices_at_their_pixels():
    lay = layout()
    face = posed_face()
    sampler = MapSampler.build(lay.face_mask, layout_pixel_uv(lay, lay.size))
    out = sampler(face.position_map)
    assert out.shape == face.vertices.shape
    assert_close(out, face.vertices, POSITION_PX, "vertices read at their own pixels")


def test_layout_pixel_uv_reads_a_smaller_map():
    lay = layout()
    uv256 = layout_pixel_uv(lay, lay.size)
    rows, cols = np.divmod(lay.face_indices, lay.size)
    assert_close(uv256, np.stack([cols, rows], axis=1), 0.0, "identity at the layout's own size")
    # a 128² map of a field linear in UV: read at the 256 pixels it gives the field there
    n = 128
    g = np.linspace(0.0, 1.0, n)
    field = np.stack(np.meshgrid(g, g, indexing="xy"), axis=-1).astype(np.float32)  # (u, v) in [0, 1]
    got = sample_map(field, np.ones((n, n), bool), layout_pixel_uv(lay, n))
    assert_close(got, uv256 / (lay.size - 1), 1e-6, "UV read from a 128² map")


def test_map_from_vertices_round_trip():
    lay = layout()
    face = posed_face(yaw=10)
    back = face.position_map[lay.face_mask]
    assert_close(back, face.vertices, 0.0, "scatter then gather")
    assert np.isnan(face.position_map[~lay.face_mask]).all()
    assert (map_from_vertices(face.vertices, lay, fill=0.0)[~lay.face_mask] == 0.0).all()
    with pytest.raises(ValueError, match=r"\(10, 3\)"):
        map_from_vertices(face.vertices[:10], lay)


@pytest.mark.parametrize(
    ("values", "valid", "uv"),
    [
        (np.zeros((4, 4)), np.ones((4, 4), bool), np.zeros((1, 2))),  # no channel axis
        (np.zeros((4, 4, 1)), np.ones((3, 4), bool), np.zeros((1, 2))),  # mask shape
        (np.zeros((4, 4, 1)), np.ones((4, 4), bool), np.zeros((1, 3))),  # uv columns
        (np.zeros((4, 4, 1)), np.zeros((4, 4), bool), np.zeros((1, 2))),  # empty mask
        (np.zeros((4, 4, 1)), np.ones((4, 4), bool), np.full((1, 2), np.nan)),  # NaN point
    ],
)
def test_bad_shapes_raise(values, valid, uv):
    with pytest.raises(ValueError):
        sample_map(values, valid, uv)


def test_sampler_rejects_a_map_of_another_size():
    sampler = MapSampler.build(np.ones((4, 4), bool), np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"\(5, 5, 1\)"):
        sampler(np.zeros((5, 5, 1)))


def test_geometry_modules_do_not_import_torch():
    code = (
        "import sys\n"
        "import engine.position_map, engine.mesh, engine.landmarks, engine.visibility, engine.pose, "
        "engine.depth, engine.texture\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(Path(__file__).resolve().parents[2]))
