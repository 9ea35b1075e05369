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

import hashlib
import io
import json
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields
from pathlib import Path

import cv2
import numpy as np

from .atomic_write import check_writable, write_files_atomically
from .errors import OutputError
from .landmarks import LANDMARK_NAMES
from .layout import N_LANDMARKS
from .quad_mesh import triangle_mesh
from .rig import FaceRig, rig_json
from .types import FaceMesh, FaceReconstruction, HeadPose

FORMATS = ("obj", "landmarks", "pose", "ply", "npz")  # obj = OBJ + MTL + texture PNG
DEFAULT_FORMATS = ("obj", "landmarks", "pose")
MATERIAL_NAME = "face"
XYZ_DECIMALS = 4  # 1e-4 px: far below the reconstruction's accuracy, keeps OBJ files small
UV_FORMAT = "%.6f"  # 1e-6 of the texture side: < 1/1000 texel even at 1024²
LAYOUT_LINES_KEPT = 4  # mesh kinds whose vt/f lines are kept: closed/open mouth × triangles, a quad grid
_LAYOUT_LINES: dict[bytes, tuple[str, str]] = {}
JSON_DECIMALS = 4  # px / degrees; same reasoning as XYZ_DECIMALS
IMAGE_FRAME = "image px of the upright photo: origin top-left, x right, y down, z toward the camera (larger = nearer)"
POSE_CONVENTION = (
    "image = scale * rotation @ canonical + translation (canonical: layout mean face, mm; image: px, x right, "
    "y down, z toward the camera); rotation = Rz(roll) @ Ry(yaw) @ Rx(pitch), degrees, column vectors; "
    "head_pivot: canonical mm, where the head turns on the neck"
)


def write_obj(
    path: str | Path,
    recon: FaceReconstruction | FaceMesh,
    *,
    mtl_name: str | None = None,
    material: str = MATERIAL_NAME,
) -> Path:
    """OBJ with ``mtllib`` (default: the OBJ's name with ``.mtl``), one ``vt`` per vertex, 1-based
    faces (triangles, or quads for a quad :class:`~engine.types.FaceMesh`)."""
    path = Path(path)
    return _write_one(path, _obj_bytes(_as_mesh(recon), mtl_name or path.with_suffix(".mtl").name, material))


def write_mtl(path: str | Path, texture_file_name: str, *, material: str = MATERIAL_NAME) -> Path:
    """MTL whose diffuse map is ``texture_file_name``, relative to the MTL's folder."""
    return _write_one(path, _mtl_bytes(texture_file_name, material))


def write_texture_png(path: str | Path, texture: np.ndarray, alpha: np.ndarray | None = None) -> Path:
    """An (H, W, 3) uint8 RGB texture as PNG; with ``alpha`` (H, W) bool, RGBA (opaque where True)."""
    return _write_one(path, _png_bytes(texture, alpha))


def write_ply(path: str | Path, recon: FaceReconstruction | FaceMesh) -> Path:
    """Binary little-endian PLY: float32 xyz (y up, like OBJ), uchar RGB, uchar-count int32 faces."""
    return _write_one(path, _ply_bytes(_as_mesh(recon)))


def write_landmarks_json(path: str | Path, recon: FaceReconstruction) -> Path:
    """``landmarks_3d``, ``landmarks_2d``, ``visibility``, ``names`` (iBUG order), ``frame``."""
    return _write_one(path, _landmarks_bytes(recon))


def write_pose_json(path: str | Path, recon: FaceReconstruction) -> Path:
    """``yaw``/``pitch``/``roll`` (degrees), ``rotation``, ``translation``, ``scale``, ``head_pivot``
    (canonical mm), ``convention``."""
    return _write_one(path, _pose_bytes(recon))


def write_npz(
    path: str | Path,
    recon: FaceReconstruction,
    mesh: FaceMesh | None = None,
    extra: dict[str, np.ndarray] | None = None,
) -> Path:
    """Every array field by its name, plus box, image_size, layout_id, mouth and pose_* entries; with a
    quad ``mesh``, also its arrays as ``mesh_vertices``, ``mesh_faces``, ``mesh_uv``,
    ``mesh_vertex_colors`` and ``mesh_frontal_vertices``; ``extra`` arrays under their own names."""
    return _write_one(path, _npz_bytes(recon, mesh, extra))


def export_face(
    recon: FaceReconstruction,
    out_dir: str | Path,
    stem: str,
    *,
    formats: Iterable[str] = DEFAULT_FORMATS,
    mesh: FaceMesh | None = None,
    texture_alpha: bool = False,
    rig: FaceRig | None = None,
) -> list[Path]:
    """Write ``STEM.obj``/``.mtl``/``_texture.png``, ``STEM.landmarks.json``, ``STEM.pose.json``,
    and, when asked, ``STEM.ply`` and ``STEM.npz`` into ``out_dir`` (created if missing). OBJ and PLY
    hold ``mesh`` (default: the reconstruction's triangles; engine.quad_mesh gives quads);
    ``texture_alpha`` writes the texture as RGBA with the photo-seen mask as alpha; ``rig`` (its
    weights for ``mesh``'s vertices) adds ``STEM.rig.json`` (bones) and ``STEM.rig.npz`` (weights)."""
    formats = tuple(formats)
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise ValueError(f"unknown export formats {unknown}; choose from {FORMATS}")
    if not stem or stem in (".", "..") or "/" in stem or "\\" in stem:
        raise ValueError(f"stem must be a plain file name, got {stem!r}")
    out = Path(out_dir)
    check_writable(out)
    payloads: dict[Path, bytes] = {}
    shape = _as_mesh(recon) if mesh is None else mesh
    png = None
    if "obj" in formats:  # the PNG encodes on a second thread (OpenCV releases the GIL) while the rest formats
        texture_name = f"{stem}_texture.png"
        pool = ThreadPoolExecutor(max_workers=1)
        png = pool.submit(_png_bytes, recon.texture, recon.texture_mask if texture_alpha else None)
        pool.shutdown(wait=False)
        payloads[out / f"{stem}.obj"] = _obj_bytes(shape, f"{stem}.mtl", MATERIAL_NAME)
        payloads[out / f"{stem}.mtl"] = _mtl_bytes(texture_name, MATERIAL_NAME)
        payloads[out / texture_name] = b""  # its place in the group's order; the bytes come from the thread
    if "landmarks" in formats:
        payloads[out / f"{stem}.landmarks.json"] = _landmarks_bytes(recon)
    if "pose" in formats:
        payloads[out / f"{stem}.pose.json"] = _pose_bytes(recon)
    if "ply" in formats:
        payloads[out / f"{stem}.ply"] = _ply_bytes(shape)
    if "npz" in formats:
        payloads[out / f"{stem}.npz"] = _npz_bytes(recon, mesh)
    if rig is not None:
        if len(rig.weights) != len(shape.vertices):
            raise ValueError(f"rig weights are for {len(rig.weights)} vertices, the mesh has {len(shape.vertices)}")
        payloads[out / f"{stem}.rig.json"] = json_bytes(rig_json(rig, weights_file=f"{stem}.rig.npz"))
        buf = io.BytesIO()
        np.savez_compressed(buf, weights=rig.weights, bones=np.array(rig.weight_bones))
        payloads[out / f"{stem}.rig.npz"] = buf.getvalue()
    if png is not None:
        payloads[out / texture_name] = png.result()
    return write_files_atomically(payloads)


def file_stem(name: str) -> str:
    """``name`` made safe as a file stem that OBJ/MTL references and every file system take: letters
    of any script, digits, ``.``, ``-`` and ``_`` are kept; anything else (spaces, control characters
    such as a newline, path and shell characters) becomes ``_``; empty → ``face``."""
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name).strip(".")
    return safe or "face"


def _as_mesh(recon: FaceReconstruction | FaceMesh) -> FaceMesh:
    return recon if isinstance(recon, FaceMesh) else triangle_mesh(recon)


def _check_mesh(mesh: FaceMesh) -> int:
    """Number of vertices, after checking the mesh arrays agree; ValueError names the bad shape."""
    n = len(mesh.vertices)
    expected = {"vertices": (n, 3), "uv": (n, 2), "vertex_colors": (n, 3)}
    for name, shape in expected.items():
        got = getattr(mesh, name).shape
        if got != shape:
            raise ValueError(f"{name} must have shape {shape}, got {got}")
    faces = mesh.faces
    if faces.ndim != 2 or faces.shape[1] not in (3, 4):
        raise ValueError(f"faces must have shape (F, 3) or (F, 4), got {faces.shape}")
    if faces.size and (faces.min() < 0 or faces.max() >= n):
        raise ValueError(f"face indices must lie in 0..{n - 1}, got {faces.min()}..{faces.max()}")
    return n


def _mesh_xyz(mesh: FaceMesh) -> np.ndarray:
    """(N, 3) float64 image frame → mesh frame (y negated)."""
    return np.asarray(mesh.vertices, np.float64) * (1.0, -1.0, 1.0)


def _obj_bytes(mesh: FaceMesh, mtl_name: str, material: str) -> bytes:
    _check_mesh(mesh)
    faces = np.asarray(mesh.faces, np.int64) + 1
    head = (
        "# prnet_blender face mesh: image px with y negated (x right, y up, z toward the viewer)\n"
        f"mtllib {mtl_name}\no face\n"
    )
    v = fixed_point_lines(b"v", _mesh_xyz(mesh), XYZ_DECIMALS)
    vt, f = _layout_lines(np.asarray(mesh.uv), faces)
    return head.encode("utf-8") + v + (vt + f"usemtl {material}\ns off\n" + f).encode("utf-8")


def fixed_point_lines(prefix: bytes, values: np.ndarray, decimals: int) -> bytes:
    """One text line per row of ``values`` (N, K): ``prefix`` and each value with ``decimals``
    decimals, right-aligned in fields of one width (OBJ readers split on any whitespace). Built as
    an array of characters, ≈10× faster than ``%``-formatting; rows with a non-finite value fall
    back to it (``nan``, ``inf``)."""
    values = np.asarray(values, np.float64)
    if not np.isfinite(values).all():
        fmt = "%s" + f" %.{decimals}f" * values.shape[1] + "\n"
        return "".join(fmt % (prefix.decode(), *row) for row in values).encode("ascii")
    n, k = values.shape
    scaled = np.rint(np.abs(values) * 10**decimals).astype(np.int64)
    whole = scaled // 10**decimals
    int_digits = len(str(int(whole.max()))) if n else 1
    width = int_digits + decimals + 3  # space, sign, digits, point, decimals
    chars = np.full((n, k, width), ord(" "), np.uint8)
    rest = scaled.copy()
    for pos in range(width - 1, width - 1 - decimals, -1):
        chars[..., pos] = ord("0") + rest % 10
        rest //= 10
    point = width - 1 - decimals
    chars[..., point] = ord(".")
    digits = np.ones(whole.shape, np.int64)  # integer digits shown (at least one: "0.5")
    for d in range(int_digits):
        pos = point - 1 - d
        shown = (d == 0) | (rest > 0)
        chars[..., pos] = np.where(shown, ord("0") + rest % 10, ord(" "))
        digits += (d > 0) & shown
        rest //= 10
    negative = (values < 0) & (scaled > 0)
    rows, cols = np.nonzero(negative)
    chars[rows, cols, point - 1 - digits[rows, cols]] = ord("-")
    line = np.concatenate([
        np.broadcast_to(np.frombuffer(prefix, np.uint8), (n, len(prefix))), chars.reshape(n, k * width),
        np.full((n, 1), ord("\n"), np.uint8),
    ], axis=1)  # fmt: skip
    return line.tobytes()


def _layout_lines(uv: np.ndarray, faces: np.ndarray) -> tuple[str, str]:
    """The ``vt`` and ``f`` lines of a mesh (1-based ``faces``): the same for every face of a layout
    and mesh kind, so they are formatted once and kept (:data:`LAYOUT_LINES_KEPT` kinds), keyed by a
    hash of the arrays."""
    digest = hashlib.blake2b(digest_size=16)
    for a in (uv, faces):
        digest.update(str((a.dtype, a.shape)).encode())
        digest.update(np.ascontiguousarray(a).data)
    key = digest.digest()
    if key not in _LAYOUT_LINES:
        vt = (f"vt {UV_FORMAT} {UV_FORMAT}\n" * len(uv)) % tuple(np.asarray(uv, np.float64).ravel())
        line = "f" + " %d/%d" * faces.shape[1] + "\n"
        f = (line * len(faces)) % tuple(np.repeat(faces, 2, axis=1).ravel())
        while len(_LAYOUT_LINES) >= LAYOUT_LINES_KEPT:
            _LAYOUT_LINES.pop(next(iter(_LAYOUT_LINES)))
        _LAYOUT_LINES[key] = (vt, f)
    return _LAYOUT_LINES[key]


def _mtl_bytes(texture_file_name: str, material: str) -> bytes:
    if Path(texture_file_name).is_absolute():
        raise ValueError(f"texture path must be relative to the MTL file, got {texture_file_name!r}")
    lines = [f"newmtl {material}", "Ka 1.0 1.0 1.0", "Kd 1.0 1.0 1.0", "Ks 0.0 0.0 0.0", "d 1.0", "illum 1"]
    return ("\n".join([*lines, f"map_Kd {texture_file_name}"]) + "\n").encode("utf-8")


def _png_bytes(texture: np.ndarray, alpha: np.ndarray | None = None) -> bytes:
    texture = np.asarray(texture)
    if texture.ndim != 3 or texture.shape[2] != 3 or texture.dtype != np.uint8:
        raise ValueError(f"texture must be (H, W, 3) uint8 RGB, got {texture.shape} {texture.dtype}")
    bgr = texture[..., ::-1]  # OpenCV wants BGR
    if alpha is not None:
        if np.shape(alpha) != texture.shape[:2]:
            raise ValueError(f"alpha must be {texture.shape[:2]}, got {np.shape(alpha)}")
        bgr = np.dstack([bgr, np.where(alpha, 255, 0).astype(np.uint8)])
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(bgr))
    if not ok:
        raise OutputError("PNG encoding of the texture failed")
    return buf.tobytes()


def _ply_bytes(mesh: FaceMesh) -> bytes:
    n = _check_mesh(mesh)
    vert = np.empty(n, dtype=[("xyz", "<f4", 3), ("rgb", "u1", 3)])
    vert["xyz"] = _mesh_xyz(mesh)
    vert["rgb"] = np.rint(np.clip(mesh.vertex_colors, 0.0, 1.0) * 255.0)
    k = mesh.faces.shape[1]
    face = np.empty(len(mesh.faces), dtype=[("count", "u1"), ("index", "<i4", k)])
    face["count"] = k
    face["index"] = mesh.faces
    header = "\n".join([
        "ply", "format binary_little_endian 1.0",
        "comment prnet_blender face mesh: image px with y negated (x right, y up, z toward the viewer)",
        f"element vertex {n}", "property float x", "property float y", "property float z",
        "property uchar red", "property uchar green", "property uchar blue",
        f"element face {len(face)}", "property list uchar int vertex_indices", "end_header",
    ])  # fmt: skip
    return (header + "\n").encode("ascii") + vert.tobytes() + face.tobytes()


def json_bytes(content: dict) -> bytes:
    """A JSON document as the engine writes them (UTF-8, indented by one, newline-terminated)."""
    return (json.dumps(content, indent=1) + "\n").encode("utf-8")


def rounded(a: np.ndarray) -> list:
    """An array as nested lists of floats rounded to :data:`JSON_DECIMALS`."""
    return np.round(np.asarray(a, np.float64), JSON_DECIMALS).tolist()


def _landmarks_bytes(recon: FaceReconstruction) -> bytes:
    lm, vis = np.asarray(recon.landmarks_3d), np.asarray(recon.landmark_visibility)
    if lm.shape != (N_LANDMARKS, 3) or vis.shape != (N_LANDMARKS,):
        raise ValueError(f"landmarks must be (68, 3) with (68,) visibility, got {lm.shape} and {vis.shape}")
    return json_bytes({
        "frame": IMAGE_FRAME,
        "image_size": list(recon.image_size),
        "landmarks_3d": rounded(lm),
        "landmarks_2d": rounded(lm[:, :2]),
        "visibility": [bool(v) for v in vis],
        "names": list(LANDMARK_NAMES),
    })  # fmt: skip


def _pose_bytes(recon: FaceReconstruction) -> bytes:
    p = recon.pose
    if np.shape(p.rotation) != (3, 3) or np.shape(p.translation) != (3,):
        raise ValueError(
            f"pose rotation must be (3, 3) and translation (3,), got {np.shape(p.rotation)}, {np.shape(p.translation)}"
        )
    return json_bytes({
        **pose_fields(p), "head_pivot": rounded(recon.head_pivot), "convention": POSE_CONVENTION,
    })  # fmt: skip


def pose_fields(pose: HeadPose) -> dict:
    """A pose as the JSON files hold it: ``yaw``, ``pitch``, ``roll`` (degrees), ``rotation``,
    ``translation``, ``scale`` (:data:`POSE_CONVENTION`)."""
    angles = {k: round(float(getattr(pose, k)), JSON_DECIMALS) for k in ("yaw", "pitch", "roll")}
    rotation = np.asarray(pose.rotation, np.float64).tolist()
    return {**angles, "rotation": rotation, "translation": rounded(pose.translation), "scale": float(pose.scale)}


def _npz_bytes(
    recon: FaceReconstruction, mesh: FaceMesh | None = None, extra: dict[str, np.ndarray] | None = None
) -> bytes:
    arrays = {f.name: getattr(recon, f.name) for f in fields(recon) if isinstance(getattr(recon, f.name), np.ndarray)}
    if mesh is not None and mesh.topology == "quads":
        _check_mesh(mesh)
        arrays.update({f"mesh_{f.name}": getattr(mesh, f.name) for f in fields(mesh)})
    p = recon.pose
    arrays.update(
        box=np.array([*recon.box.as_list(), recon.box.score]), image_size=np.array(recon.image_size),
        layout_id=np.array(recon.layout_id), mouth=np.array(recon.mouth), pose_rotation=np.asarray(p.rotation),
        pose_translation=np.asarray(p.translation), pose_scale=np.array(p.scale),
        pose_yaw_pitch_roll=np.array([p.yaw, p.pitch, p.roll]), **(extra or {}),
    )  # fmt: skip
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _write_one(path: str | Path, data: bytes) -> Path:
    return write_files_atomically({Path(path): data})[0]
