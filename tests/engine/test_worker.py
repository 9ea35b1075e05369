"""The engine worker (engine/worker.py): its JSON-lines protocol served in-process, and one real
process for the stdout/stderr split and exit on end of input. Uses the mean-face bundle."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine import protocol as P
from engine.image_io import sample_photo_path
from engine.landmarks import LANDMARK_NAMES
from engine.worker import Worker

REPO = Path(__file__).resolve().parents[2]
NPZ_ARRAYS = {
    "vertices", "triangles", "uv", "frontal_vertices", "landmarks_3d", "landmark_visibility", "texture",
    "pose_rotation", "pose_translation", "pose_scale", "pose_yaw_pitch_roll", "image_size", "box", "head_pivot",
    "layout_keypoints_uv", "layout_size", "mouth_faces",
}  # fmt: skip
assert set(P.NPZ_ARRAYS) <= NPZ_ARRAYS  # what the add-on reads is what this test checks the worker writes
TEXTURE = 256  # px: the smallest texture the worker accepts keeps the test fast


@pytest.fixture(scope="module")
def served(mean_face_bundle, tmp_path_factory):
    """A worker whose default bundle is the mean face, and a function returning what it wrote."""
    out = io.StringIO()
    worker = Worker(tmp_path_factory.mktemp("workdir"), out, bundle=str(mean_face_bundle))

    def messages() -> list[dict]:
        lines = out.getvalue().splitlines()
        out.seek(0)
        out.truncate()
        return [json.loads(line) for line in lines]

    return worker, messages


def _reconstruct(worker, rid, photo, **options):
    return worker.handle({"id": rid, "cmd": "reconstruct", "photo": str(photo), "options": options})


def test_ping_reports_the_environment(served):
    worker, messages = served
    assert worker.handle({"id": "p", "cmd": "ping"}) is True
    (reply,) = messages()
    assert reply["id"] == "p" and reply["ok"] is True and reply["torch"] and isinstance(reply["cuda"], bool)


def test_reconstruct_writes_one_npz_per_face_and_reports_progress(served, mean_face_bundle):
    worker, messages = served
    _reconstruct(worker, 1, sample_photo_path(), texture_size=TEXTURE)
    *progress, reply = messages()
    values = [m["progress"] for m in progress]
    assert values == sorted(values) and all(0 <= v <= 1 for v in values) and all(m["stage"] for m in progress)
    assert reply["ok"] is True and reply["landmark_names"] == list(LANDMARK_NAMES)
    (face,) = reply["faces"]
    npz = Path(face["npz"])
    assert npz.parent == worker.workdir / "1"
    with np.load(npz) as z:
        assert NPZ_ARRAYS <= set(z.files)
        assert z["texture"].shape == (TEXTURE, TEXTURE, 3) and z["texture"].dtype == np.uint8
        assert face["yaw"] == pytest.approx(float(z["pose_yaw_pitch_roll"][0]))
        assert face["n_vertices"] == len(z["vertices"]) and face["image_size"] == list(z["image_size"])
        png = cv2.imread(face["texture_png"], cv2.IMREAD_COLOR)[..., ::-1]
        assert np.array_equal(png, z["texture"])  # the same texture, row 0 on top
    assert face["bundle_id"].startswith("mean-face-test@") and reply["bundle_id"] == face["bundle_id"]
    assert set(reply["timings_ms"]) >= {"detect", "network", "texture"}


def test_asset_options_reach_the_npz_and_the_png(served):
    """Quads add the mesh_* arrays the add-on builds from; photo mode writes the mask as the PNG's alpha."""
    worker, messages = served
    options = {"topology": "quads", "quad_cells": 48, "mouth": "open", "texture_mode": "photo"}
    _reconstruct(worker, 5, sample_photo_path(), texture_size=TEXTURE, **options)
    (face,) = messages()[-1]["faces"]
    with np.load(face["npz"]) as z:
        assert set(P.MESH_NPZ_ARRAYS) <= set(z.files) and z["mesh_faces"].shape[1] == 4
        assert face["n_vertices"] == len(z["mesh_vertices"]) and str(z["mouth"]) == "open"
        assert z["head_pivot"].shape == (3,)
    png = cv2.imread(face["texture_png"], cv2.IMREAD_UNCHANGED)
    assert png.shape == (TEXTURE, TEXTURE, 4) and set(np.unique(png[..., 3])) == {0, 255}


def test_the_model_stays_warm_and_reloads_for_another_bundle(served, mean_face_bundle, tmp_path):
    worker, messages = served
    worker.handle({"id": 2, "cmd": "load"})
    messages()
    rec = worker._rec
    worker.handle({"id": 3, "cmd": "load"})
    assert worker._rec is rec and "loading model" not in [m.get("stage") for m in messages()]
    other = shutil.copytree(mean_face_bundle, tmp_path / "copy")
    worker.handle({"id": 4, "cmd": "load", "options": {"bundle": str(other)}})
    assert worker._rec is not rec and "loading model" in [m.get("stage") for m in messages()]


@pytest.mark.parametrize(
    ("request_", "kind", "text"),
    [
        ({"cmd": "reconstruct", "photo": "/no/such/photo.jpg"}, "bad_input", "not found"),
        ({"cmd": "reconstruct"}, "bad_input", "photo"),
        ({"cmd": "reconstruct", "photo": "x.jpg", "options": {"texture_size": 8192}}, "bad_input", "texture size"),
        ({"cmd": "reconstruct", "photo": "x.jpg", "options": {"texture_size": "1024"}}, "bad_input", "texture size"),
        ({"cmd": "reconstruct", "photo": "x.jpg", "options": {"boxes": [[0, 0, 1e999, 9]]}}, "bad_input", "finite"),
        ({"cmd": "reconstruct", "photo": "x.jpg", "options": {"all_faces": "yes"}}, "bad_input", "all_faces"),
        ({"cmd": "reconstruct", "photo": "x.jpg", "options": {"texture": 512}}, "bad_input", "unknown options"),
        ({"cmd": "reconstruct", "photo": "x.jpg", "options": {"device": "tpu"}}, "bad_input", "device"),
        ({"cmd": "reconstruct", "photo": "x.jpg", "options": {"mouth": "auto"}}, "bad_input", "mouth"),
        (
            {"cmd": "reconstruct", "photo": str(sample_photo_path()), "options": {"boxes": [[0, 0, 1e5, 1e5]]}},
            "bad_input",
            "more than",
        ),
        ({"cmd": "reconstruct", "photo": "x.jpg", "options": {"texture_mode": "x"}}, "bad_input", "texture mode"),
        ({"cmd": "reconstruct", "photo": "x.jpg", "options": {"topology": "ngons"}}, "bad_input", "topology"),
        ({"cmd": "reconstruct", "photo": "x.jpg", "options": {"quad_cells": 4}}, "bad_input", "quad cells"),
        ({"cmd": "reconstruct", "photo": "x.jpg", "options": {"bundle": "/no/bundle"}}, "no_model", "bundle"),
        ({"cmd": "fly"}, "bad_input", "unknown command"),
    ],
)
def test_bad_requests_get_one_clear_line(served, request_, kind, text):
    worker, messages = served
    assert worker.handle({"id": 9, **request_}) is True
    reply = messages()[-1]
    assert reply["ok"] is False and reply["kind"] == kind and text in reply["error"] and "\n" not in reply["error"]


@pytest.mark.parametrize("rid", [[1], {"a": 1}, "../../tmp/x", "", True, 1.5, "x" * 65])
def test_a_request_whose_id_cannot_name_its_folder_is_refused(served, tmp_path, rid):
    worker, messages = served
    before = sorted(worker.workdir.iterdir())
    assert worker.handle({"id": rid, "cmd": "reconstruct", "photo": str(sample_photo_path())}) is True
    reply = messages()[-1]
    assert reply["id"] is None and reply["kind"] == "bad_input" and "id" in reply["error"]
    assert sorted(worker.workdir.iterdir()) == before


def test_a_photo_without_a_face_is_reported_as_such(served, tmp_path):
    worker, messages = served
    photo = tmp_path / "grey.png"
    cv2.imwrite(str(photo), np.full((240, 320, 3), 128, np.uint8))
    _reconstruct(worker, 10, photo, texture_size=TEXTURE)
    reply = messages()[-1]
    assert reply == {"id": 10, "ok": False, "kind": "no_face", "error": "no face found in grey.png"}


def test_cancelled_requests_stop_and_shutdown_ends_the_loop(served):
    worker, messages = served
    worker.cancelled.add(11)
    _reconstruct(worker, 11, sample_photo_path(), texture_size=TEXTURE)
    assert messages()[-1]["kind"] == "cancelled" and 11 not in worker.cancelled
    assert worker.handle({"id": 12, "cmd": "shutdown"}) is False
    assert messages() == [{"id": 12, "ok": True}]


def test_the_process_speaks_only_protocol_on_stdout_and_exits_at_end_of_input(tmp_path):
    lines = (
        '{"id": 1, "cmd": "ping"}\nnot json\n{"id": 2, "cmd": "cancel", "target": 5}\n'
        '{"id": 3, "cmd": "cancel", "target": {"x": 1}}\n{"id": 4, "cmd": "ping"}\n'
    )
    proc = subprocess.run(
        [sys.executable, "-m", "engine.worker", "--workdir", str(tmp_path)],
        input=lines, capture_output=True, text=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0
    replies = {r["id"]: r for r in map(json.loads, proc.stdout.splitlines())}  # cancels are answered at once
    assert set(replies) == {1, None, 2, 4} and replies[1]["ok"] and replies[2]["ok"] and replies[4]["ok"]
    assert replies[None]["kind"] == "bad_input" and "ready" in proc.stderr


def test_an_exif_rotated_photo_gets_an_upright_background(served, tmp_path):
    """Blender shows images as stored; the face lives in the upright frame, so the worker hands the
    add-on an upright copy for the camera background (and the photo itself when none is needed)."""
    import struct

    worker, messages = served
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 1)
    tiff += struct.pack("<HHIHH", 0x0112, 3, 1, 6, 0) + struct.pack("<I", 0)  # orientation 6
    payload = b"Exif\x00\x00" + tiff
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    stored = cv2.rotate(cv2.imread(str(sample_photo_path()))[:, :400], cv2.ROTATE_90_COUNTERCLOCKWISE)
    data = cv2.imencode(".jpg", stored)[1].tobytes()
    rotated = tmp_path / "phone.jpg"
    rotated.write_bytes(data[:2] + app1 + data[2:])
    _reconstruct(worker, "exif", rotated, texture_size=TEXTURE, boxes=[[150, 40, 310, 200]])
    face = messages()[-1]["faces"][0]
    upright = cv2.imread(face["background"])
    assert upright.shape[:2] == tuple(face["image_size"]) == (512, 400)
    _reconstruct(worker, "plain", sample_photo_path(), texture_size=TEXTURE, boxes=[[150, 40, 310, 200]])
    assert messages()[-1]["faces"][0]["background"] == str(sample_photo_path())


def test_a_damaged_jpeg_is_reconstructed_with_a_warning_in_the_reply(served, tmp_path):
    worker, messages = served
    data = sample_photo_path().read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: len(data) * 3 // 4] + b"\xff\xd9")
    _reconstruct(worker, 7, cut, texture_size=TEXTURE)
    reply = messages()[-1]
    assert reply["ok"] is True and len(reply["warnings"]) == 1 and "cut short" in reply["warnings"][0]
