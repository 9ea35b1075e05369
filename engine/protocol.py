"""The worker protocol, spelled once: what the Blender add-on and ``python -m engine.worker`` exchange.

Stdlib only (with engine.options, engine.device and engine.errors, also stdlib only), so the add-on
imports it without torch or numpy (prnet_blender.interpreter.engine_module).

Messages are UTF-8 JSON objects, one per line; every message carries its request's ``id`` (an
integer, or a string of letters, digits, ``-`` and ``_``: it names the request's result folder)::

    request   {"id": 7, "cmd": "ping"}
              {"id": 8, "cmd": "load", "options": {...}}          load the model now (pre-warm)
              {"id": 9, "cmd": "reconstruct", "photo": "/abs/photo.jpg", "options": {...}}
              {"id": 12, "cmd": "track", "video": "/abs/clip.mp4", "options": {...}}   see :data:`TRACK_OPTION_DEFAULTS`
              {"id": 10, "cmd": "cancel", "target": 9}           abandon request 9 at its next stage
              {"id": 11, "cmd": "shutdown"}
    options   see :data:`OPTION_DEFAULTS` and :func:`request_options`
    progress  {"id": 9, "progress": 0.2, "stage": "reconstructing"}           0 ≤ progress ≤ 1
    reply     {"id": 9, "ok": true, "faces": [face, ...], "bundle_id": "...", "landmark_names": [68 names],
               "timings_ms": {stage: ms}}
              {"id": 12, "ok": true, "faces": [face of the first tracked frame], "track_npz": path,
               "fps": f, "frame_size": [w, h], "every": n, "frames": F, "found": K, "mesh_cache": path | null,
               "mesh_cache_first_frame": i, "landmark_names": [...], "bundle_id": "..."}    (track)
              {"id": 7, "ok": true, "pid": 123, "torch": "2.13.0", "cuda": false}          (ping)
              {"id": 8, "ok": true, "bundle_id": "...", "device": "cpu"}                     (load)
              {"id": 10, "ok": true}                                              (cancel, shutdown)
    error     {"id": 9, "ok": false, "kind": KIND, "error": "one line for the artist"}
              (a line that is not a JSON object, or whose id is not valid, gets this with "id": null)
    face      {"npz": "/DIR/9/face_1.npz", "texture_png": "/DIR/9/face_1_texture.png",
               "background": photo or an upright copy, "yaw": .., "pitch": .., "roll": .. (degrees),
               "box": [left, top, right, bottom, score], "bundle_id": "...", "image_size": [h, w],
               "n_vertices": N}

Each face's .npz (engine.export.write_npz) holds :data:`NPZ_ARRAYS` (the add-on reads those) and
every other array of the FaceReconstruction. Files of request ``id`` live in ``DIR/<id>/``; the
client deletes them once it has read them.
"""

from __future__ import annotations

import re
from typing import Any

from .device import check_device_name
from .errors import InvalidOptionError
from .options import (
    DEFAULT_MOUTH,
    DEFAULT_QUAD_CELLS,
    DEFAULT_QUALITY,
    DEFAULT_TEXTURE_MODE,
    DEFAULT_TEXTURE_SIZE,
    DEFAULT_TOPOLOGY,
    TOPOLOGIES,
    check_choice,
    check_mouth_mode,
    check_quad_cells,
    check_quality,
    check_texture_mode,
    check_texture_size,
    parse_boxes,
)

PING, LOAD, RECONSTRUCT, TRACK, CANCEL, SHUTDOWN = "ping", "load", "reconstruct", "track", "cancel", "shutdown"
COMMANDS = (PING, LOAD, RECONSTRUCT, TRACK, CANCEL, SHUTDOWN)

# Error kinds of a failed request, and what each means for the artist.
NO_FACE = "no_face"  # the photo holds no detectable face
BAD_INPUT = "bad_input"  # photo unreadable, bad option, unknown command
NO_MODEL = "no_model"  # bundle missing or failing its checks
CANCELLED = "cancelled"  # cancelled by a cancel request
INTERNAL = "internal"  # anything else (a bug): the message names the exception
ERROR_KINDS = (NO_FACE, BAD_INPUT, NO_MODEL, CANCELLED, INTERNAL)

OPTION_DEFAULTS = {
    "texture_size": DEFAULT_TEXTURE_SIZE,  # UV texture side, px (engine.options' limits)
    "all_faces": False,  # the largest face only: a click in Blender builds one head
    "texture_mode": DEFAULT_TEXTURE_MODE,  # complete / photo (engine.texture)
    "mouth": DEFAULT_MOUTH,  # closed / open (engine.mouth)
    "topology": DEFAULT_TOPOLOGY,  # triangles / quads (engine.quad_mesh)
    "quad_cells": DEFAULT_QUAD_CELLS,  # quad grid cells across the UV square
    "quality": DEFAULT_QUALITY,  # full / preview (engine.api: preview skips shift averaging)
    "device": None,  # None: the worker's --device
    "bundle": None,  # model bundle folder; None: the worker's --bundle, else the shipped model
    "boxes": None,  # [[left, top, right, bottom], ...] photo px: skip detection
}

# Arrays of a face's .npz that the add-on reads (prnet_blender.result), by name.
NPZ_ARRAYS = (
    "vertices",  # (N, 3) float32 image px
    "frontal_vertices",  # (N, 3) float32 canonical mm
    "head_pivot",  # (3,) float32 canonical mm: the object origin in Blender
    "triangles",  # (T, 3) int32
    "uv",  # (N, 2) float32, v up
    "landmarks_3d",  # (68, 3) float32 image px
    "landmark_visibility",  # (68,) bool
    "texture",  # (H, W, 3) uint8, row 0 = v 1
    "pose_rotation",  # (3, 3)
    "pose_translation",  # (3,)
    "pose_scale",  # ()
    "pose_yaw_pitch_roll",  # (3,) degrees
    "box",  # (5,) left, top, right, bottom, score
    "image_size",  # (2,) height, width
    "layout_keypoints_uv",  # (68, 2) float32 layout px of the 68 landmarks (the rig's weight design)
    "layout_size",  # () side of the UV layout, px
    "mouth_faces",  # (F,) bool per polygon of the mesh to build: the strip that closes the lips
)

# Arrays a face's .npz adds when the mesh to build is not the reconstruction's own triangles (quads,
# engine.quad_mesh): the add-on builds from these instead of vertices / frontal_vertices / triangles / uv.
MESH_NPZ_ARRAYS = (
    "mesh_vertices",  # (V, 3) float32 image px
    "mesh_frontal_vertices",  # (V, 3) float32 canonical mm
    "mesh_faces",  # (F, 4) int32
    "mesh_uv",  # (V, 2) float32, v up
)

# Options of a track request, beyond device and bundle (which mean what they mean for reconstruct).
TRACK_OPTION_DEFAULTS = {
    "start": 0.0,  # seconds (engine.video.FrameRange checks the range)
    "end": None,  # seconds; None: the end of the video
    "every": 1,  # track every N-th frame
    "fast": False,  # engine.tracker's fast mode
    "texture_size": DEFAULT_TEXTURE_SIZE,  # the first tracked frame's texture
    "mesh_cache": None,  # PC2 path to write the per-frame mesh to, or None
    "mesh_cache_axes": None,  # (3, 3): canonical mm (pivot at 0) → the cache's coordinates; None: identity
    "device": None,
    "bundle": None,
}

# Arrays of a track's .npz (``track_npz``), F = frames read, in order.
TRACK_NPZ_ARRAYS = (
    "frame",  # (F,) int64 video frame index (0 = the video's first frame)
    "time",  # (F,) float64 seconds
    "found",  # (F,) bool: a face in this frame (False: a gap; its other rows are zeros)
    "pose_rotation",  # (F, 3, 3) canonical → image frame
    "pose_translation",  # (F, 3) image px
    "pose_scale",  # (F,) px per mm
    "pose_yaw_pitch_roll",  # (F, 3) degrees
    "landmarks_3d",  # (F, 68, 3) float32 image px
    "landmark_visibility",  # (F, 68) bool
)

EXIT_MISSING_PACKAGES = 3  # the worker's exit code when its Python lacks torch / numpy / opencv / scipy
MAX_ID_LENGTH = 64
_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]+")


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines too) made one space: a protocol message is one line."""
    return " ".join(text.split())


def valid_id(rid: Any) -> bool:
    """Whether ``rid`` may identify a request: an integer (not a bool), or a non-empty string of
    letters, digits, ``-`` and ``_`` of at most :data:`MAX_ID_LENGTH` characters (it names a folder)."""
    if isinstance(rid, int) and not isinstance(rid, bool):
        return True
    return isinstance(rid, str) and len(rid) <= MAX_ID_LENGTH and _ID_PATTERN.fullmatch(rid) is not None


def track_options(raw: Any, *, device: str, bundle: str | None) -> dict[str, Any]:
    """A track request's ``options`` checked for type and completed with :data:`TRACK_OPTION_DEFAULTS`
    (the frame range's values are checked by engine.video when the range is built)."""
    opts = _known(raw, TRACK_OPTION_DEFAULTS)
    for name in ("start", "end"):
        value = opts[name]
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise InvalidOptionError(f"{name} must be a number of seconds, got {value!r}")
    if isinstance(opts["every"], bool) or not isinstance(opts["every"], int):
        raise InvalidOptionError(f"every must be a whole number, got {opts['every']!r}")
    if not isinstance(opts["fast"], bool):
        raise InvalidOptionError(f"fast must be true or false, got {opts['fast']!r}")
    if opts["mesh_cache"] is not None and not (isinstance(opts["mesh_cache"], str) and opts["mesh_cache"]):
        raise InvalidOptionError(f"mesh_cache must be a file path, got {opts['mesh_cache']!r}")
    axes = opts["mesh_cache_axes"]
    if axes is not None and not (
        isinstance(axes, list) and len(axes) == 3
        and all(isinstance(r, list) and len(r) == 3 and all(_is_number(v) for v in r) for r in axes)
    ):  # fmt: skip
        raise InvalidOptionError(f"mesh_cache_axes must be a 3 × 3 list of numbers, got {axes!r}")
    return {
        **{k: opts[k] for k in ("start", "end", "every", "fast", "mesh_cache", "mesh_cache_axes")},
        "texture_size": check_texture_size(opts["texture_size"]),
        "device": check_device_name(opts["device"] or device),
        "bundle": _bundle(opts["bundle"]) or bundle,
    }


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _known(raw: Any, defaults: dict[str, Any]) -> dict[str, Any]:
    """``raw`` (an options object or None) over ``defaults``; InvalidOptionError for anything else or an
    unknown option."""
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise InvalidOptionError(f"options must be an object, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(defaults))
    if unknown:
        raise InvalidOptionError(f"unknown options {unknown}; known: {sorted(defaults)}")
    return {**defaults, **{k: v for k, v in raw.items() if v is not None}}


def _bundle(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise InvalidOptionError(f"bundle must be a folder path, got {value!r}")
    return value


def request_options(raw: Any, *, device: str, bundle: str | None) -> dict[str, Any]:
    """A request's ``options`` object checked and completed with :data:`OPTION_DEFAULTS` (``device``
    and ``bundle``: the worker's own defaults); InvalidOptionError naming the bad option. ``boxes``
    come back as engine.types.BoundingBox (or None)."""
    opts = _known(raw, OPTION_DEFAULTS)
    if not isinstance(opts["all_faces"], bool):
        raise InvalidOptionError(f"all_faces must be true or false, got {opts['all_faces']!r}")
    return {
        "texture_size": check_texture_size(opts["texture_size"]),
        "all_faces": opts["all_faces"],
        "texture_mode": check_texture_mode(opts["texture_mode"]),
        "mouth": check_mouth_mode(opts["mouth"]),
        "topology": check_choice(opts["topology"], TOPOLOGIES, "topology"),
        "quad_cells": check_quad_cells(opts["quad_cells"]),
        "quality": check_quality(opts["quality"]),
        "device": check_device_name(opts["device"] or device),
        "bundle": _bundle(opts["bundle"]) or bundle,
        "boxes": None if opts["boxes"] is None else parse_boxes(opts["boxes"], what="boxes option"),
    }
