"""The UV layout: the committed file's invariants, and agreement with PRNet's published layout."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from engine.errors import LayoutError
from engine.layout import default_layout, grid_triangles, load_layout

KEYPOINT_MAX_PX = 1.0  # our 68 keypoints vs PRNet's uv_kpt_ind.txt (theirs are rounded to pixels)
MASK_IOU_MIN = 0.9  # neck-free BFM region vs PRNet's mask (measured 0.914; theirs adds neck/ear rims)
MIRROR_SYMMETRY_PX = 0.05  # mean |u + u_mirror − (S − 1)|: the BFM UV map is left/right symmetric


def test_committed_layout_invariants():
    lay = default_layout()
    assert lay.size == 256
    assert 43_000 <= lay.n_vertices <= 46_000
    assert set(np.unique(lay.weight_mask)) == {0.0, 3.0, 4.0, 16.0}
    assert not (lay.weight_mask[~lay.face_mask] > 0).any()
    kp = np.round(lay.keypoints_uv).astype(int)
    assert lay.face_mask[kp[:, 1], kp[:, 0]].all()
    assert np.abs(lay.canonical_vertices.mean(axis=0)).max() < 1e-3  # centred
    u = lay.face_indices % lay.size
    assert np.abs(u + lay.mirror_uv[:, 0] - (lay.size - 1)).mean() < MIRROR_SYMMETRY_PX


def test_canonical_scale_is_millimetres():
    """Outer eye corners of the BFM mean face are ≈ 90–100 mm apart."""
    from engine.position_map import map_from_vertices, sample_map

    lay = default_layout()
    lm = sample_map(map_from_vertices(lay.canonical_vertices, lay), lay.face_mask, lay.keypoints_uv)
    assert 85.0 < np.linalg.norm(lm[36] - lm[45]) < 105.0
    assert lm[8, 1] > lm[27, 1]  # chin below the nose bridge: y down
    assert lm[30, 2] > lm[0, 2]  # nose tip nearer the camera than the jaw: z toward the camera


def test_grid_triangles_two_per_full_cell():
    mask = np.zeros((4, 4), bool)
    mask[1:3, 1:3] = True  # one full cell
    tris = grid_triangles(mask)
    assert tris.shape == (2, 3)
    mask[0, 0] = True  # a lone pixel adds nothing
    assert len(grid_triangles(mask)) == 2


def test_malformed_layout_is_named(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, layout_id=np.array("x"), face_mask=np.ones((4, 4), np.uint8))
    with pytest.raises(LayoutError, match="lacks arrays"):
        load_layout(bad)
    with pytest.raises(LayoutError, match="not found"):
        load_layout(tmp_path / "none.npz")


def test_matches_prnet_layout(shared_data):
    lay = default_layout()
    official = shared_data / "prnet_official"
    kpt = np.loadtxt(official / "uv_kpt_ind.txt").T
    assert np.abs(lay.keypoints_uv - kpt).max() <= KEYPOINT_MAX_PX
    theirs = cv2.imread(str(official / "uv_face_mask.png"), cv2.IMREAD_GRAYSCALE) > 0
    iou = (lay.face_mask & theirs).sum() / (lay.face_mask | theirs).sum()
    assert iou >= MASK_IOU_MIN


def test_builder_reproduces_committed_layout(shared_data):
    from training.bfm import load_topology
    from training.layout_builder import build_layout

    built = build_layout(load_topology(shared_data / "teacher"))
    lay = default_layout()
    assert built.layout_id == lay.layout_id
    assert np.array_equal(built.face_mask, lay.face_mask)
    assert np.array_equal(built.triangles, lay.triangles)
    assert np.allclose(built.canonical_vertices, lay.canonical_vertices, atol=1e-4)
    assert np.array_equal(built.weight_mask, lay.weight_mask)
