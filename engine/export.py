"""Write a :class:`~engine.types.FaceReconstruction` to files other tools read.

Formats: Wavefront OBJ + MTL + texture PNG (the textured mesh), binary PLY (mesh + vertex colours),
JSON for the 68 landmarks and the head pose, NPZ with every array. Meshes (OBJ, PLY) are written in
the engine's image frame with y negated — pixels, x right, y up, z toward the viewer: a right-handed
frame in which the layout's triangles are counter-clockwise seen from the camera, so normals face
the viewer. JSON files keep the image frame itself (y down) and say so in a ``frame`` entry.

Every file is written atomically: bytes go to a hidden temporary file in the target folder, which
then replaces the target (``os.replace``); on failure the temporary file is removed and an
:class:`~engine.errors.OutputError` names the path (:mod:`engine.atomic_write`). :func:`export_face`
stages all its files before replacing any, so a failure leaves no half-written file.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from dataclasses import fields
from pathlib import Path

import cv2
import numpy as np

from .atomic_write import check_writable, write_files_atomically
from .errors import OutputError
from .landmarks import LANDMARK_NAMES
from .layout import N_LANDMARKS
from .types import FaceReconstruction

FORMATS = ("obj", "landmarks", "pose", "ply", "npz")  # obj = OBJ + MTL + texture PNG
DEFAULT_FORMATS = ("obj", "landmarks", "pose")
MATERIAL_NAME = "face"
XYZ_FORMAT = "%.4f"  # 1e-4 px: far below the reconstruction's accuracy, keeps OBJ files small
UV_FORMAT = "%.6f"  # 1e-6 of the texture side: < 1/1000 texel even at 1024²
JSON_DECIMALS = 4  # px / degrees; same reasoning as XYZ_FORMAT
IMAGE_FRAME = "image px of the upright photo: origin top-left, x right, y down, z toward the camera (larger = nearer)"
POSE_CONVENTION = (
    "image = scale * rotation @ canonical + translation (canonical: layout mean face, mm; image: px, x right, "
    "y down, z toward the camera); rotation = Rz(roll) @ Ry(yaw) @ Rx(pitch), degrees, column vectors"
)


def write_obj(
    path: str | Path, recon: FaceReconstruction, *, mtl_name: str | None = None, material: str = MATERIAL_NAME
) -> Path:
    """OBJ with ``mtllib`` (default: the OBJ's name with ``.mtl``), one ``vt`` per vertex, 1-based faces."""
    path = Path(path)
    return _write_one(path, _obj_bytes(recon, mtl_name or path.with_suffix(".mtl").name, material))


def write_mtl(path: str | Path, texture_file_name: str, *, material: str = MATERIAL_NAME) -> Path:
    """MTL whose diffuse map is ``texture_file_name``, relative to the MTL's folder."""
    return _write_one(path, _mtl_bytes(texture_file_name, material))


def write_texture_png(path: str | Path, texture: np.ndarray) -> Path:
    """An (H, W, 3) uint8 RGB texture as PNG."""
    return _write_one(path, _png_bytes(texture))


def write_ply(path: str | Path, recon: FaceReconstruction) -> Path:
    """Binary little-endian PLY: float32 xyz (y up, like OBJ), uchar RGB, uchar-count int32 faces."""
    return _write_one(path, _ply_bytes(recon))


def write_landmarks_json(path: str | Path, recon: FaceReconstruction) -> Path:
    """``landmarks_3d``, ``landmarks_2d``, ``visibility``, ``names`` (iBUG order), ``frame``."""
    return _write_one(path, _landmarks_bytes(recon))


def write_pose_json(path: str | Path, recon: FaceReconstruction) -> Path:
    """``yaw``/``pitch``/``roll`` (degrees), ``rotation``, ``translation``, ``scale``, ``convention``."""
    return _write_one(path, _pose_bytes(recon))


def write_npz(path: str | Path, recon: FaceReconstruction) -> Path:
    """Every array field by its name, plus box, image_size, layout_id and pose_* entries."""
    return _write_one(path, _npz_bytes(recon))


def export_face(
    recon: FaceReconstruction, out_dir: str | Path, stem: str, *, formats: Iterable[str] = DEFAULT_FORMATS
) -> list[Path]:
    """Write ``STEM.obj``/``.mtl``/``_texture.png``, ``STEM.landmarks.json``, ``STEM.pose.json``,
    and, when asked, ``STEM.ply`` and ``STEM.npz`` into ``out_dir`` (created if missing)."""
    formats = tuple(formats)
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise ValueError(f"unknown export formats {unknown}; choose from {FORMATS}")
    if not stem or stem in (".", "..") or "/" in stem or "\\" in stem:
        raise ValueError(f"stem must be a plain file name, got {stem!r}")
    out = Path(out_dir)
    check_writable(out)
    payloads: dict[Path, bytes] = {}
    if "obj" in formats:
        texture_name = f"{stem}_texture.png"
        payloads[out / f"{stem}.obj"] = _obj_bytes(recon, f"{stem}.mtl", MATERIAL_NAME)
        payloads[out / f"{stem}.mtl"] = _mtl_bytes(texture_name, MATERIAL_NAME)
        payloads[out / texture_name] = _png_bytes(recon.texture)
    if "landmarks" in formats:
        payloads[out / f"{stem}.landmarks.json"] = _landmarks_bytes(recon)
    if "pose" in formats:
        payloads[out / f"{stem}.pose.json"] = _pose_bytes(recon)
    if "ply" in formats:
        payloads[out / f"{stem}.ply"] = _ply_bytes(recon)
    if "npz" in formats:
        payloads[out / f"{stem}.npz"] = _npz_bytes(recon)
    return write_files_atomically(payloads)


def _check_mesh(recon: FaceReconstruction) -> int:
    """Number of vertices, after checking the mesh arrays agree; ValueError names the bad shape."""
    n = len(recon.vertices)
    expected = {"vertices": (n, 3), "uv": (n, 2), "vertex_colors": (n, 3)}
    for name, shape in expected.items():
        got = getattr(recon, name).shape
        if got != shape:
            raise ValueError(f"{name} must have shape {shape}, got {got}")
    tris = recon.triangles
    if tris.ndim != 2 or tris.shape[1] != 3:
        raise ValueError(f"triangles must have shape (T, 3), got {tris.shape}")
    if tris.size and (tris.min() < 0 or tris.max() >= n):
        raise ValueError(f"triangle indices must lie in 0..{n - 1}, got {tris.min()}..{tris.max()}")
    return n


def _mesh_xyz(recon: FaceReconstruction) -> np.ndarray:
    """(N, 3) float64 image frame → mesh frame (y negated)."""
    return np.asarray(recon.vertices, np.float64) * (1.0, -1.0, 1.0)


def _obj_bytes(recon: FaceReconstruction, mtl_name: str, material: str) -> bytes:
    n = _check_mesh(recon)
    tris = np.asarray(recon.triangles, np.int64) + 1
    head = (
        "# prnet_blender face mesh: image px with y negated (x right, y up, z toward the viewer)\n"
        f"mtllib {mtl_name}\no face\n"
    )
    v = (f"v {XYZ_FORMAT} {XYZ_FORMAT} {XYZ_FORMAT}\n" * n) % tuple(_mesh_xyz(recon).ravel())
    vt = (f"vt {UV_FORMAT} {UV_FORMAT}\n" * n) % tuple(np.asarray(recon.uv, np.float64).ravel())
    f = ("f %d/%d %d/%d %d/%d\n" * len(tris)) % tuple(np.repeat(tris, 2, axis=1).ravel())
    return (head + v + vt + f"usemtl {material}\ns off\n" + f).encode("ascii")


def _mtl_bytes(texture_file_name: str, material: str) -> bytes:
    if Path(texture_file_name).is_absolute():
        raise ValueError(f"texture path must be relative to the MTL file, got {texture_file_name!r}")
    lines = [f"newmtl {material}", "Ka 1.0 1.0 1.0", "Kd 1.0 1.0 1.0", "Ks 0.0 0.0 0.0", "d 1.0", "illum 1"]
    return ("\n".join([*lines, f"map_Kd {texture_file_name}"]) + "\n").encode("utf-8")


def _png_bytes(texture: np.ndarray) -> bytes:
    texture = np.asarray(texture)
    if texture.ndim != 3 or texture.shape[2] != 3 or texture.dtype != np.uint8:
        raise ValueError(f"texture must be (H, W, 3) uint8 RGB, got {texture.shape} {texture.dtype}")
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(texture[..., ::-1]))  # OpenCV wants BGR
    if not ok:
        raise OutputError("PNG encoding of the texture failed")
    return buf.tobytes()


def _ply_bytes(recon: FaceReconstruction) -> bytes:
    n = _check_mesh(recon)
    vert = np.empty(n, dtype=[("xyz", "<f4", 3), ("rgb", "u1", 3)])
    vert["xyz"] = _mesh_xyz(recon)
    vert["rgb"] = np.rint(np.clip(recon.vertex_colors, 0.0, 1.0) * 255.0)
    face = np.empty(len(recon.triangles), dtype=[("count", "u1"), ("index", "<i4", 3)])
    face["count"] = 3
    face["index"] = recon.triangles
    header = "\n".join([
        "ply", "format binary_little_endian 1.0",
        "comment prnet_blender face mesh: image px with y negated (x right, y up, z toward the viewer)",
        f"element vertex {n}", "property float x", "property float y", "property float z",
        "property uchar red", "property uchar green", "property uchar blue",
        f"element face {len(face)}", "property list uchar int vertex_indices", "end_header",
    ])  # fmt: skip
    return (header + "\n").encode("ascii") + vert.tobytes() + face.tobytes()


def _json_bytes(content: dict) -> bytes:
    return (json.dumps(content, indent=1) + "\n").encode("utf-8")


def _rounded(a: np.ndarray) -> list:
    return np.round(np.asarray(a, np.float64), JSON_DECIMALS).tolist()


def _landmarks_bytes(recon: FaceReconstruction) -> bytes:
    lm, vis = np.asarray(recon.landmarks_3d), np.asarray(recon.landmark_visibility)
    if lm.shape != (N_LANDMARKS, 3) or vis.shape != (N_LANDMARKS,):
        raise ValueError(f"landmarks must be (68, 3) with (68,) visibility, got {lm.shape} and {vis.shape}")
    return _json_bytes({
        "frame": IMAGE_FRAME,
        "image_size": list(recon.image_size),
        "landmarks_3d": _rounded(lm),
        "landmarks_2d": _rounded(lm[:, :2]),
        "visibility": [bool(v) for v in vis],
        "names": list(LANDMARK_NAMES),
    })  # fmt: skip


def _pose_bytes(recon: FaceReconstruction) -> bytes:
    p = recon.pose
    if np.shape(p.rotation) != (3, 3) or np.shape(p.translation) != (3,):
        raise ValueError(
            f"pose rotation must be (3, 3) and translation (3,), got {np.shape(p.rotation)}, {np.shape(p.translation)}"
        )
    angles = {k: round(float(getattr(p, k)), JSON_DECIMALS) for k in ("yaw", "pitch", "roll")}
    return _json_bytes({
        **angles, "rotation": np.asarray(p.rotation, np.float64).tolist(), "translation": _rounded(p.translation),
        "scale": float(p.scale), "convention": POSE_CONVENTION,
    })  # fmt: skip


def _npz_bytes(recon: FaceReconstruction) -> bytes:
    arrays = {f.name: getattr(recon, f.name) for f in fields(recon) if isinstance(getattr(recon, f.name), np.ndarray)}
    p = recon.pose
    arrays.update(
        box=np.array([*recon.box.as_list(), recon.box.score]), image_size=np.array(recon.image_size),
        layout_id=np.array(recon.layout_id), pose_rotation=np.asarray(p.rotation),
        pose_translation=np.asarray(p.translation), pose_scale=np.array(p.scale),
        pose_yaw_pitch_roll=np.array([p.yaw, p.pitch, p.roll]),
    )  # fmt: skip
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _write_one(path: str | Path, data: bytes) -> Path:
    return write_files_atomically({Path(path): data})[0]
