"""The engine's frames → Blender's: the one axis map, the head pose, object placement, matched camera.

Engine (see ``engine/types.py``): the *image frame* is photo pixels, x right, y down, z toward the
camera; the *canonical frame* is the mean face in millimetres with the same axes. As a physical
frame it is left-handed (x × y points away from the camera). Blender: metres, X right, Z up, the
face looks along −Y (Blender's front view looks along +Y), right-handed. The one map between them is

    (X, Y, Z) = (x, −z, −y) · unit,        AXES = C = [[1, 0, 0], [0, 0, −1], [0, −1, 0]],  det C = −1,

so a rotation R acting in the engine frame acts as ``C · R · Cᵀ`` in Blender's (a proper rotation,
det = det(C)² · det R = 1). With ``R = Rz(roll) Ry(yaw) Rx(pitch)`` (engine convention) this is
``R_Y(roll) · R_Z(yaw) · R_X(−pitch)`` — Blender's Euler order ``'XZY'`` with angles
(−pitch, roll, yaw): the object's Z channel turns the head, X nods it, Y tilts it.

Placement: the mesh data is the frontal face (canonical mm → metres, real-world scale) moved so that
the head's pivot on the neck (the engine's ``head_pivot``) is the object's origin; the object
carries the pose, so rotating it turns the head about the neck. For a photo, the first face's pose
(px per mm ``s₀``, translation ``t₀``) fixes the photo's scale, ``k = 0.001 / s₀`` metres per pixel:
image x ↔ world X, image y ↔ world −Z, the first face's canonical origin at the world origin, other
faces beside it (scaled by ``sᵢ / s₀``). The matched camera
is orthographic, looks along +Y, and frames the whole photo (pixel centres at integer coordinates,
so the photo spans −0.5 … W − 0.5). Numpy only: no bpy, testable anywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MM_TO_M = 0.001  # canonical millimetres → Blender metres (Blender's default unit scale)
AXES = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, -1.0, 0.0]])  # engine (x, y, z) → Blender (X, Y, Z)
BLENDER_EULER_ORDER = "XZY"  # R_b = R_Y(roll) · R_Z(yaw) · R_X(−pitch)
CAMERA_DISTANCE_M = 1.0  # orthographic: only needs to sit in front of the face (faces span ≈ ±0.15 m)
CAMERA_CLIP_M = (0.01, 10.0)  # near / far clip of the matched camera
CAMERA_ROTATION = (math.pi / 2, 0.0, 0.0)  # Euler XYZ: a Blender camera looks along local −Z → world +Y


def engine_to_blender(points: np.ndarray, *, unit: float = MM_TO_M) -> np.ndarray:
    """(..., 3) engine-frame points (canonical mm, or px with ``unit`` = metres per px) → Blender metres."""
    points = np.asarray(points, dtype=np.float64)
    if points.shape[-1:] != (3,):
        raise ValueError(f"points must have shape (..., 3), got {points.shape}")
    return (points @ AXES.T) * unit


def rotation_to_blender(rotation: np.ndarray) -> np.ndarray:
    """(3, 3) rotation of the engine frame → the same rotation in Blender's frame, ``C · R · Cᵀ``."""
    rotation = np.asarray(rotation, dtype=np.float64)
    if rotation.shape != (3, 3):
        raise ValueError(f"rotation must be (3, 3), got shape {rotation.shape}")
    return AXES @ rotation @ AXES.T


def pose_euler(yaw: float, pitch: float, roll: float) -> tuple[float, float, float]:
    """Engine angles (degrees) → the object's ``rotation_euler`` (X, Y, Z radians) in order ``'XZY'``."""
    return (math.radians(-pitch), math.radians(roll), math.radians(yaw))


def frontal_landmarks(landmarks: np.ndarray, rotation: np.ndarray, translation: np.ndarray, scale: float):
    """Remove the pose from (68, 3) image-px landmarks: ``Rᵀ (l − t) / s`` → (68, 3) canonical mm."""
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.ndim != 2 or landmarks.shape[1] != 3:
        raise ValueError(f"landmarks must be (N, 3), got shape {landmarks.shape}")
    return (landmarks - np.asarray(translation, np.float64)) @ np.asarray(rotation, np.float64) / scale


@dataclass(frozen=True, slots=True)
class Placement:
    """The object transform of one face: world = location + scale · rotation @ local (Blender metres)."""

    location: tuple[float, float, float]
    rotation: np.ndarray  # (3, 3) float64, Blender frame
    euler: tuple[float, float, float]  # radians, order BLENDER_EULER_ORDER, same rotation
    scale: float


def face_placement(
    *,
    yaw: float,
    pitch: float,
    roll: float,
    rotation: np.ndarray,
    translation: np.ndarray,
    scale: float,
    ref_translation: np.ndarray,
    ref_scale: float,
    apply_pose: bool = True,
    pivot: np.ndarray | None = None,
) -> Placement:
    """Where a face's object goes so that the photo's matched camera sees it over the photo.

    ``ref_*`` are the pose of the photo's first face (see the module docstring). Without
    ``apply_pose`` the rotation is the identity (a frontal head at the face's place in the photo).
    ``pivot`` (canonical mm) is the object's origin in the mesh data (the mesh data is then
    ``frontal − pivot``); by default the canonical origin.
    """
    k = MM_TO_M / ref_scale
    d = np.asarray(translation, np.float64) - np.asarray(ref_translation, np.float64)
    location = (k * d[0], 0.0, -k * d[1])  # depth between faces is not observable in one photo
    if apply_pose:
        rot, euler = rotation_to_blender(rotation), pose_euler(yaw, pitch, roll)
    else:
        rot, euler = np.eye(3), (0.0, 0.0, 0.0)
    if pivot is not None:  # world = location + s·R·frontal = location' + s·R·(frontal − pivot)
        location = tuple(np.asarray(location) + (scale / ref_scale) * rot @ engine_to_blender(pivot))
    return Placement(location=location, rotation=rot, euler=euler, scale=scale / ref_scale)


@dataclass(frozen=True, slots=True)
class CameraSetup:
    """An orthographic camera whose frame is the photo (render resolution = photo size)."""

    location: tuple[float, float, float]
    rotation_euler: tuple[float, float, float]  # Euler XYZ, radians
    ortho_scale: float  # metres across the photo's longer side
    resolution: tuple[int, int]  # (width, height) px
    clip: tuple[float, float]


def matched_camera(*, ref_translation: np.ndarray, ref_scale: float, image_size: tuple[int, int]) -> CameraSetup:
    """The camera for a photo of ``image_size`` = (height, width) whose first face has pose (s₀, t₀)."""
    height, width = (int(v) for v in image_size)
    if height <= 0 or width <= 0:
        raise ValueError(f"image_size must be positive (height, width), got {image_size}")
    k = MM_TO_M / ref_scale
    t = np.asarray(ref_translation, np.float64)
    centre_x, centre_y = (width - 1) / 2, (height - 1) / 2
    location = (k * (centre_x - t[0]), -CAMERA_DISTANCE_M, -k * (centre_y - t[1]))
    return CameraSetup(
        location=location,
        rotation_euler=CAMERA_ROTATION,
        ortho_scale=k * max(width, height),
        resolution=(width, height),
        clip=CAMERA_CLIP_M,
    )
