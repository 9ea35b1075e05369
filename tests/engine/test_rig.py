"""engine.rig: bones from the landmarks, skin weights designed in UV, posed by linear blend skinning.

On the layout's mean face (canonical mm): the pose behaviours the rig promises — the jaw opens the
mouth and leaves the forehead, a brow moves without the eye, the lids close, the head turns rigidly
about the neck pivot.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from synthetic import layout

from engine.mesh import vertex_uv_px
from engine.pose import euler_to_rotation, head_pivot
from engine.position_map import map_from_vertices, sample_map
from engine.quad_mesh import quad_grid
from engine.rig import face_rig, rig_bones, skin, uv_to_layout_px

JAW_OPEN_DEG = 15.0
CHIN_MOVES_MM = 3.0  # the chin moves at least this much when the jaw turns 15°
FOREHEAD_STILL_MM = 0.2  # ... and the forehead at most this much
UPPER_LIP_STILL_MM = 1.0  # the upper lip's middle moves little with the jaw
BROW_RAISE_MM = 5.0
EYE_STILL_MM = 0.5  # a raised brow moves the lids at most this much
LID_CLOSE_DEG = -40.0  # the upper lid bone turned down
LID_CLOSED_FRACTION = 0.3  # the lid gap shrinks below this share of the open gap


@pytest.fixture(scope="module")
def mean_rig():
    lay = layout()
    v = lay.canonical_vertices.astype(np.float64)
    lm = sample_map(map_from_vertices(v, lay), lay.face_mask, lay.keypoints_uv.astype(np.float64))
    pivot = head_pivot(lm)
    return face_rig(lm, pivot, vertex_uv_px(lay), lay.keypoints_uv), v, lm, pivot


def _nearest(v: np.ndarray, point: np.ndarray) -> int:
    return int(np.linalg.norm(v - point, axis=1).argmin())


def test_weights_are_normalised_and_the_skull_is_rigid(mean_rig):
    rig, v, lm, _ = mean_rig
    w = rig.weights
    assert w.shape == (len(v), len(rig.weight_bones)) and (w >= 0).all()
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-5)
    rows = np.divmod(layout().face_indices, layout().size)[0]
    assert (w[rows < 20, rig.weight_bones.index("head")] == 1.0).all()  # the forehead's top: rigid
    deforming = {b.name for b in rig.bones if b.deform}
    assert set(rig.weight_bones) == deforming
    assert {b.parent for b in rig.bones} - {None} <= {b.name for b in rig.bones}


def test_turning_the_jaw_opens_the_mouth_and_leaves_the_forehead(mean_rig):
    rig, v, lm, _ = mean_rig
    posed = skin(rig, v, {"jaw": euler_to_rotation(0.0, -JAW_OPEN_DEG, 0.0)})
    moved = np.linalg.norm(posed - v, axis=1)
    assert moved[_nearest(v, lm[8])] >= CHIN_MOVES_MM
    rows = np.divmod(layout().face_indices, layout().size)[0]
    assert moved[rows < 60].max() <= FOREHEAD_STILL_MM
    assert moved[_nearest(v, lm[51])] <= UPPER_LIP_STILL_MM
    assert posed[_nearest(v, lm[57]), 1] > v[_nearest(v, lm[57]), 1] + CHIN_MOVES_MM  # the lower lip drops


def test_raising_a_brow_moves_the_brow_not_the_eye(mean_rig):
    rig, v, lm, _ = mean_rig
    posed = skin(rig, v, offsets={"brow.R.mid": np.array([0.0, -BROW_RAISE_MM, 0.0])})
    moved = np.linalg.norm(posed - v, axis=1)
    assert moved[_nearest(v, lm[19])] > 0.8 * BROW_RAISE_MM
    assert max(moved[_nearest(v, lm[k])] for k in range(36, 42)) <= EYE_STILL_MM


def test_closing_the_lids_covers_the_eyes(mean_rig):
    rig, v, lm, _ = mean_rig
    for side, upper, lower in (("R", 37, 41), ("L", 44, 46)):
        posed = skin(rig, v, {f"lid.T.{side}": euler_to_rotation(0.0, LID_CLOSE_DEG, 0.0)})
        a, b = _nearest(v, lm[upper]), _nearest(v, lm[lower])
        assert np.linalg.norm(posed[a] - posed[b]) < LID_CLOSED_FRACTION * np.linalg.norm(v[a] - v[b])


def test_turning_the_head_bone_turns_everything_about_the_neck_pivot(mean_rig):
    rig, v, _, pivot = mean_rig
    r = euler_to_rotation(30.0, 10.0, -5.0)
    posed = skin(rig, v, {"head": r})
    np.testing.assert_allclose(posed, (v - pivot) @ r.T + pivot, atol=1e-6)
    assert rig.bones[1].name == "head" and np.allclose(rig.bones[1].head, pivot)


def test_weights_follow_the_uv_so_a_quad_grid_gets_them_too(mean_rig):
    rig, *_ = mean_rig
    grid = quad_grid(layout(), 64, "closed")
    quad_rig = face_rig(*mean_rig[2:4], uv_to_layout_px(grid.uv, layout().size), layout().keypoints_uv)
    assert quad_rig.weights.shape == (len(grid.uv), len(rig.weight_bones))
    np.testing.assert_allclose(quad_rig.weights.sum(axis=1), 1.0, atol=1e-5)


def test_bad_landmarks_are_refused():
    with pytest.raises(ValueError, match=r"\(68, 3\)"):
        rig_bones(np.zeros((5, 3)), np.zeros(3))


def test_the_cli_writes_the_rig_beside_the_mesh(mean_face_bundle, tmp_path):
    import cv2
    from synthetic import gradient_photo

    from engine.cli import main

    photo = tmp_path / "a.png"
    cv2.imwrite(str(photo), gradient_photo())
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"a.png": [[220, 140, 420, 340]]}))
    out = tmp_path / "out"
    args = ["reconstruct", str(photo), "-o", str(out), "--bundle", str(mean_face_bundle), "--boxes", str(boxes)]
    assert main([*args, "--texture-size", "256", "--rig"]) == 0
    spec = json.loads((out / "a.rig.json").read_text())
    names = [b["name"] for b in spec["bones"]]
    assert {"neck", "head", "jaw", "eye.R", "lid.T.L", "brow.R.inner", "lip.corner.L", "cheek.R", "nose"} <= set(names)
    with np.load(out / spec["weights"]["file"]) as z:
        n_obj = sum(line.startswith("v ") for line in (out / "a.obj").read_text().splitlines())
        assert z["weights"].shape == (n_obj, len(spec["weights"]["bones"]))
        assert list(z["bones"]) == spec["weights"]["bones"]
