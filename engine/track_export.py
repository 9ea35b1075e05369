"""A video's track on disk: ``STEM.track.json`` and, with a mesh cache, ``STEM.pc2`` + the first good frame's OBJ.

``STEM.track.json``::

    {"video": name, "fps": f, "frame_size": [w, h], "every": n, "mode": "default" | "fast",
     "bundle_id": ..., "frame": IMAGE_FRAME, "convention": POSE_CONVENTION, "names": [68 names],
     "interrupted": bool, "mesh_cache": null | {"file", "obj", "first_frame", "sample_rate", "vertices"},
     "frames": [{"frame": i, "time": s, "faces": [{"pose": {yaw, pitch, roll, rotation, translation,
                 scale}, "landmarks_3d": 68 × [x, y, z], "visibility": 68 × bool, "box": [l, t, r, b],
                 "locked": bool}]}]}

with every frame read (``faces`` empty where the face was not found: a gap), in the image frame and
pose convention of ``reconstruct``'s JSON files (engine.export). The point cache holds one sample per
frame read from the first frame with a face on, in the OBJ's frame (image px, y negated), vertex
for vertex the OBJ's; a gap holds the last shape found (the JSON says which frames are gaps).
Every file is whole or absent (engine.atomic_write); :meth:`TrackWriter.finish` also writes the
frames of an interrupted run, marked ``"interrupted": true``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .atomic_write import write_files_atomically
from .export import IMAGE_FRAME, POSE_CONVENTION, export_face, pose_fields, rounded
from .landmarks import LANDMARK_NAMES
from .point_cache import TrackCache
from .tracker import TrackedFace, TrackedFrame
from .types import FaceReconstruction

OBJ_FRAME = np.array([1.0, -1.0, 1.0])  # image frame → the OBJ's (y negated, engine.export)


def face_entry(face: TrackedFace) -> dict:
    """One tracked face as the track JSON holds it."""
    return {
        "pose": pose_fields(face.pose),
        "landmarks_3d": rounded(face.landmarks_3d),
        "visibility": [bool(v) for v in face.landmark_visibility],
        "box": rounded(face.box.as_list()),
        "locked": face.locked,
    }


class TrackWriter:
    """Collects a track's frames and writes its files into ``out_dir`` as ``STEM.*``. With
    ``mesh_cache``, :meth:`add` needs the first face's reconstruction (``first``) to write the OBJ."""

    def __init__(self, out_dir: Path, stem: str, *, header: dict, mesh_cache: bool, every: int) -> None:
        self.out_dir, self.stem, self.header = Path(out_dir), stem, header
        self.frames: list[dict] = []
        self.cache = TrackCache(self.out_dir / f"{stem}.pc2", every) if mesh_cache else None

    @property
    def mesh_cache_pending(self) -> bool:
        """Whether :meth:`add` still waits for the first face to start the mesh cache."""
        return self.cache is not None and not self.cache.started

    @property
    def json_path(self) -> Path:
        return self.out_dir / f"{self.stem}.track.json"

    def add(self, frame: TrackedFrame, first: FaceReconstruction | None = None) -> None:
        """Record one frame; ``first`` is the reconstruction of the first frame with a face (mesh cache)."""
        self.frames.append({
            "frame": frame.index, "time": round(frame.time, 6), "faces": [face_entry(f) for f in frame.faces],
        })  # fmt: skip
        if self.cache is None:
            return
        if frame.faces and not self.cache.started:
            if first is None:
                raise ValueError("the mesh cache needs the first tracked face's reconstruction")
            export_face(first, self.out_dir, self.stem, formats=("obj",))
        self.cache.add(frame.index, frame.faces[0].vertices * OBJ_FRAME if frame.faces else None)

    def finish(self, *, interrupted: bool = False) -> list[Path]:
        """Write the track JSON (and close the point cache); returns the files written."""
        written, cache_info = [], None
        if self.cache is not None and self.cache.close():
            written += [self.out_dir / f"{self.stem}.{ext}" for ext in ("obj", "mtl", "pc2")]
            written.append(self.out_dir / f"{self.stem}_texture.png")
            cache_info = {
                "file": self.cache.path.name, "obj": f"{self.stem}.obj", "first_frame": self.cache.first_frame,
                "sample_rate": self.cache.every, "vertices": self.cache.vertices,
            }  # fmt: skip
        content = {
            **self.header, "frame": IMAGE_FRAME, "convention": POSE_CONVENTION, "names": list(LANDMARK_NAMES),
            "interrupted": interrupted, "mesh_cache": cache_info, "frames": self.frames,
        }  # fmt: skip
        data = (json.dumps(content, separators=(",", ":")) + "\n").encode("utf-8")
        written += write_files_atomically({self.json_path: data})
        return written

    def abandon(self) -> None:
        """Drop a half-written point cache (an error, not an interruption): no file is left."""
        if self.cache is not None:
            self.cache.abandon()
