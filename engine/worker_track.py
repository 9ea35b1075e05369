"""The worker's ``track`` request: a video → the first tracked face (as ``reconstruct`` writes a face),
every frame's pose and landmarks (an .npz, engine.protocol.TRACK_NPZ_ARRAYS) and, when asked, the
per-frame mesh as a PC2 point cache in the add-on's coordinates.

The point cache holds, from the first frame with a face on, one sample per frame read: the frontal
mesh (pose removed) less the first face's head pivot, mapped by ``mesh_cache_axes`` — the mesh the
add-on builds, moved by the face's expression; a gap holds the last shape. Progress goes out once
per frame, and a cancel stops the run at the next frame, leaving no cache file behind.
"""

from __future__ import annotations

import contextlib
import io
import time
from pathlib import Path
from typing import Any

import numpy as np

from . import protocol as P
from .atomic_write import write_files_atomically
from .errors import InvalidOptionError, InvalidVideoError, RequestError
from .protocol import one_line

TRACK_PROGRESS = (0.1, 0.95)  # the share of the progress bar the frames fill (model load before, files after)


def track_video(worker, rid: Any, msg: dict) -> dict:
    from .landmarks import LANDMARK_NAMES
    from .options import DEFAULT_QUAD_CELLS
    from .point_cache import TrackCache
    from .tracker import FaceTracker
    from .video import FrameRange, open_video

    video_path = msg.get("video")
    if not isinstance(video_path, str) or not video_path:
        raise RequestError(P.BAD_INPUT, "track needs a 'video' path")
    options = worker.options(msg, track=True)
    try:
        frame_range = FrameRange(options["start"], options["end"], options["every"])
        video = open_video(video_path)
    except (InvalidOptionError, InvalidVideoError) as exc:
        raise RequestError(P.BAD_INPUT, one_line(str(exc))) from exc
    rec = worker.reconstructor(rid, options)
    tracker = FaceTracker(rec, fast=options["fast"])
    axes = np.eye(3) if options["mesh_cache_axes"] is None else np.asarray(options["mesh_cache_axes"], np.float64)
    folder = worker.workdir / str(rid)
    folder.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    first_entry, pivot = None, None
    face_options = {
        "topology": "triangles", "quad_cells": DEFAULT_QUAD_CELLS, "texture_mode": "complete",
        "quality": tracker.quality,
    }  # fmt: skip
    cache_path = options["mesh_cache"]
    with video, TrackCache(cache_path, options["every"]) if cache_path else contextlib.nullcontext() as cache:
        total = video.count(frame_range)
        t0 = time.perf_counter()
        for tracked, frame in tracker.track_frames(video.frames(frame_range)):
            rows.append(_row(tracked))
            face = tracked.faces[0] if tracked.faces else None
            if face is not None and first_entry is None:
                first = tracker.reconstruction(frame.rgb, face, texture_size=options["texture_size"])
                first_entry = worker.write_face(folder, 1, first, frame.rgb, face_options, background=video_path)
                pivot = first.head_pivot.astype(np.float64)
            if cache is not None:
                cache.add(tracked.index, None if face is None else (face.frontal_vertices - pivot) @ axes.T)
            n = len(rows)
            done = n / total if total else 0.5
            rate = n / max(time.perf_counter() - t0, 1e-9)
            worker.progress(rid, TRACK_PROGRESS[0] + (TRACK_PROGRESS[1] - TRACK_PROGRESS[0]) * min(done, 1.0),
                            f"frame {n}{f'/{total}' if total else ''}, {rate:.1f} frames/s")  # fmt: skip
        if first_entry is None:
            raise RequestError(P.NO_FACE, f"no face found in any frame of {Path(video_path).name}")
        fps, frame_size = video.fps, list(video.frame_size)
    track_npz = _write_track(folder / "track.npz", rows)
    return {
        "id": rid, "ok": True, "faces": [first_entry], "track_npz": str(track_npz), "fps": fps,
        "frame_size": frame_size, "every": options["every"], "frames": len(rows),
        "found": int(sum(r["found"] for r in rows)), "mesh_cache": cache_path if cache is not None else None,
        "mesh_cache_first_frame": None if cache is None else cache.first_frame, "landmark_names": list(LANDMARK_NAMES),
        "bundle_id": tracker.bundle.bundle_id,
    }  # fmt: skip


def _row(tracked) -> dict:
    """One frame's entries of engine.protocol.TRACK_NPZ_ARRAYS (zeros in a gap)."""
    if not tracked.faces:
        return {
            "frame": tracked.index, "time": tracked.time, "found": False, "pose_rotation": np.eye(3),
            "pose_translation": np.zeros(3), "pose_scale": 0.0, "pose_yaw_pitch_roll": np.zeros(3),
            "landmarks_3d": np.zeros((68, 3), np.float32), "landmark_visibility": np.zeros(68, bool),
        }  # fmt: skip
    face = tracked.faces[0]
    p = face.pose
    return {
        "frame": tracked.index, "time": tracked.time, "found": True, "pose_rotation": p.rotation,
        "pose_translation": p.translation, "pose_scale": p.scale, "pose_yaw_pitch_roll": [p.yaw, p.pitch, p.roll],
        "landmarks_3d": face.landmarks_3d, "landmark_visibility": face.landmark_visibility,
    }  # fmt: skip


def _write_track(path: Path, rows: list[dict]) -> Path:
    buf = io.BytesIO()
    np.savez(buf, **{name: np.array([r[name] for r in rows]) for name in P.TRACK_NPZ_ARRAYS})
    return write_files_atomically({path: buf.getvalue()})[0]
