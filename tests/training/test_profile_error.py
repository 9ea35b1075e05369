"""The profile error report on synthetic faces: exact when the prediction is, mirror-invariant,
and it reads a known width bias back with its sign."""

import numpy as np
import pytest

from training.landmark_model import mirrored  # x → −x, point 0 ↔ 16, ...
from training.profile_error import JAW_FAR, JAW_NEAR, error_report, nose_right_errors, width_ratio


def looking_right(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 68, 3) random point sets in a 100-px box whose nose tip sits at its right edge."""
    pts = rng.uniform(0.0, 100.0, (n, 68, 3))
    pts[:, 30, 0] = 100.0
    return pts


def test_a_perfect_prediction_reads_zero():
    ref = looking_right(6, np.random.default_rng(0))
    rep = error_report(ref, ref, np.array([10.0, 20.0, 40.0, 50.0, 70.0, 80.0]))
    assert set(rep) == {"0-30", "30-60", "60-90"}
    for row in rep.values():
        assert row["nme"] == 0.0 and row["jaw"] == 0.0 and row["width_ratio"] == 1.0
        assert row["dx_jaw_far"] == 0.0 and row["dx_nose_tip"] == 0.0


def test_mirrored_faces_give_the_same_report():
    rng = np.random.default_rng(1)
    ref = looking_right(8, rng)
    pred = ref + rng.normal(0.0, 2.0, ref.shape)
    pred[:, :, 0] = 50.0 + 0.95 * (pred[:, :, 0] - 50.0)  # narrower than the reference
    yaw = np.full(8, 75.0)
    assert (nose_right_errors(pred, ref)[:, 30, 0] < 0).mean() > 0.5  # the nose tip falls back
    a, b = error_report(pred, ref, yaw), error_report(mirrored(pred), mirrored(ref), yaw)
    for key, value in a["60-90"].items():
        assert b["60-90"][key] == pytest.approx(value, abs=1e-9), key
    np.testing.assert_allclose(width_ratio(pred, ref), width_ratio(mirrored(pred), mirrored(ref)))


def test_a_far_side_shift_reads_back_on_the_far_jaw_only():
    ref = looking_right(4, np.random.default_rng(2))
    size = np.sqrt(np.prod(np.ptp(ref[:, :, :2], axis=1), axis=1))
    pred = ref.copy()
    pred[:, list(JAW_FAR), 0] -= 0.05 * size[:, None]  # 5 % of the box toward the back of the head
    both = np.concatenate([pred, mirrored(pred)]), np.concatenate([ref, mirrored(ref)])
    row = error_report(*both, np.full(8, 80.0))["60-90"]
    assert row["dx_jaw_far"] == pytest.approx(-5.0) and row["dx_jaw_near"] == pytest.approx(0.0)
    assert row["nose"] == 0.0 and row["eyes"] == 0.0
    assert 0 < row["jaw"] < 5.0
    assert len(JAW_NEAR) == len(JAW_FAR) == 8
