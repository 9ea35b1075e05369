"""A face rig from the 68 landmarks: deform bones in the canonical frame, skin weights designed in UV.

Every reconstruction shares the UV layout, so the skin weights are functions of a vertex's UV
position (layout px, given the layout's 68 keypoint UVs): designed once, they fit any face, the
dense triangle mesh and the quad grid alike, and need no heat diffusion (which fails on open
meshes). Each weight region is a smooth bump around its landmarks' UVs, cut by the lines that must
not move together (a lid stops at its eye's midline, a brow above the eye, the jaw below the lips);
whatever the local bones leave is the ``head`` bone's, so the skull is rigid. Weights are
normalised (each vertex's sum is 1).

Bones are placed per face from its frontal landmarks (canonical mm: x right, y down, z toward the
camera) and its head pivot (:func:`engine.pose.head_pivot`): neck below the pivot, head above it, the
jaw hinged in front of the ears, eyes behind the lids, and small bones at the lids, brows, lips,
cheeks and nose. Numpy only (the Blender add-on runs this module in Blender's Python).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_LANDMARKS = 68
RIG_FRAME = (
    "canonical mm of this face (its frontal_vertices): x right, y down, z toward the camera; "
    "image = scale * rotation @ canonical + translation (pose.json). A bone's roll puts its local Z axis "
    "as near z_axis as its direction allows. Weights: one row per "
    "mesh vertex in the OBJ's order, one column per deforming bone, rows sum to 1"
)
NECK_LENGTH_MM = 70.0  # the neck bone runs this far down from the pivot (a typical adult neck's visible length)
HEAD_LENGTH_MM = 120.0  # the head bone points up from the pivot (pivot to crown ≈ 12 cm)
JAW_HINGE_BELOW_EAR_MM = 5.0  # the jaw's hinge (temporomandibular joint) lies just in front of the ear
EYEBALL_RADIUS_MM = 12.0  # adult eyeball ≈ 24 mm across: its centre lies this far behind the lids
CONTROL_LENGTH_MM = 8.0  # length of the small bones (brows, lips, cheeks): they point out of the skin

# UV-space weight design, in layout px of a 256² layout (≈ 0.8 mm per px on the face)
BUMP_REACH = 2.5  # a region's bump is 0 beyond this many sigmas (its shape near the centre ≈ a Gaussian's)
LID_SIGMA_PX = 6.0  # a lid's region around its middle
BROW_SIGMA_PX = 8.0  # a brow bone's region along the brow
BROW_ABOVE_EYE_PX = 3.0  # brow weights end this far above the upper lid's line
LIP_SIGMA_PX = 7.0  # upper and lower lip middles
CORNER_SIGMA_PX = 6.0  # lip corners
CHEEK_SIGMA_PX = 14.0  # cheeks: broad
NOSE_SIGMA_PX = 7.0  # the nose tip
JAW_EDGE_PX = 3.0  # the jaw region's edge at the lips: from 0 to 1 over this many px below the mouth line
JAW_EDGE_GROWTH = 0.6  # px of edge width per px away from the mouth's middle: lips part sharply, cheeks stretch
JAW_EAR_FADE_PX = 20.0  # the jaw region fades out over this many px before the jaw line's ends (ears)


UP, OUT = (0.0, -1.0, 0.0), (0.0, 0.0, 1.0)  # canonical directions: up (−y) and out of the face (+z)


@dataclass(frozen=True, slots=True)
class Bone:
    """One bone in the canonical frame (mm). Its roll puts the bone's local Z axis as near ``z_axis``
    as the bone allows: up for the bones pointing out of the face (so their local X points to the
    subject's right and a negative X turn tilts them down), out of the face for the neck and head."""

    name: str
    head: tuple[float, float, float]
    tail: tuple[float, float, float]
    parent: str | None
    deform: bool
    z_axis: tuple[float, float, float] = UP


@dataclass(frozen=True, slots=True, eq=False)
class FaceRig:
    bones: tuple[Bone, ...]
    weights: np.ndarray  # (V, B) float32, rows sum to 1, columns in the order of the deforming bones
    weight_bones: tuple[str, ...]  # (B,) the deforming bones' names, the columns of ``weights``


def _lm(landmarks: np.ndarray, *idx: int) -> np.ndarray:
    return np.asarray(landmarks, np.float64)[list(idx)].mean(axis=0)


def rig_bones(landmarks: np.ndarray, pivot: np.ndarray) -> tuple[Bone, ...]:
    """The rig's bones for a face's frontal (68, 3) landmarks and its (3,) head pivot, canonical mm."""
    lm = np.asarray(landmarks, np.float64)
    if lm.shape != (N_LANDMARKS, 3):
        raise ValueError(f"landmarks must be (68, 3), got shape {lm.shape}")
    p = np.asarray(pivot, np.float64)
    up, out = np.array(UP), np.array(OUT)
    ears = _lm(lm, 0, 16)
    hinge = np.array([p[0], ears[1] + JAW_HINGE_BELOW_EAR_MM, ears[2]])
    bones = [
        ("neck", p - NECK_LENGTH_MM * up, p, None, False),
        ("head", p, p + HEAD_LENGTH_MM * up, "neck", True),
        ("jaw", hinge, _lm(lm, 8), "head", True),
        ("nose", _lm(lm, 27), _lm(lm, 30), "head", True),
    ]
    for side, eye, upper, lower in (("R", range(36, 42), (37, 38), (40, 41)), ("L", range(42, 48), (43, 44), (46, 47))):
        centre = _lm(lm, *eye) - EYEBALL_RADIUS_MM * out
        bones += [
            (f"eye.{side}", centre, centre + EYEBALL_RADIUS_MM * out, "head", False),
            (f"lid.T.{side}", centre, _lm(lm, *upper), "head", True),
            (f"lid.B.{side}", centre, _lm(lm, *lower), "head", True),
        ]
    controls = {
        "brow.R.outer": (17,), "brow.R.mid": (19,), "brow.R.inner": (21,),
        "brow.L.inner": (22,), "brow.L.mid": (24,), "brow.L.outer": (26,),
        "lip.corner.R": (48,), "lip.corner.L": (54,), "lip.T": (51,), "lip.B": (57,),
        "cheek.R": (2, 31), "cheek.L": (14, 35),
    }  # fmt: skip
    for name, idx in controls.items():
        at = _lm(lm, *idx)
        bones.append((name, at - CONTROL_LENGTH_MM * out, at, "jaw" if name == "lip.B" else "head", True))
    return tuple(
        Bone(
            name, tuple(float(c) for c in h), tuple(float(c) for c in t), parent, deform,
            OUT if name in ("neck", "head") else UP,
        )
        for name, h, t, parent, deform in bones
    )  # fmt: skip


def _bump(uv: np.ndarray, centre: np.ndarray, sigma: float) -> np.ndarray:
    """A smooth bump of width ``sigma`` (Gaussian-like near its centre) that is exactly 0 beyond
    BUMP_REACH × sigma, so the skull outside every region stays rigid: (1 − d²/R²)³."""
    reach = BUMP_REACH * sigma
    d2 = ((uv - centre) ** 2).sum(axis=1)
    return np.clip(1.0 - d2 / (reach * reach), 0.0, 1.0) ** 3


def _smooth(x: np.ndarray, width: float | np.ndarray) -> np.ndarray:
    """Smoothstep from 0 at x ≤ 0 to 1 at x ≥ width (a number, or one per point)."""
    t = np.clip(x / width, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _line_v(u: np.ndarray, points: np.ndarray) -> np.ndarray:
    """v of the polyline through ``points`` (K, 2) sorted by u, at each u (clamped at the ends)."""
    order = np.argsort(points[:, 0])
    return np.interp(u, points[order, 0], points[order, 1])


def rig_weights(uv_px: np.ndarray, keypoints_uv: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    """(V, B) float32 skin weights of vertices at ``uv_px`` (V, 2) layout px (u = column, v = row),
    for a layout whose 68 landmarks sit at ``keypoints_uv`` (68, 2); and the B bone names."""
    uv = np.asarray(uv_px, np.float64)
    kp = np.asarray(keypoints_uv, np.float64)
    u, v = uv[:, 0], uv[:, 1]
    # the jaw: below the mouth line (under the ears → lip corners → between the inner lips), fading toward the ears
    lips = kp[[62, 66]].mean(axis=0)
    mouth_line = np.stack([kp[2], kp[48], lips, kp[54], kp[14]])  # below the ears, lip corners, between the lips
    edge = JAW_EDGE_PX + JAW_EDGE_GROWTH * np.abs(u - lips[0])
    jaw_region = _smooth(v - _line_v(u, mouth_line), edge)
    jaw_region *= _smooth(u - kp[0, 0], JAW_EAR_FADE_PX) * _smooth(kp[16, 0] - u, JAW_EAR_FADE_PX)
    local: dict[str, np.ndarray] = {}
    for side, upper, lower, eye in (("R", (37, 38), (40, 41), range(36, 42)), ("L", (43, 44), (46, 47), range(42, 48))):
        middle = kp[list(eye)][:, 1].mean()  # the eye's horizontal midline: where the lids meet when closed
        top, bottom = kp[list(upper)].mean(axis=0), kp[list(lower)].mean(axis=0)
        local[f"lid.T.{side}"] = _bump(uv, top, LID_SIGMA_PX) * _smooth(middle - v, middle - top[1])
        local[f"lid.B.{side}"] = _bump(uv, bottom, LID_SIGMA_PX) * _smooth(v - middle, bottom[1] - middle)
    lid_line = _line_v(u, kp[[36, 37, 38, 39, 42, 43, 44, 45]])
    above_eyes = _smooth(lid_line - BROW_ABOVE_EYE_PX - v, BROW_ABOVE_EYE_PX)
    for name, k in (("R.outer", 17), ("R.mid", 19), ("R.inner", 21), ("L.inner", 22), ("L.mid", 24), ("L.outer", 26)):
        local[f"brow.{name}"] = _bump(uv, kp[k], BROW_SIGMA_PX) * above_eyes
    local["nose"] = _bump(uv, kp[30], NOSE_SIGMA_PX)
    local["cheek.R"] = _bump(uv, kp[[2, 31]].mean(axis=0), CHEEK_SIGMA_PX) * (1 - jaw_region)
    local["cheek.L"] = _bump(uv, kp[[14, 35]].mean(axis=0), CHEEK_SIGMA_PX) * (1 - jaw_region)
    local["lip.T"] = _bump(uv, kp[51], LIP_SIGMA_PX) * (1 - jaw_region)
    local["lip.corner.R"] = _bump(uv, kp[48], CORNER_SIGMA_PX)
    local["lip.corner.L"] = _bump(uv, kp[54], CORNER_SIGMA_PX)
    lower_lip = _bump(uv, kp[57], LIP_SIGMA_PX) * jaw_region
    local["lip.B"] = lower_lip
    local["jaw"] = jaw_region - lower_lip
    total = sum(local.values())
    scale = np.where(total > 1.0, 1.0 / np.maximum(total, 1e-12), 1.0)  # local bones share at most all of it
    names = ("head", *local)
    weights = np.stack([np.zeros(len(uv)), *(w * scale for w in local.values())], axis=1)
    weights[:, 0] = np.clip(1.0 - weights[:, 1:].sum(axis=1), 0.0, 1.0)
    weights /= weights.sum(axis=1, keepdims=True)
    return weights.astype(np.float32), names


def face_rig(landmarks: np.ndarray, pivot: np.ndarray, uv_px: np.ndarray, keypoints_uv: np.ndarray) -> FaceRig:
    """The rig of one face: bones from its frontal landmarks and pivot (canonical mm), weights of its
    mesh's vertices at ``uv_px`` (layout px) for the layout's ``keypoints_uv``."""
    weights, names = rig_weights(uv_px, keypoints_uv)
    return FaceRig(bones=rig_bones(landmarks, pivot), weights=weights, weight_bones=names)


def skin(
    rig: FaceRig,
    vertices: np.ndarray,
    rotations: dict[str, np.ndarray] | None = None,
    offsets: dict[str, np.ndarray] | None = None,
) -> np.ndarray:
    """Linear blend skinning of ``vertices`` (V, 3) canonical mm (the rig's rest pose): each bone turns
    by ``rotations[name]`` (3, 3, canonical axes) about its head and then moves by ``offsets[name]``
    (3,) mm, after its parent's motion. Returns the posed (V, 3) float64 vertices."""
    rotations, offsets = rotations or {}, offsets or {}
    by_name = {b.name: b for b in rig.bones}
    unknown = sorted((set(rotations) | set(offsets)) - set(by_name))
    if unknown:
        raise ValueError(f"no bones named {unknown}")
    world: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # name → (R, t): x ↦ R x + t

    def motion(name: str) -> tuple[np.ndarray, np.ndarray]:
        if name not in world:
            bone = by_name[name]
            r = np.asarray(rotations.get(name, np.eye(3)), np.float64)
            h = np.asarray(bone.head, np.float64)
            t = h - r @ h + np.asarray(offsets.get(name, np.zeros(3)), np.float64)
            if bone.parent is not None:
                pr, pt = motion(bone.parent)
                r, t = pr @ r, pr @ t + pt
            world[name] = (r, t)
        return world[name]

    v = np.asarray(vertices, np.float64)
    out = np.zeros_like(v)
    for k, name in enumerate(rig.weight_bones):
        r, t = motion(name)
        out += rig.weights[:, k : k + 1] * (v @ r.T + t)
    return out


def uv_to_layout_px(uv: np.ndarray, size: int) -> np.ndarray:
    """(V, 2) OBJ texture coordinates (v up) → (V, 2) layout px (u = column, v = row) of an S² layout:
    the inverse of engine.mesh.mesh_uv's map (here, not there, so that this module needs numpy only)."""
    uv = np.asarray(uv, np.float64)
    last = size - 1
    return np.stack([uv[:, 0] * last, (1.0 - uv[:, 1]) * last], axis=1)


def rig_json(rig: FaceRig, *, weights_file: str) -> dict:
    """The rig as a JSON-ready dict (bones in canonical mm; the weights live in ``weights_file``)."""
    return {
        "frame": RIG_FRAME,
        "bones": [
            {
                "name": b.name,
                "head": list(b.head),
                "tail": list(b.tail),
                "z_axis": list(b.z_axis),
                "parent": b.parent,
                "deform": b.deform,
            }
            for b in rig.bones
        ],
        "weights": {"file": weights_file, "array": "weights", "bones": list(rig.weight_bones)},
    }


def face_rig_of(face, mesh, layout) -> FaceRig:
    """The rig of an engine ``FaceReconstruction`` for its exported ``FaceMesh`` on ``layout``."""
    from .pose import frontalize

    return face_rig(
        frontalize(face.landmarks_3d, face.pose),
        face.head_pivot,
        uv_to_layout_px(mesh.uv, layout.size),
        layout.keypoints_uv,
    )
