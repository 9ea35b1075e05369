"""The built extension end to end: build.py → zip → install + enable headlessly → operators.

The Blender session runs in a fresh process (tests/addon/extension_session.py) with its own
BLENDER_USER_RESOURCES, so installing and registering never leaks into other tests. The zip ships
the deterministic mean-face bundle as its default model; the engine runs with this interpreter.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from addon_env import HAS_BPY, NO_BPY_REASON, REPO
from addon_tolerances import PIXEL_LEVEL, POSE_DEG
from arrays import assert_close
from mean_face import build_mean_face_bundle

from engine.api import Reconstructor
from engine.landmarks import LANDMARK_NAMES
from prnet_blender.frames import rotation_to_blender

pytestmark = pytest.mark.skipif(not HAS_BPY, reason=NO_BPY_REASON)
SESSION_TIMEOUT_S = 300  # the whole Blender session; ≈ 20 s on the 2-core CI machine
TEXTURE = 512


@pytest.fixture(scope="module")
def extension_zip(mean_face_bundle, tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    fast = build_mean_face_bundle(tmp_path_factory.mktemp("fast") / "fast", arch="LightFCN")
    cmd = [sys.executable, str(REPO / "build.py"), "--bundle", str(mean_face_bundle), "--fast-bundle", str(fast)]
    cmd += ["-o", str(out)]
    subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=REPO)
    (zip_path,) = out.glob("prnet_blender-*.zip")
    return zip_path


@pytest.fixture(scope="module")
def session(extension_zip, sample_photo, no_face_photo, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("session")
    folder = tmp / "photos"
    folder.mkdir()
    shutil.copy(sample_photo, folder / "first.jpg")
    shutil.copy(no_face_photo, folder / "second.png")
    out = tmp / "observed.json"
    env = {**os.environ, "BLENDER_USER_RESOURCES": str(tmp / "user"), "PRNET_ENGINE_PYTHON": sys.executable}
    script = REPO / "tests" / "addon" / "extension_session.py"
    args = [extension_zip, sample_photo, no_face_photo, folder, out]
    proc = subprocess.run(
        [sys.executable, str(script), *map(str, args)], env=env, capture_output=True, text=True,
        timeout=SESSION_TIMEOUT_S, cwd=tmp,
    )  # fmt: skip
    assert proc.returncode == 0 and out.is_file(), proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(out.read_text()), proc.stdout, np.load(out.with_suffix(".texture.npy"))


def test_zip_holds_the_addon_engine_and_model_but_no_training_code(extension_zip):
    names = set(zipfile.ZipFile(extension_zip).namelist())
    assert {"blender_manifest.toml", "__init__.py", "client.py", "engine/worker.py", "engine/api.py"} <= names
    assert any(n.startswith("engine/_weights/default/weights-") for n in names)
    assert any(n.startswith("engine/_weights/fast/weights-") for n in names)
    assert not any(n.startswith("training/") or "__pycache__" in n or n.endswith("ruff.toml") for n in names)


def test_the_manifest_names_the_shipped_models_licence_beside_the_codes(extension_zip):
    manifest = zipfile.ZipFile(extension_zip).read("blender_manifest.toml").decode()
    assert 'license = ["SPDX:GPL-3.0-or-later", "LicenseRef-model-weights"]' in manifest
    assert "model weights: test only" in manifest  # the mean-face bundle's stated licence
    assert 'network = "Install Engine downloads' in manifest  # the one thing that goes online, and why


def test_a_build_without_weights_carries_only_the_codes_licence(tmp_path):
    cmd = [sys.executable, str(REPO / "build.py"), "--no-weights", "-o", str(tmp_path)]
    subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=REPO)
    (zip_path,) = tmp_path.glob("prnet_blender-*.zip")
    archive = zipfile.ZipFile(zip_path)
    names = archive.namelist()
    assert "engine/worker.py" in names
    assert not any("_weights" in n or n.endswith((".npz", ".pt")) for n in names)  # nothing from research data
    assert 'license = ["SPDX:GPL-3.0-or-later"]' in archive.read("blender_manifest.toml").decode()


def test_installs_and_enables_headlessly(session):
    obs, *_ = session
    assert obs["install"] == ["FINISHED"] and obs["package"] == "bl_ext.user_default.prnet_blender"


def test_reconstruct_photo_builds_the_face(session, mean_face_bundle, sample_photo):
    obs, stdout, pixels = session
    assert obs["photo"]["result"] == ["FINISHED"], obs["photo"]
    assert "astronaut: 1 face(s)" in stdout
    face = obs["face"]
    rec = Reconstructor.from_bundle(mean_face_bundle)
    (engine_face,) = rec(sample_photo, all_faces=False, texture_size=TEXTURE)
    assert face["n_vertices"] == len(engine_face.vertices) and face["n_polygons"] == len(engine_face.triangles)
    assert face["uv_layers"] == ["UVMap"] and face["collections"] == ["Landmarks"]
    assert face["image_packed"] and face["image_size"] == [TEXTURE, TEXTURE] and face["pixel_std"] > 0.05
    # Blender's rows run bottom-up: its last row is the engine texture's first (v = 1)
    assert_close(pixels[::-1, :, :3], engine_face.texture / 255.0, PIXEL_LEVEL, "packed texture vs engine texture")
    assert face["empties"] == list(LANDMARK_NAMES)
    # the object's rotation is the engine's pose (Blender frame) within 0.1°
    expected = rotation_to_blender(engine_face.pose.rotation)
    cos = (np.trace(np.asarray(face["rotation"]) @ expected.T) - 1) / 2
    assert math.degrees(math.acos(min(1.0, cos))) < POSE_DEG
    props = face["props"]
    assert props["prnet_source_photo"] == str(sample_photo) and props["prnet_bundle_id"].startswith("mean-face-test@")
    assert props["prnet_yaw"] == pytest.approx(engine_face.pose.yaw, abs=POSE_DEG)
    assert props["prnet_box"] == pytest.approx(engine_face.box.as_list(), abs=1e-3)
    cam = face["camera"]
    assert cam["type"] == "ORTHO" and cam["is_scene_camera"] and cam["background"] == str(sample_photo)
    assert obs["reloaded_image"] == {"packed": True, "size": [TEXTURE, TEXTURE]}  # saved inside the .blend


def test_undo_removes_everything_the_operator_made(session):
    obs, *_ = session
    assert obs["after_photo"]["objects"] == obs["before"]["objects"] + 1 + 68 + 1  # face, empties, camera
    assert obs["after_undo"] == obs["before"]


def test_a_photo_without_a_face_reports_and_changes_nothing(session):
    obs, *_ = session
    assert obs["no_face"]["result"] is None and obs["no_face"]["error"] == "Error: No face found in grey.png"
    assert obs["after_no_face"] == obs["after_undo"]


def test_a_crashed_worker_is_reported_then_replaced(session):
    obs, *_ = session
    assert obs["crashed"]["result"] is None and "exited" in obs["crashed"]["error"]
    assert obs["after_crash"] == obs["after_no_face"]
    assert obs["after_crash_retry"]["result"] == ["FINISHED"]


def test_reconstruct_folder_builds_the_faces_and_reports_the_rest(session):
    obs, stdout, _ = session
    assert obs["folder"]["result"] == ["FINISHED"]
    per_photo = 2  # the photo's collection and its Landmarks child
    assert obs["after_folder"]["collections"] == obs["after_crash"]["collections"] + 2 * per_photo  # retry, first
    assert "1 photo(s) reconstructed (1 faces)" in stdout and "1 failed, first: second.png" in stdout


def test_running_a_photo_again_replaces_it_and_file_import_reconstructs(session):
    obs, stdout, _ = session
    assert obs["again"]["result"] == ["FINISHED"] and "replaced the photo's previous result" in stdout
    assert obs["after_again"] == obs["after_folder"]  # the astronaut's result was replaced, not added
    assert obs["again_mesh"]["sides"] == [4] and obs["again_mesh"]["n_polygons"] > 5000  # quads, as asked
    assert obs["imported"]["result"] == ["FINISHED"] and obs["after_import"] == obs["after_folder"]


def test_disabling_the_addon_stops_the_worker(session):
    obs, *_ = session
    assert obs["worker_alive_after_disable"] is False and obs["workdir_after_disable"] is False


def test_build_refuses_to_ship_without_a_model_unless_told(tmp_path):
    cmd = [sys.executable, str(REPO / "build.py"), "--bundle", str(tmp_path / "none"), "-o", str(tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    assert proc.returncode != 0 and "no model bundle" in proc.stderr and not list(tmp_path.glob("*.zip"))
