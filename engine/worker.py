"""The engine process the Blender add-on talks to: JSON lines on stdin/stdout, results as .npz files.

Started as ``python -m engine.worker --workdir DIR`` (the add-on's ``client`` does this), it keeps one
:class:`~engine.api.Reconstructor` warm across requests, rebuilding it only when the requested bundle
or device changes. Logs and anything a library prints go to stderr; stdout carries the protocol only.
The process exits on ``shutdown`` or when stdin reaches end of file (the add-on or Blender went away),
and at once with code 3 (a "No module named …" line on stderr) when the interpreter lacks torch & co.

Protocol (UTF-8, one JSON object per line, every message carries the request's ``id``)::

    request   {"id": 7, "cmd": "ping"}
              {"id": 8, "cmd": "load", "options": {...}}          load the model now (pre-warm)
              {"id": 9, "cmd": "reconstruct", "photo": "/abs/photo.jpg", "options": {...}}
              {"id": 10, "cmd": "cancel", "target": 9}           abandon request 9 at its next stage
              {"id": 11, "cmd": "shutdown"}
    options   texture_size (int, default 1024), all_faces (bool, default false: the largest face),
              symmetric_fill (bool), device ("cpu" | "cuda" | "auto"), bundle (folder or null = the
              shipped model), boxes (optional [[left, top, right, bottom], ...] photo px: skip detection)
    progress  {"id": 9, "progress": 0.2, "stage": "reconstructing"}           0 ≤ progress ≤ 1
    reply     {"id": 9, "ok": true, "faces": [face, ...], "bundle_id": "...", "landmark_names": [68 names],
               "timings_ms": {stage: ms}}
              {"id": 7, "ok": true, "pid": 123, "torch": "2.13.0", "cuda": false}          (ping)
              {"id": 8, "ok": true, "bundle_id": "...", "device": "cpu"}                     (load)
              {"id": 10, "ok": true}                                              (cancel, shutdown)
    error     {"id": 9, "ok": false, "kind": KIND, "error": "one line for the artist"}
              (a line that is not a JSON object gets this with "id": null, kind "bad_input")

    face      {"npz": "/DIR/9/face_1.npz", "texture_png": "/DIR/9/face_1_texture.png",
               "yaw": .., "pitch": .., "roll": .. (degrees),
               "box": [left, top, right, bottom, score], "bundle_id": "...", "image_size": [h, w],
               "n_vertices": N}
    KIND      "no_face" (the photo holds no detectable face), "bad_input" (photo unreadable, bad
              option), "no_model" (bundle missing or failing its checks), "cancelled", "internal"

Each face's .npz (written by :func:`engine.export.write_npz`) holds every array of the
:class:`~engine.types.FaceReconstruction` — vertices, triangles, uv, frontal_vertices, landmarks_3d,
landmark_visibility, texture (uint8), … — plus pose_rotation, pose_translation, pose_scale,
pose_yaw_pitch_roll, box and image_size. The texture is also written as a PNG (row 0 = v 1), encoded
here so that Blender can pack the file as is instead of encoding it on its UI thread. Files of
request ``id`` live in ``DIR/<id>/``; the client deletes them once it has read them.
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
from pathlib import Path
from typing import Any, TextIO

from .errors import BundleFormatError, InvalidImageError, NoWeightsError, WeightsMismatchError

log = logging.getLogger("engine.worker")

TEXTURE_SIZES = (256, 512, 1024, 2048, 4096, 8192)  # texture sides the worker accepts, px
DEFAULT_TEXTURE_SIZE = 1024
DEVICES = ("cpu", "cuda", "auto", "mps")
EXIT_MISSING_PACKAGES = 3  # the interpreter lacks torch / numpy / opencv / scipy
_EOF = object()  # reader thread → main loop: stdin closed


class RequestError(Exception):
    """A request failed in a way the artist should read: ``kind`` is one of the protocol's KINDs."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class Worker:
    """Serves requests one at a time; ``cancelled`` is filled by the stdin reader thread."""

    def __init__(self, workdir: Path, out: TextIO, *, device: str = "cpu", bundle: str | None = None) -> None:
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
            raise RequestError("cancelled", "cancelled")
        self.send({"id": rid, "progress": round(value, 3), "stage": stage})

    def handle(self, msg: dict) -> bool:
        """Serve one request; False when the worker should exit."""
        rid, cmd = msg.get("id"), msg.get("cmd")
        try:
            if rid in self.cancelled:
                raise RequestError("cancelled", "cancelled")
            if cmd == "ping":
                self.send({"id": rid, "ok": True, **_environment()})
            elif cmd == "load":
                rec = self.reconstructor(rid, _options(msg.get("options"), self.defaults))
                self.send({"id": rid, "ok": True, "bundle_id": rec.bundle.bundle_id, "device": str(rec.device)})
            elif cmd == "reconstruct":
                self.send(self.reconstruct(rid, msg))
            elif cmd == "shutdown":
                self.send({"id": rid, "ok": True})
                return False
            else:
                raise RequestError("bad_input", f"unknown command {cmd!r}")
        except RequestError as exc:
            self.send({"id": rid, "ok": False, "kind": exc.kind, "error": str(exc)})
        except Exception as exc:  # noqa: BLE001 - the worker must survive and report any failure
            log.exception("request %r failed", rid)
            self.send({"id": rid, "ok": False, "kind": "internal", "error": _one_line(f"{type(exc).__name__}: {exc}")})
        finally:
            self.cancelled.discard(rid)
        return True

    # -- work -------------------------------------------------------------------------------------
    def reconstructor(self, rid: Any, options: dict):
        """The warm Reconstructor for (bundle, device), loading it when either changed."""
        from .api import Reconstructor
        from .bundle import default_bundle_path

        bundle = Path(options["bundle"]) if options["bundle"] else default_bundle_path()
        key = (str(bundle.resolve()), options["device"])
        if self._rec is None or self._rec_key != key:
            self.progress(rid, 0.05, "loading model")
            self._rec, self._rec_key = None, None
            try:
                self._rec = Reconstructor.from_bundle(bundle, device=options["device"])
            except (NoWeightsError, WeightsMismatchError, BundleFormatError) as exc:
                raise RequestError("no_model", _one_line(str(exc))) from exc
            except ValueError as exc:  # an unavailable device
                raise RequestError("bad_input", _one_line(str(exc))) from exc
            self._rec_key = key
            log.info("loaded %s on %s", self._rec.bundle.bundle_id, self._rec.device)
        return self._rec

    def reconstruct(self, rid: Any, msg: dict) -> dict:
        from .export import write_npz, write_texture_png
        from .landmarks import LANDMARK_NAMES
        from .types import BoundingBox

        photo = msg.get("photo")
        if not isinstance(photo, str) or not photo:
            raise RequestError("bad_input", "reconstruct needs a 'photo' path")
        options = _options(msg.get("options"), self.defaults)
        rec = self.reconstructor(rid, options)
        self.progress(rid, 0.2, "reconstructing")
        try:
            boxes = None if options["boxes"] is None else [BoundingBox(*map(float, b)) for b in options["boxes"]]
        except (TypeError, ValueError) as exc:
            raise RequestError("bad_input", f"bad boxes option: {exc}") from exc
        try:
            faces = rec(
                photo,
                boxes=boxes,
                all_faces=options["all_faces"],
                texture_size=options["texture_size"],
                symmetric_fill=options["symmetric_fill"],
            )
        except InvalidImageError as exc:
            raise RequestError("bad_input", _one_line(str(exc))) from exc
        if not faces:
            raise RequestError("no_face", f"no face found in {Path(photo).name}")
        self.progress(rid, 0.9, "writing results")
        folder = self.workdir / str(rid)
        folder.mkdir(parents=True, exist_ok=True)
        bundle_id = rec.bundle.bundle_id
        background = _upright_copy(photo, folder)
        out = []
        for k, face in enumerate(faces, start=1):
            path = write_npz(folder / f"face_{k}.npz", face)
            png = write_texture_png(folder / f"face_{k}_texture.png", face.texture)
            out.append({
                "npz": str(path), "texture_png": str(png),
                "yaw": face.pose.yaw, "pitch": face.pose.pitch, "roll": face.pose.roll,
                "box": [*face.box.as_list(), face.box.score], "bundle_id": bundle_id,
                "image_size": list(face.image_size), "n_vertices": int(len(face.vertices)),
                "background": background,
            })  # fmt: skip
        return {
            "id": rid, "ok": True, "faces": out, "bundle_id": bundle_id, "landmark_names": list(LANDMARK_NAMES),
            "timings_ms": _stage_ms(rec.last_times),
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


def _stage_ms(times) -> dict[str, float]:
    """:class:`engine.api.StageTimes` → {stage: ms}."""
    return {name: round(float(getattr(times, name)), 2) for name in times.__dataclass_fields__}


def _options(raw: Any, defaults: dict) -> dict:
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise RequestError("bad_input", f"options must be an object, got {type(raw).__name__}")
    size = raw.get("texture_size", DEFAULT_TEXTURE_SIZE)
    if size not in TEXTURE_SIZES:
        raise RequestError("bad_input", f"texture_size must be one of {TEXTURE_SIZES}, got {size!r}")
    device = raw.get("device") or defaults["device"]
    if device not in DEVICES and not str(device).startswith("cuda:"):
        raise RequestError("bad_input", f"device must be one of {DEVICES}, got {device!r}")
    boxes = raw.get("boxes")
    if boxes is not None and not isinstance(boxes, list):
        raise RequestError("bad_input", "boxes must be a list of [left, top, right, bottom]")
    return {
        "texture_size": int(size),
        "all_faces": bool(raw.get("all_faces", False)),
        "symmetric_fill": bool(raw.get("symmetric_fill", False)),
        "device": device,
        "bundle": raw.get("bundle") or defaults["bundle"],
        "boxes": boxes,
    }


def _environment() -> dict:
    import torch

    return {"pid": os.getpid(), "torch": torch.__version__, "cuda": bool(torch.cuda.is_available())}


def _one_line(text: str) -> str:
    return " ".join(text.split())


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
            worker.send({"id": None, "ok": False, "kind": "bad_input", "error": f"unreadable request line: {exc}"})
            continue
        if msg.get("cmd") == "cancel":
            worker.cancelled.add(msg.get("target"))
            worker.send({"id": msg.get("id"), "ok": True})
        else:
            inbox.put(msg)
    inbox.put(_EOF)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.worker", description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, required=True, help="folder for result .npz files")
    parser.add_argument("--device", default="cpu", help="default device when a request names none")
    parser.add_argument("--bundle", default=None, help="default model bundle when a request names none")
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="[engine.worker] %(message)s")
    try:
        from . import api  # noqa: F401 - fail fast, before any request, when torch & co. are missing
    except ImportError as exc:
        log.error("cannot start: %s (this Python lacks the engine's packages)", exc)
        return EXIT_MISSING_PACKAGES
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
