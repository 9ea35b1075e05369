"""The engine process the Blender add-on talks to: JSON lines on stdin/stdout, results as .npz files.

Started as ``python -m engine.worker --workdir DIR`` (the add-on's ``client`` does this), it keeps one
:class:`~engine.api.Reconstructor` warm across requests, rebuilding it only when the requested bundle
or device changes. Logs and anything a library prints go to stderr; stdout carries the protocol only.
The process exits on ``shutdown`` or when stdin reaches end of file (the add-on or Blender went away),
and at once with code 3 (a "No module named …" line on stderr) when the interpreter lacks torch & co.

The protocol (messages, options, error kinds, the arrays of each face's .npz) is spelled in
engine.protocol, which the add-on imports too. The texture is also written as a PNG (row 0 = v 1),
encoded here so that Blender can pack the file as is instead of encoding it on its UI thread.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import queue
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any, TextIO

from . import protocol as P
from .device import DEFAULT_DEVICE, limit_thread_spinning
from .errors import (
    BundleFormatError,
    ImageWarning,
    InvalidImageError,
    InvalidOptionError,
    NoWeightsError,
    RequestError,
    WeightsMismatchError,
)
from .protocol import one_line

log = logging.getLogger("engine.worker")

_EOF = object()  # reader thread → main loop: stdin closed


class Worker:
    """Serves requests one at a time; ``cancelled`` is filled by the stdin reader thread."""

    def __init__(self, workdir: Path, out: TextIO, *, device: str = DEFAULT_DEVICE, bundle: str | None = None) -> None:
        self.workdir = workdir
        self.out = out
        self.defaults = {"device": device, "bundle": bundle}
        self.cancelled: set[Any] = set()
        self._lock = threading.Lock()
        self._rec = None
        self._rec_key: tuple[str, str] | None = None

    # -- messages ---------------------------------------------------------------------------------
    def send(self, message: dict) -> None:
        with self._lock:
            self.out.write(json.dumps(message, separators=(",", ":")) + "\n")
            self.out.flush()

    def progress(self, rid: Any, value: float, stage: str) -> None:
        if rid in self.cancelled:
            raise RequestError(P.CANCELLED, "cancelled")
        self.send({"id": rid, "progress": round(value, 3), "stage": stage})

    def handle(self, msg: dict) -> bool:
        """Serve one request; False when the worker should exit."""
        rid, cmd = msg.get("id"), msg.get("cmd")
        if not P.valid_id(rid):  # an id names the request's result folder
            self.send({"id": None, "ok": False, "kind": P.BAD_INPUT, "error": f"bad request id {rid!r}"})
            return True
        try:
            if rid in self.cancelled:
                raise RequestError(P.CANCELLED, "cancelled")
            if cmd == P.PING:
                self.send({"id": rid, "ok": True, **_environment()})
            elif cmd == P.LOAD:
                rec = self.reconstructor(rid, self.options(msg))
                self.send({"id": rid, "ok": True, "bundle_id": rec.bundle.bundle_id, "device": str(rec.device)})
            elif cmd == P.RECONSTRUCT:
                self.send(self.reconstruct(rid, msg))
            elif cmd == P.TRACK:
                from .worker_track import track_video

                self.send(track_video(self, rid, msg))
            elif cmd == P.SHUTDOWN:
                self.send({"id": rid, "ok": True})
                return False
            else:
                raise RequestError(P.BAD_INPUT, f"unknown command {cmd!r}")
        except RequestError as exc:
            self.send({"id": rid, "ok": False, "kind": exc.kind, "error": str(exc)})
        except Exception as exc:  # noqa: BLE001 - the worker must survive and report any failure
            log.exception("request %r failed", rid)
            self.send({"id": rid, "ok": False, "kind": P.INTERNAL, "error": one_line(f"{type(exc).__name__}: {exc}")})
        finally:
            self.cancelled.discard(rid)
        return True

    def options(self, msg: dict, *, track: bool = False) -> dict:
        """The request's options checked (engine.protocol.request_options, or track_options for a
        track); bad ones are bad input."""
        try:
            check = P.track_options if track else P.request_options
            return check(msg.get("options"), **self.defaults)
        except InvalidOptionError as exc:
            raise RequestError(P.BAD_INPUT, one_line(str(exc))) from exc

    # -- work -------------------------------------------------------------------------------------
    def reconstructor(self, rid: Any, options: dict):
        """The warm Reconstructor for (bundle, device), loading it when either changed."""
        from .api import Reconstructor
        from .bundle import default_bundle_path
        from .options import ReconstructOptions

        bundle = Path(options["bundle"]) if options["bundle"] else default_bundle_path()
        key = (str(bundle.resolve()), options["device"])
        if self._rec is None or self._rec_key != key:
            self.progress(rid, 0.05, "loading model")
            self._rec, self._rec_key = None, None
            try:
                self._rec = Reconstructor.from_bundle(bundle, ReconstructOptions(device=options["device"]))
            except (NoWeightsError, WeightsMismatchError, BundleFormatError) as exc:
                raise RequestError(P.NO_MODEL, one_line(str(exc))) from exc
            except InvalidOptionError as exc:  # an unavailable device
                raise RequestError(P.BAD_INPUT, one_line(str(exc))) from exc
            self._rec_key = key
            log.info("loaded %s on %s", self._rec.bundle.bundle_id, self._rec.device)
        return self._rec

    def reconstruct(self, rid: Any, msg: dict) -> dict:
        from .image_io import load_image
        from .landmarks import LANDMARK_NAMES

        photo = msg.get("photo")
        if not isinstance(photo, str) or not photo:
            raise RequestError(P.BAD_INPUT, "reconstruct needs a 'photo' path")
        options = self.options(msg)
        rec = self.reconstructor(rid, options)
        self.progress(rid, 0.2, "reconstructing")
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", ImageWarning)
                rgb = load_image(photo)
            faces = rec(
                rgb,
                boxes=options["boxes"],
                all_faces=options["all_faces"],
                texture_size=options["texture_size"],
                texture_mode=options["texture_mode"],
                mouth=options["mouth"],
                quality=options["quality"],
            )
        except (InvalidImageError, InvalidOptionError) as exc:  # an unreadable photo, a box off the photo
            raise RequestError(P.BAD_INPUT, one_line(str(exc))) from exc
        if not faces:
            raise RequestError(P.NO_FACE, f"no face found in {Path(photo).name}")
        self.progress(rid, 0.9, "writing results")
        folder = self.workdir / str(rid)
        folder.mkdir(parents=True, exist_ok=True)
        background = _upright_copy(photo, folder)
        out = [
            self.write_face(folder, k, face, rgb, options, background=background)
            for k, face in enumerate(faces, start=1)
        ]
        timings = {stage: round(float(ms), 2) for stage, ms in rec.last_times.as_dict().items()}
        return {
            "id": rid, "ok": True, "faces": out, "bundle_id": rec.bundle_for(options["quality"]).bundle_id,
            "landmark_names": list(LANDMARK_NAMES), "timings_ms": timings,
            "warnings": [one_line(str(w.message)) for w in caught],
        }  # fmt: skip

    def write_face(self, folder: Path, k: int, face, rgb, options: dict, *, background: str) -> dict:
        """Write face ``k`` (its .npz with the mesh to build and the layout arrays, and its texture PNG)
        into ``folder``; its entry of the reply (engine.protocol's ``face``)."""
        import numpy as np

        from .export import write_npz, write_texture_png
        from .mouth import mouth_faces
        from .quad_mesh import face_mesh

        rec = self._rec
        mesh = face_mesh(face, rec.layout, options["topology"], options["quad_cells"], rgb)
        layout = {
            "layout_keypoints_uv": rec.layout.keypoints_uv, "layout_size": np.array(rec.layout.size),
            "mouth_faces": mouth_faces(mesh.uv, mesh.faces, rec.layout),
        }  # fmt: skip
        path = write_npz(folder / f"face_{k}.npz", face, mesh, layout)
        alpha = face.texture_mask if options["texture_mode"] == "photo" else None
        png = write_texture_png(folder / f"face_{k}_texture.png", face.texture, alpha)
        return {
            "npz": str(path), "texture_png": str(png),
            "yaw": face.pose.yaw, "pitch": face.pose.pitch, "roll": face.pose.roll,
            "box": [*face.box.as_list(), face.box.score],
            "bundle_id": rec.bundle_for(options["quality"]).bundle_id,
            "image_size": list(face.image_size), "n_vertices": int(len(mesh.vertices)), "background": background,
        }  # fmt: skip


def _upright_copy(photo: str, folder: Path) -> str:
    """The photo as the face's image frame sees it: the file itself, or an upright PNG copy when the
    file carries an EXIF rotation (Blender shows images as stored, the engine turns them upright)."""
    from .image_header import read_header
    from .image_io import load_image

    try:
        with open(photo, "rb") as f:
            orientation = read_header(f.read()).orientation
    except (OSError, ValueError):
        return photo
    if orientation in (0, 1):
        return photo
    import cv2

    path = folder / "photo_upright.png"
    cv2.imwrite(str(path), cv2.cvtColor(load_image(photo), cv2.COLOR_RGB2BGR))
    return str(path)


def _environment() -> dict:
    import torch

    return {"pid": os.getpid(), "torch": torch.__version__, "cuda": bool(torch.cuda.is_available())}


def _read_stdin(stream: TextIO, inbox: queue.Queue, worker: Worker) -> None:
    """Reader thread: parse lines; cancels take effect at once, everything else queues in order."""
    for line in stream:
        line = line.strip()
        if not line:
            continue
        try:
            msg = json.loads(line)
            if not isinstance(msg, dict):
                raise ValueError("not an object")
        except ValueError as exc:
            worker.send({"id": None, "ok": False, "kind": P.BAD_INPUT, "error": f"unreadable request line: {exc}"})
            continue
        if msg.get("cmd") != P.CANCEL:
            inbox.put(msg)
        elif not (P.valid_id(msg.get("id")) and P.valid_id(msg.get("target"))):
            worker.send({"id": None, "ok": False, "kind": P.BAD_INPUT, "error": "a cancel needs a valid id and target"})
        else:
            worker.cancelled.add(msg.get("target"))
            worker.send({"id": msg.get("id"), "ok": True})
    inbox.put(_EOF)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.worker", description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, required=True, help="folder for result .npz files")
    parser.add_argument("--device", default=DEFAULT_DEVICE, help="default device when a request names none")
    parser.add_argument("--bundle", default=None, help="default model bundle when a request names none")
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="[engine.worker] %(message)s")
    limit_thread_spinning()  # before torch loads: Blender is busy beside the worker
    try:
        from . import api  # noqa: F401 - fail fast, before any request, when torch & co. are missing
    except ImportError as exc:
        log.error("cannot start: %s (this Python lacks the engine's packages)", exc)
        return P.EXIT_MISSING_PACKAGES
    out, sys.stdout = sys.stdout, sys.stderr  # stray prints must never corrupt the protocol
    try:
        args.workdir.mkdir(parents=True, exist_ok=True)
        worker = Worker(args.workdir, out, device=args.device, bundle=args.bundle)
        inbox: queue.Queue = queue.Queue()
        threading.Thread(target=_read_stdin, args=(sys.stdin, inbox, worker), daemon=True).start()
        log.info("ready (pid %d, workdir %s)", os.getpid(), args.workdir)
        while (msg := inbox.get()) is not _EOF:
            t0 = time.perf_counter()
            if not worker.handle(msg):
                break
            log.info("%s %r: %.0f ms", msg.get("cmd"), msg.get("id"), (time.perf_counter() - t0) * 1e3)
    except OSError as exc:
        log.error("cannot use workdir %s: %s", args.workdir, exc)
        return 1
    finally:
        sys.stdout = out
    return 0


if __name__ == "__main__":
    sys.exit(main())
