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

import contextlib
import json
from pathlib import Path

import numpy as np

from .atomic_write import staged_file, write_files_atomically
from .export import IMAGE_FRAME, POSE_CONVENTION, export_face, pose_fields, rounded
from .landmarks import LANDMARK_NAMES
from .point_cache import PC2Writer
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
        self.out_dir, self.stem, self.header, self.every = Path(out_dir), stem, header, every
        self.mesh_cache = mesh_cache
        self.frames: list[dict] = []
        self._stack = contextlib.ExitStack()
        self._cache: PC2Writer | None = None
        self._cache_info: dict | None = None
        self._last_shape: np.ndarray | None = None

    @property
    def mesh_cache_pending(self) -> bool:
        """Whether :meth:`add` still waits for the first face to start the mesh cache."""
        return self.mesh_cache and self._cache is None

    @property
    def json_path(self) -> Path:
        return self.out_dir / f"{self.stem}.track.json"

    def add(self, frame: TrackedFrame, first: FaceReconstruction | None = None) -> None:
        """Record one frame; ``first`` is the reconstruction of the first frame with a face (mesh cache)."""
        self.frames.append({
            "frame": frame.index, "time": round(frame.time, 6), "faces": [face_entry(f) for f in frame.faces],
        })  # fmt: skip
        if not self.mesh_cache:
            return
        if frame.faces:
            self._last_shape = frame.faces[0].vertices * OBJ_FRAME
        if self._cache is None and frame.faces:
            self._open_cache(frame, first)
        if self._cache is not None:
            self._cache.write(self._last_shape)

    def _open_cache(self, frame: TrackedFrame, first: FaceReconstruction | None) -> None:
        if first is None:
            raise ValueError("the mesh cache needs the first tracked face's reconstruction")
        export_face(first, self.out_dir, self.stem, formats=("obj",))
        stream = self._stack.enter_context(staged_file(self.out_dir / f"{self.stem}.pc2"))
        n = len(first.vertices)
        self._cache = PC2Writer(stream, n, start_frame=frame.index, sample_rate=self.every)
        self._cache_info = {
            "file": f"{self.stem}.pc2", "obj": f"{self.stem}.obj", "first_frame": frame.index,
            "sample_rate": self.every, "vertices": n,
        }  # fmt: skip

    def finish(self, *, interrupted: bool = False) -> list[Path]:
        """Write the track JSON (and close the point cache); returns the files written."""
        written = []
        if self._cache is not None:
            self._cache.close()
            self._stack.close()  # moves STEM.pc2 into place
            written += [self.out_dir / f"{self.stem}.{ext}" for ext in ("obj", "mtl", "pc2")]
            written.append(self.out_dir / f"{self.stem}_texture.png")
        content = {
            **self.header, "frame": IMAGE_FRAME, "convention": POSE_CONVENTION, "names": list(LANDMARK_NAMES),
            "interrupted": interrupted, "mesh_cache": self._cache_info, "frames": self.frames,
        }  # fmt: skip
        data = (json.dumps(content, separators=(",", ":")) + "\n").encode("utf-8")
        written += write_files_atomically({self.json_path: data})
        return written

    def abandon(self) -> None:
        """Drop a half-written point cache (an error, not an interruption): no file is left."""
        error = RuntimeError("track abandoned")
        self._stack.__exit__(type(error), error, None)
