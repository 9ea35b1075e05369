"""engine.pose: Euler convention, Umeyama fit, pose of synthetic faces, frontalisation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from arrays import assert_close
from synthetic import layout, posed_face
from tolerances import CANONICAL_MM, EULER_ROUND_TRIP_DEG, POSE_DEG, ROTATION_ENTRY, SCALE_REL, TRANSLATION_PX

from engine.pose import estimate_pose, euler_to_rotation, fit_similarity, frontalize, rotation_to_euler

RANDOM_POSES = 5  # random (yaw, pitch, roll) drawn for the fit tests
SEED = 20240611


def _angle_diff(a: float, b: float) -> float:
    """Smallest absolute difference of two angles in degrees."""
    return abs((a - b + 180.0) % 360.0 - 180.0)


def _random_angles(n: int) -> list[tuple[float, float, float]]:
    rng = np.random.default_rng(SEED)
    return [(rng.uniform(-89, 89), rng.uniform(-179, 179), rng.uniform(-179, 179)) for _ in range(n)]


def test_convention_reads_as_documented():
    nose = np.array([0.0, 0.0, 1.0])  # pointing at the camera
    assert (euler_to_rotation(30, 0, 0) @ nose)[0] > 0  # yaw > 0: nose toward image right
    assert (euler_to_rotation(0, 30, 0) @ nose)[1] < 0  # pitch > 0: nose up (y is down)
    right = np.array([1.0, 0.0, 0.0])
    assert (euler_to_rotation(0, 0, 30) @ right)[1] > 0  # roll > 0: clockwise as seen (+x turns to +y)
    r = euler_to_rotation(0.3, -0.2, 1.1, degrees=False)
    assert_close(r @ r.T, np.eye(3), 1e-12, "orthonormal")
    assert math.isclose(np.linalg.det(r), 1.0, abs_tol=1e-12)


@pytest.mark.parametrize(
    "angles",
    [
        (0, 0, 0),
        (30, -20, 10),
        (-89, 45, 179),
        (89, -179, -179),
        (0, 180, 0),
        (-45, 90, -90),
        *_random_angles(RANDOM_POSES),
    ],
)
def test_euler_round_trip(angles):
    got = rotation_to_euler(euler_to_rotation(*angles))
    assert all(_angle_diff(g, a) < EULER_ROUND_TRIP_DEG for g, a in zip(got, angles, strict=True)), (got, angles)
    assert -90 <= got[0] <= 90 and all(-180 < a <= 180 for a in got[1:])


@pytest.mark.parametrize(("yaw", "pitch", "roll"), [(90, 30, 0), (-90, -50, 0), (90, 20, 40), (-90, 10, -25)])
def test_gimbal_lock_sets_roll_to_zero_and_keeps_the_rotation(yaw, pitch, roll):
    r = euler_to_rotation(yaw, pitch, roll)
    got = rotation_to_euler(r)
    assert got[0] == pytest.approx(yaw) and got[2] == 0.0
    assert_close(euler_to_rotation(*got), r, ROTATION_ENTRY, "rotation rebuilt at gimbal lock")


def test_radians_option():
    r = euler_to_rotation(0.5, 0.25, -1.0, degrees=False)
    assert_close(rotation_to_euler(r, degrees=False), (0.5, 0.25, -1.0), 1e-12, "radians")
    assert_close(r, euler_to_rotation(math.degrees(0.5), math.degrees(0.25), math.degrees(-1.0)), 1e-12, "degrees")


def test_fit_similarity_exact_and_proper():
    rng = np.random.default_rng(SEED)
    src = rng.normal(size=(200, 3))
    r = euler_to_rotation(25, -60, 140)
    dst = 3.5 * src @ r.T + np.array([10.0, -4.0, 2.0])
    scale, rot, t = fit_similarity(src, dst)
    assert scale == pytest.approx(3.5, rel=SCALE_REL)
    assert_close(rot, r, ROTATION_ENTRY * 1e3, "rotation")
    assert_close(t, [10.0, -4.0, 2.0], TRANSLATION_PX, "translation")
    # a mirrored target still gets a proper rotation (never a reflection)
    _, rot_m, _ = fit_similarity(src, dst * np.array([-1.0, 1.0, 1.0]))
    assert np.linalg.det(rot_m) == pytest.approx(1.0)


def test_weighted_fit_similarity_ignores_zero_weights_and_equal_weights_are_the_plain_fit():
    rng = np.random.default_rng(SEED)
    src = rng.normal(size=(60, 3))
    r = euler_to_rotation(-30, 15, 70)
    dst = 2.0 * src @ r.T + np.array([1.0, 2.0, 3.0])
    dst[:10] += rng.normal(scale=5.0, size=(10, 3))  # outliers, weighted 0
    w = np.r_[np.zeros(10), rng.uniform(0.5, 2.0, 50)]
    scale, rot, t = fit_similarity(src, dst, w)
    assert scale == pytest.approx(2.0, rel=SCALE_REL)
    assert_close(rot, r, ROTATION_ENTRY * 1e3, "rotation")
    assert_close(t, [1.0, 2.0, 3.0], TRANSLATION_PX, "translation")
    plain, equal = fit_similarity(src, dst), fit_similarity(src, dst, np.full(60, 7.0))
    assert plain[0] == pytest.approx(equal[0]) and np.allclose(plain[1], equal[1]) and np.allclose(plain[2], equal[2])


def test_fit_similarity_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\(5, 2\)"):
        fit_similarity(np.zeros((5, 2)), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="weights"):
        fit_similarity(np.eye(3), np.eye(3), np.zeros(3))
    with pytest.raises(ValueError, match="weights"):
        fit_similarity(np.eye(3), np.eye(3), np.array([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError):
        fit_similarity(np.zeros((5, 3)), np.zeros((6, 3)))
    with pytest.raises(ValueError):
        fit_similarity(np.ones((5, 3)), np.zeros((5, 3)))


@pytest.mark.parametrize(
    ("yaw", "pitch", "roll"),
    [(0, 0, 0), (89, 0, 0), (-89, 10, 0), (20, -10, 179), (-35, 25, -179), (89, 5, 179), *_random_angles(3)],
)
def test_pose_of_a_synthetic_face(yaw, pitch, roll):
    lay = layout()
    face = posed_face(yaw, pitch, roll, scale=1.7)
    pose = estimate_pose(face.vertices, lay)
    cos_err = (np.trace(pose.rotation.T @ face.rotation) - 1) / 2
    assert math.degrees(math.acos(min(1.0, cos_err))) < POSE_DEG
    for got, want in ((pose.yaw, yaw), (pose.pitch, pitch), (pose.roll, roll)):
        assert _angle_diff(got, want) < POSE_DEG, (pose.yaw, pose.pitch, pose.roll)
    assert pose.scale == pytest.approx(1.7, rel=SCALE_REL)
    assert_close(pose.translation, face.translation, TRANSLATION_PX, "translation")


def test_frontalize_inverts_the_pose():
    lay = layout()
    face = posed_face(50, -20, 30)
    pose = estimate_pose(face.vertices, lay, subsample=1)
    assert_close(frontalize(face.vertices, pose), lay.canonical_vertices, CANONICAL_MM, "frontalised mm")


def test_estimate_pose_checks_the_vertex_count():
    with pytest.raises(ValueError, match=r"\(10, 3\)"):
        estimate_pose(np.zeros((10, 3)), layout())
