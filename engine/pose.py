"""Head pose: the similarity from the layout's canonical face to the reconstructed vertices.

The fit is Umeyama's closed form (IEEE TPAMI 13(4), 1991): the least-squares scale, rotation and
translation with ``dst ≈ scale · R @ src + t``, R forced proper (det +1) through the sign of the SVD's
last singular vector. Both frames (canonical and image) are x right, y down, z toward the camera, so
the same handedness: a reflection is never the right answer, only a symptom of a degenerate input.

Euler angles follow the convention of :class:`engine.types.HeadPose`:
``R = Rz(roll) @ Ry(yaw) @ Rx(pitch)``, standard right-hand-rule matrices on column vectors. The
decomposition reads yaw as ``atan2(−R[2,0], hypot(R[0,0], R[1,0]))``, which stays accurate near ±90°
where ``asin`` loses half its digits; at gimbal lock (|cos yaw| below :data:`GIMBAL_EPS`) only
pitch ∓ roll is determined, and roll is set to 0 (PRNet's reference code has a dead branch there).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from .layout import UVLayout
from .mesh import outer_border
from .types import HeadPose

POSE_SUBSAMPLE = 4  # fit on every 4th vertex (11k of 45k): still spread over the whole face, 4× less work
JAW_ENDS = (0, 16)  # 0-based landmarks at the top of the jaw line, just in front of the ears
MIDLINE = (8, 27, 30, 33, 51, 57)  # chin, nose bridge, nose tip, nose base, lips: the face's midline
# the head pivots on the neck at the occipital condyles, level with the base of the nose in profile
# (about 35 mm below the ear canal's level) and a little behind the ear's front (canonical frame: y
# down, z toward the camera)
PIVOT_BELOW_EAR_MM = 35.0
PIVOT_BEHIND_EAR_MM = 10.0
GIMBAL_EPS = 1e-9  # |cos yaw| below this: yaw = ±90° exactly in float64, roll is not separable


def fit_similarity(
    src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None
) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares ``dst ≈ scale · R @ src + t`` for (N, 3) point sets → (scale, R (3, 3), t (3,));
    ``weights`` (N,) ≥ 0 weigh each point's squared residual (equal weights when None)."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.ndim != 2 or src.shape[1] != 3 or dst.shape != src.shape:
        raise ValueError(f"src and dst must both be (N, 3), got shapes {src.shape} and {dst.shape}")
    if len(src) < 3:
        raise ValueError(f"a similarity needs at least 3 points, got shape {src.shape}")
    if weights is None:
        w = np.full(len(src), 1.0 / len(src))
    else:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (len(src),) or not np.all(w >= 0) or not w.sum() > 0:
            raise ValueError(f"weights must be (N,) = ({len(src)},), ≥ 0 and not all 0")
        w = w / w.sum()
    mu_s, mu_d = w @ src, w @ dst
    s0, d0 = src - mu_s, dst - mu_d
    var_s = float(w @ (s0**2).sum(axis=1))
    if var_s <= 0.0:
        raise ValueError("src points are all equal: the similarity is undefined")
    cov = (d0 * w[:, None]).T @ s0
    u, sing, vt = np.linalg.svd(cov)
    sign = np.ones(3)
    sign[2] = 1.0 if np.linalg.det(u) * np.linalg.det(vt) >= 0 else -1.0
    rotation = (u * sign) @ vt
    scale = float((sing * sign).sum() / var_s)
    translation = mu_d - scale * rotation @ mu_s
    return scale, rotation, translation


def euler_to_rotation(yaw: float, pitch: float, roll: float, *, degrees: bool = True) -> np.ndarray:
    """(3, 3) float64 ``Rz(roll) @ Ry(yaw) @ Rx(pitch)`` (see :class:`engine.types.HeadPose`)."""
    if degrees:
        yaw, pitch, roll = (math.radians(a) for a in (yaw, pitch, roll))
    cy, sy = math.cos(yaw), math.sin(yaw)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cr, sr = math.cos(roll), math.sin(roll)
    rx = np.array([[1.0, 0.0, 0.0], [0.0, cp, -sp], [0.0, sp, cp]])
    ry = np.array([[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]])
    rz = np.array([[cr, -sr, 0.0], [sr, cr, 0.0], [0.0, 0.0, 1.0]])
    return rz @ ry @ rx


def _wrap(angle: float, half_turn: float) -> float:
    """Map an angle from atan2's [−π, π] into (−π, π] (−180 becomes 180)."""
    return half_turn if angle <= -half_turn else angle


def rotation_to_euler(rotation: np.ndarray, *, degrees: bool = True) -> tuple[float, float, float]:
    """(yaw, pitch, roll) of a proper rotation: yaw in [−90, 90], pitch and roll in (−180, 180]."""
    r = np.asarray(rotation, dtype=np.float64)
    if r.shape != (3, 3):
        raise ValueError(f"rotation must be (3, 3), got shape {r.shape}")
    cos_yaw = math.hypot(r[0, 0], r[1, 0])
    yaw = math.atan2(-r[2, 0], cos_yaw)
    if cos_yaw > GIMBAL_EPS:
        pitch = math.atan2(r[2, 1], r[2, 2])
        roll = math.atan2(r[1, 0], r[0, 0])
    else:  # yaw = ±90°: R[0,1], R[1,1] hold sin/cos of (pitch − roll) or −sin/cos of (pitch + roll)
        roll = 0.0
        pitch = math.atan2(r[0, 1], r[1, 1]) if yaw > 0 else math.atan2(-r[0, 1], r[1, 1])
    angles = (yaw, _wrap(pitch, math.pi), _wrap(roll, math.pi))
    if degrees:
        return tuple(math.degrees(a) for a in angles)  # type: ignore[return-value]
    return angles


@lru_cache(maxsize=8)
def pose_vertex_indices(layout: UVLayout, subsample: int) -> np.ndarray:
    """Every ``subsample``-th vertex of the layout, without the outer border's: those sit on a smoothed
    outline between the layout's pixels (engine.mesh.vertex_uv_px), so they do not match the
    canonical vertices exactly."""
    border = np.zeros(layout.n_vertices, bool)
    border[outer_border(layout)] = True
    picked = np.arange(0, layout.n_vertices, subsample)
    return picked[~border[picked]]


def estimate_pose(vertices: np.ndarray, layout: UVLayout, *, subsample: int = POSE_SUBSAMPLE) -> HeadPose:
    """Fit ``vertices ≈ scale · R @ canonical + t`` (image px ← canonical mm) on every ``subsample``-th
    vertex off the outer border (:func:`pose_vertex_indices`)."""
    vertices = np.asarray(vertices)
    if vertices.shape != (layout.n_vertices, 3):
        raise ValueError(
            f"vertices must be ({layout.n_vertices}, 3) for layout {layout.layout_id!r}, got shape {vertices.shape}"
        )
    if subsample < 1:
        raise ValueError(f"subsample must be >= 1, got {subsample}")
    use = pose_vertex_indices(layout, subsample)
    dst = vertices[use]
    src = layout.canonical_vertices[use]
    finite = np.isfinite(dst).all(axis=1)
    scale, rotation, translation = fit_similarity(src[finite], dst[finite])
    yaw, pitch, roll = rotation_to_euler(rotation)
    return HeadPose(yaw=yaw, pitch=pitch, roll=roll, rotation=rotation, translation=translation, scale=scale)


def frontalize(vertices: np.ndarray, pose: HeadPose) -> np.ndarray:
    """Remove the pose: (N, 3) image px → (N, 3) float32 canonical mm, ``Rᵀ (v − t) / scale``."""
    vertices = np.asarray(vertices, dtype=np.float64)
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise ValueError(f"vertices must be (N, 3), got shape {vertices.shape}")
    return ((vertices - pose.translation) @ pose.rotation / pose.scale).astype(np.float32)


def head_pivot(frontal_landmarks: np.ndarray) -> np.ndarray:
    """(3,) float32 canonical mm: the point the head turns about on the neck (the top of the neck),
    from the face's frontal (68, 3) landmarks. It lies on the midline, :data:`PIVOT_BELOW_EAR_MM`
    below and :data:`PIVOT_BEHIND_EAR_MM` behind the midpoint of the jaw line's two ends (landmarks
    1 and 17, iBUG numbering, in front of the ears)."""
    lm = np.asarray(frontal_landmarks, np.float64)
    if lm.shape != (68, 3):
        raise ValueError(f"landmarks must be (68, 3), got shape {lm.shape}")
    ears = lm[list(JAW_ENDS)].mean(axis=0)
    midline_x = lm[list(MIDLINE)][:, 0].mean()
    return np.array([midline_x, ears[1] + PIVOT_BELOW_EAR_MM, ears[2] - PIVOT_BEHIND_EAR_MM], np.float32)
