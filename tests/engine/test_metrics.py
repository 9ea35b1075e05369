"""The AFLW2000-3D NME arithmetic on hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest

from engine.crop import roi_from_landmarks
from engine.training.metrics import annotated_face, binned, box_iou, nme_per_image
from engine.types import BoundingBox


def _square_gt(side: float) -> np.ndarray:
    """68 points spanning a side×side box (x, y), z = 0."""
    gt = np.zeros((1, 68, 3))
    gt[0, :, 0] = np.linspace(0, side, 68)
    gt[0, :, 1] = np.linspace(side, 0, 68)
    return gt


def test_nme_2d_hand_case():
    gt = _square_gt(100.0)  # normaliser √(100·100) = 100
    pred = gt.copy()
    pred[0, :, 0] += 3.0
    pred[0, :, 1] += 4.0  # every point 5 px off
    assert nme_per_image(pred, gt, dims=2) == pytest.approx([5.0])


def test_nme_3d_ignores_a_global_z_offset_but_not_z_errors():
    gt = _square_gt(200.0)
    pred = gt.copy()
    pred[0, :, 2] += 50.0  # a constant depth offset is removed by the zero-mean-z rule
    assert nme_per_image(pred, gt, dims=3) == pytest.approx([0.0])
    pred[0, :34, 2] += 4.0
    pred[0, 34:, 2] -= 4.0  # ±4 px after re-centring → 2 % of 200
    assert nme_per_image(pred, gt, dims=3) == pytest.approx([2.0])


def test_bins_balanced_and_mean():
    nme = np.array([1.0, 3.0, 4.0, 8.0])
    yaw = np.array([10.0, 30.0, 45.0, 89.0])  # 30 belongs to the first bin
    r = binned(nme, yaw)
    assert r["0-30"] == pytest.approx(2.0) and r["30-60"] == pytest.approx(4.0) and r["60-90"] == pytest.approx(8.0)
    assert r["balanced"] == pytest.approx(14.0 / 3)
    assert r["mean"] == pytest.approx(4.0)


def test_shape_mismatch_is_named():
    with pytest.raises(ValueError, match="pred and gt"):
        nme_per_image(np.zeros((1, 68, 3)), np.zeros((2, 68, 3)))


def test_box_iou_hand_cases():
    a = BoundingBox(0, 0, 10, 10)
    assert box_iou(a, a) == pytest.approx(1.0)
    assert box_iou(a, BoundingBox(5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert box_iou(a, BoundingBox(20, 20, 30, 30)) == 0.0


def test_annotated_face_picks_the_detection_on_the_face_not_the_largest():
    pts = _square_gt(100.0)[0, :, :2] + 200.0  # the annotated face: 68 points in [200, 300]²
    truth = roi_from_landmarks(pts)
    bigger_other_face = BoundingBox(0, 0, 180, 180)  # someone else, nearer the camera
    loose = BoundingBox(truth.left + 30, truth.top + 30, truth.right + 30, truth.bottom + 30)
    tight = BoundingBox(truth.left + 5, truth.top, truth.right + 5, truth.bottom)
    assert annotated_face([bigger_other_face, loose, tight], pts) == 2
    assert annotated_face([bigger_other_face, loose], pts) == 1
    assert annotated_face([bigger_other_face], pts) is None
    assert annotated_face([], pts) is None
