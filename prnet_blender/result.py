"""One face of a worker reply, as the add-on uses it: the arrays of its .npz plus the reply's fields.

The worker writes each face with ``engine.export.write_npz`` (see ``engine/worker.py`` for the
protocol); :meth:`FaceResult.from_reply` reads only what the scene builder needs and checks shapes
at this boundary, so a mismatched engine fails with a ValueError naming the array, not deep in bpy.
Numpy and the shared protocol module only (prnet_blender.engine_link): no bpy, no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .engine_link import engine_module

P = engine_module("protocol")  # the worker protocol: which arrays each face's .npz holds
N_LANDMARKS = 68  # iBUG 68-point scheme


@dataclass(frozen=True, slots=True, eq=False)
class FaceResult:
    photo: str  # absolute path of the source photo
    bundle_id: str  # model that produced the face ("name@sha256-prefix")
    landmark_names: tuple[str, ...]  # (68,) iBUG order, as the engine names them
    vertices: np.ndarray  # (N, 3) float32, image frame px (posed), of the mesh to build
    frontal_vertices: np.ndarray  # (N, 3) float32, canonical frame mm (pose removed)
    head_pivot: np.ndarray  # (3,) float64, canonical frame mm: where the head turns on the neck
    polygons: np.ndarray  # (F, 3) triangles or (F, 4) quads, int32, CCW seen from the camera
    uv: np.ndarray  # (N, 2) float32 in [0, 1], v up
    landmarks_3d: np.ndarray  # (68, 3) float32, image frame px
    landmark_visibility: np.ndarray  # (68,) bool
    texture: np.ndarray  # (Ht, Wt, 3) uint8 RGB, row 0 = top of the UV square (v = 1)
    rotation: np.ndarray  # (3, 3) float64, canonical → image frame
    translation: np.ndarray  # (3,) float64, image px
    scale: float  # image px per canonical mm
    yaw: float  # degrees (engine convention, engine/types.py HeadPose)
    pitch: float
    roll: float
    box: tuple[float, float, float, float]  # left, top, right, bottom, image px
    image_size: tuple[int, int]  # (height, width) px
    keypoints_uv: np.ndarray | None = None  # (68, 2) layout px of the landmarks (engine.rig's weight design)
    layout_size: int = 256  # side of the UV layout, px
    mouth_faces: np.ndarray | None = None  # (F,) bool: the polygons closing the lips (a dark material)
    texture_png: str | None = None  # the same texture as a PNG file written by the worker, if any
    background: str | None = None  # upright copy of an EXIF-rotated photo (worker temp file), if any

    @classmethod
    def from_reply(cls, face: dict, *, photo: str, landmark_names) -> FaceResult:
        """Read ``face["npz"]`` of a reconstruct reply (see engine/worker.py)."""
        with np.load(Path(face["npz"]), allow_pickle=False) as z:
            missing = [name for name in P.NPZ_ARRAYS if name not in z.files]
            if missing:
                raise ValueError(f"engine result {face['npz']} lacks the arrays {missing}")
            a = {k: z[k] for k in P.NPZ_ARRAYS}
            if all(name in z.files for name in P.MESH_NPZ_ARRAYS):  # a quad mesh: build it, not the triangles
                for name in P.MESH_NPZ_ARRAYS:
                    a[name.removeprefix("mesh_").replace("faces", "triangles")] = z[name]
        try:
            n = len(a["vertices"])
            _check(a, "vertices", (n, 3))
            _check(a, "frontal_vertices", (n, 3))
            _check(a, "uv", (n, 2))
            _check(a, "landmarks_3d", (N_LANDMARKS, 3))
            _check(a, "landmark_visibility", (N_LANDMARKS,))
            _check(a, "pose_rotation", (3, 3))
            _check(a, "pose_translation", (3,))
            _check(a, "head_pivot", (3,))
            _check(a, "layout_keypoints_uv", (N_LANDMARKS, 2))
            _check(a, "mouth_faces", (len(a["triangles"]),))
            tris, tex = a["triangles"], a["texture"]
        except KeyError as exc:
            raise ValueError(f"engine result {face['npz']} lacks the array {exc}") from exc
        if tris.ndim != 2 or tris.shape[1] not in (3, 4) or (tris.size and not 0 <= tris.min() <= tris.max() < n):
            raise ValueError(f"polygons must be (F, 3) or (F, 4) indices below {n}, got shape {tris.shape}")
        if tex.ndim != 3 or tex.shape[2] != 3 or tex.dtype != np.uint8:
            raise ValueError(f"texture must be (H, W, 3) uint8, got {tex.shape} {tex.dtype}")
        names = tuple(landmark_names)
        if len(names) != N_LANDMARKS:
            raise ValueError(f"expected {N_LANDMARKS} landmark names, got {len(names)}")
        yaw, pitch, roll = (float(v) for v in a["pose_yaw_pitch_roll"])
        return cls(
            photo=str(photo),
            bundle_id=str(face.get("bundle_id", "")),
            landmark_names=names,
            vertices=a["vertices"].astype(np.float32, copy=False),
            frontal_vertices=a["frontal_vertices"].astype(np.float32, copy=False),
            head_pivot=a["head_pivot"].astype(np.float64),
            polygons=tris.astype(np.int32, copy=False),
            uv=a["uv"].astype(np.float32, copy=False),
            landmarks_3d=a["landmarks_3d"].astype(np.float32, copy=False),
            landmark_visibility=a["landmark_visibility"].astype(bool, copy=False),
            texture=tex,
            rotation=a["pose_rotation"].astype(np.float64),
            translation=a["pose_translation"].astype(np.float64),
            scale=float(a["pose_scale"]),
            yaw=yaw,
            pitch=pitch,
            roll=roll,
            box=tuple(float(v) for v in a["box"][:4]),
            image_size=(int(a["image_size"][0]), int(a["image_size"][1])),
            keypoints_uv=a["layout_keypoints_uv"].astype(np.float64),
            layout_size=int(a["layout_size"]),
            mouth_faces=a["mouth_faces"].astype(bool),
            texture_png=face.get("texture_png"),
            background=face.get("background") if face.get("background") not in (None, str(photo)) else None,
        )


def _check(arrays: dict, name: str, shape: tuple[int, ...]) -> None:
    if arrays[name].shape != shape:
        raise ValueError(f"engine result: {name} must have shape {shape}, got {arrays[name].shape}")


@dataclass(frozen=True, slots=True, eq=False)
class TrackResult:
    """A track reply's per-frame arrays (engine.protocol.TRACK_NPZ_ARRAYS), F = frames read."""

    video: str  # absolute path of the video
    fps: float
    frame_size: tuple[int, int]  # (width, height) px
    every: int  # frames between samples
    frame: np.ndarray  # (F,) int video frame index, 0 = the video's first frame
    found: np.ndarray  # (F,) bool
    rotation: np.ndarray  # (F, 3, 3) canonical → image frame
    translation: np.ndarray  # (F, 3) image px
    scale: np.ndarray  # (F,) px per mm
    yaw_pitch_roll: np.ndarray  # (F, 3) degrees
    landmarks_3d: np.ndarray  # (F, 68, 3) image px
    mesh_cache: str | None  # PC2 file of the frontal mesh per frame (the add-on's head coordinates), or None
    mesh_cache_first_frame: int | None  # video frame index of the cache's first sample

    @classmethod
    def from_reply(cls, reply: dict, *, video: str) -> TrackResult:
        with np.load(Path(reply["track_npz"]), allow_pickle=False) as z:
            missing = [name for name in P.TRACK_NPZ_ARRAYS if name not in z.files]
            if missing:
                raise ValueError(f"engine track {reply['track_npz']} lacks the arrays {missing}")
            a = {k: z[k] for k in P.TRACK_NPZ_ARRAYS}
        f = len(a["frame"])
        for name, shape in (
            ("found", (f,)), ("pose_rotation", (f, 3, 3)), ("pose_translation", (f, 3)), ("pose_scale", (f,)),
            ("pose_yaw_pitch_roll", (f, 3)), ("landmarks_3d", (f, N_LANDMARKS, 3)),
        ):  # fmt: skip
            _check(a, name, shape)
        return cls(
            video=str(video), fps=float(reply["fps"]), frame_size=tuple(int(v) for v in reply["frame_size"]),
            every=int(reply["every"]), frame=a["frame"].astype(np.int64), found=a["found"].astype(bool),
            rotation=a["pose_rotation"].astype(np.float64), translation=a["pose_translation"].astype(np.float64),
            scale=a["pose_scale"].astype(np.float64), yaw_pitch_roll=a["pose_yaw_pitch_roll"].astype(np.float64),
            landmarks_3d=a["landmarks_3d"].astype(np.float64), mesh_cache=reply.get("mesh_cache"),
            mesh_cache_first_frame=reply.get("mesh_cache_first_frame"),
        )  # fmt: skip
