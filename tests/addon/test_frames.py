"""The engine → Blender frame maths (prnet_blender/frames.py): numpy only, no bpy needed."""

from __future__ import annotations

import math

import numpy as np
import pytest
from addon_tolerances import EXACT_M, ROTATION_ENTRY
from arrays import assert_close

from engine.pose import euler_to_rotation, frontalize
from engine.types import HeadPose
from prnet_blender.frames import (
    AXES,
    MM_TO_M,
    engine_to_blender,
    face_placement,
    frontal_landmarks,
    matched_camera,
    pose_euler,
    rotation_to_blender,
)

POSES = [
    (0.0, 0.0, 0.0),
    (30.0, 0.0, 0.0),
    (0.0, 25.0, 0.0),
    (0.0, 0.0, -40.0),
    (35.0, -20.0, 15.0),
    (-70.0, 10.0, 5.0),
]


def _r(axis: str, a: float) -> np.ndarray:
    """Right-hand rotation by ``a`` radians about a Blender axis (column vectors)."""
    c, s = math.cos(a), math.sin(a)
    return {
        "X": np.array([[1, 0, 0], [0, c, -s], [0, s, c]]),
        "Y": np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]),
        "Z": np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]),
    }[axis]


def _blender_euler_xzy(e: tuple[float, float, float]) -> np.ndarray:
    """Blender's Euler 'XZY' (X applied first, then Z, then Y) as a matrix."""
    return _r("Y", e[1]) @ _r("Z", e[2]) @ _r("X", e[0])


def _pose(yaw, pitch, roll, scale, t):
    rot = euler_to_rotation(yaw, pitch, roll)
    return HeadPose(yaw=yaw, pitch=pitch, roll=roll, rotation=rot, translation=np.asarray(t, float), scale=scale)


def test_axis_map_is_the_documented_one():
    """x right → X, y down → −Z, z toward the camera → −Y (the face looks along −Y); mm → m."""
    got = engine_to_blender(np.eye(3) * 1000.0)
    assert_close(got, [[1, 0, 0], [0, 0, -1], [0, -1, 0]], EXACT_M, "engine unit axes in Blender metres")
    assert np.linalg.det(AXES) == pytest.approx(-1.0)  # left-handed engine frame → right-handed Blender
    assert_close(engine_to_blender([[10.0, 20.0, 30.0]], unit=0.5), [[5.0, -15.0, -10.0]], EXACT_M, "unit")


@pytest.mark.parametrize("angles", POSES)
def test_pose_becomes_a_proper_rotation_equal_to_the_xzy_euler(angles):
    yaw, pitch, roll = angles
    rb = rotation_to_blender(euler_to_rotation(yaw, pitch, roll))
    assert_close(rb @ rb.T, np.eye(3), ROTATION_ENTRY, "R_b orthonormal")
    assert np.linalg.det(rb) == pytest.approx(1.0)
    assert_close(_blender_euler_xzy(pose_euler(yaw, pitch, roll)), rb, ROTATION_ENTRY, "Euler XZY vs C R Cᵀ")


def test_angles_read_as_an_artist_expects():
    """yaw > 0: nose toward image right (+X); pitch > 0: nose up (+Z); roll > 0: top of the head
    toward image right (clockwise as the viewer sees it)."""
    nose, up = np.array([0.0, -1.0, 0.0]), np.array([0.0, 0.0, 1.0])
    assert (rotation_to_blender(euler_to_rotation(20, 0, 0)) @ nose)[0] > 0.3
    assert (rotation_to_blender(euler_to_rotation(0, 20, 0)) @ nose)[2] > 0.3
    assert (rotation_to_blender(euler_to_rotation(0, 0, 20)) @ up)[0] > 0.3


@pytest.mark.parametrize("angles", POSES)
def test_rotating_the_frontal_mesh_reproduces_the_posed_vertices(angles):
    """Object transform @ frontal mesh = the engine's posed vertices, converted at the photo's scale."""
    rng = np.random.default_rng(0)
    canonical = rng.uniform(-80, 80, (50, 3))
    pose = _pose(*angles, scale=2.5, t=(300.0, 220.0, 90.0))
    posed = pose.scale * canonical @ pose.rotation.T + pose.translation
    mesh = engine_to_blender(frontalize(posed, pose))
    place = face_placement(
        yaw=pose.yaw, pitch=pose.pitch, roll=pose.roll, rotation=pose.rotation, translation=pose.translation,
        scale=pose.scale, ref_translation=pose.translation, ref_scale=pose.scale,
    )  # fmt: skip
    world = np.asarray(place.location) + place.scale * mesh @ place.rotation.T
    expected = engine_to_blender(posed - pose.translation, unit=MM_TO_M / pose.scale)
    assert_close(world, expected, 1e-7, "posed mesh in Blender vs engine vertices (m)")  # float32 frontalize


def test_second_face_sits_where_the_photo_shows_it():
    """Face 2 (other scale and place): world X/Z = its image x/y at face 1's metres per pixel."""
    ref = _pose(10, 0, 0, scale=2.0, t=(200.0, 150.0, 40.0))
    other = _pose(-25, 10, 5, scale=1.2, t=(520.0, 260.0, 30.0))
    canonical = np.random.default_rng(1).uniform(-80, 80, (40, 3))
    posed = other.scale * canonical @ other.rotation.T + other.translation
    place = face_placement(
        yaw=other.yaw, pitch=other.pitch, roll=other.roll, rotation=other.rotation, translation=other.translation,
        scale=other.scale, ref_translation=ref.translation, ref_scale=ref.scale,
    )  # fmt: skip
    world = np.asarray(place.location) + place.scale * engine_to_blender(canonical) @ place.rotation.T
    k = MM_TO_M / ref.scale
    assert_close(world[:, 0], k * (posed[:, 0] - ref.translation[0]), EXACT_M, "X = image x")
    assert_close(world[:, 2], -k * (posed[:, 1] - ref.translation[1]), EXACT_M, "Z = −image y")


def test_without_pose_the_object_is_not_rotated():
    pose = _pose(30, 10, 5, scale=2.0, t=(10.0, 20.0, 0.0))
    place = face_placement(
        yaw=pose.yaw, pitch=pose.pitch, roll=pose.roll, rotation=pose.rotation, translation=pose.translation,
        scale=pose.scale, ref_translation=pose.translation, ref_scale=pose.scale, apply_pose=False,
    )  # fmt: skip
    assert place.euler == (0.0, 0.0, 0.0) and np.array_equal(place.rotation, np.eye(3)) and place.scale == 1.0


@pytest.mark.parametrize("image_size", [(480, 640), (900, 600)])
def test_matched_camera_frames_the_whole_photo(image_size):
    """The camera's view edges are the photo's outer pixel edges (pixel centres at integers)."""
    height, width = image_size
    t, s = np.array([250.0, 310.0, 50.0]), 1.7
    cam = matched_camera(ref_translation=t, ref_scale=s, image_size=image_size)
    k = MM_TO_M / s
    assert cam.resolution == (width, height)
    assert cam.ortho_scale == pytest.approx(k * max(width, height))
    half_w, half_h = k * width / 2, k * height / 2  # the longer side spans ortho_scale, aspect = photo's
    left, right = k * (-0.5 - t[0]), k * (width - 0.5 - t[0])
    top, bottom = -k * (-0.5 - t[1]), -k * (height - 0.5 - t[1])
    assert cam.location[0] - half_w == pytest.approx(left) and cam.location[0] + half_w == pytest.approx(right)
    assert cam.location[2] + half_h == pytest.approx(top) and cam.location[2] - half_h == pytest.approx(bottom)
    assert cam.location[1] < -0.2  # in front of the face, which looks along −Y
    forward = _r("X", cam.rotation_euler[0]) @ np.array([0.0, 0.0, -1.0])  # a camera looks along local −Z
    assert_close(forward, [0, 1, 0], ROTATION_ENTRY, "camera looks along +Y")


def test_frontal_landmarks_remove_the_pose_like_the_engine():
    pose = _pose(20, -5, 8, scale=3.0, t=(100.0, 80.0, 12.0))
    points = np.random.default_rng(2).uniform(0, 400, (68, 3))
    got = frontal_landmarks(points, pose.rotation, pose.translation, pose.scale)
    assert_close(got, frontalize(points, pose), 1e-4, "frontal landmarks (mm; engine returns float32)")


def test_shapes_are_checked_at_the_boundary():
    with pytest.raises(ValueError, match=r"\(4, 2\)"):
        engine_to_blender(np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        rotation_to_blender(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="positive"):
        matched_camera(ref_translation=np.zeros(3), ref_scale=1.0, image_size=(0, 10))
