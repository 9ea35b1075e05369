"""The add-on's engine client (prnet_blender/client.py) against real worker processes.

No bpy needed: the client is plain Python. The engine runs with this interpreter and the
deterministic mean-face bundle (tests/mean_face.py).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
from addon_env import REPO

from prnet_blender import client, interpreter, request
from prnet_blender.result import FaceResult

TEXTURE = 256  # px: small and fast
REQUEST_TIMEOUT_S = 120.0  # generous: the CI machine is shared with a training job


@pytest.fixture(scope="module")
def engine():
    c = client.EngineClient(sys.executable, root=REPO, timeout_s=REQUEST_TIMEOUT_S)
    yield c
    workdir = c.workdir
    c.stop()
    assert not c.alive and not workdir.exists()


@pytest.fixture(scope="module")
def options(mean_face_bundle):
    return {"bundle": str(mean_face_bundle), "texture_size": TEXTURE}


def test_ping_starts_the_worker(engine):
    reply = engine.call("ping")
    assert reply["ok"] and engine.alive and reply["pid"] == engine._proc.pid


def test_reconstruct_gives_a_face_the_scene_builder_can_read(engine, options, sample_photo):
    stages = []
    reply = engine.call(
        "reconstruct", photo=str(sample_photo), options=options, on_progress=lambda p, s: stages.append(s)
    )
    assert "reconstructing" in stages
    face = FaceResult.from_reply(reply["faces"][0], photo=str(sample_photo), landmark_names=reply["landmark_names"])
    assert face.texture.shape == (TEXTURE, TEXTURE, 3) and face.landmark_names[0] == "jaw_00"
    assert face.vertices.shape == face.frontal_vertices.shape and face.image_size == (512, 512)
    engine.release(reply)
    assert not Path(reply["faces"][0]["npz"]).parent.exists()


def test_quality_fast_runs_the_shipped_fast_model_and_says_so(engine, sample_photo):
    reply = engine.call("reconstruct", photo=str(sample_photo), options={"texture_size": TEXTURE, "quality": "fast"})
    assert reply["bundle_id"].startswith("prnet-blender-fast@")
    assert reply["faces"][0]["bundle_id"] == reply["bundle_id"]
    engine.release(reply)


def test_engine_errors_keep_their_kind(engine, options, no_face_photo):
    with pytest.raises(request.RequestFailed, match="no face found in grey.png") as info:
        engine.call("reconstruct", photo=str(no_face_photo), options=options)
    assert info.value.kind == "no_face"
    with pytest.raises(request.RequestFailed) as info:
        engine.call("reconstruct", photo="/no/such.jpg", options=options)
    assert info.value.kind == "bad_input"


def test_a_killed_worker_fails_its_request_then_the_next_one_starts_afresh(engine, options, sample_photo):
    engine.call("ping")
    old_pid = engine._proc.pid
    req = engine.submit("reconstruct", photo=str(sample_photo), options=options)
    os.kill(old_pid, 9)
    with pytest.raises(request.EngineCrashed, match="exited"):
        engine.wait(req)
    reply = engine.call("reconstruct", photo=str(sample_photo), options=options)
    assert reply["ok"] and engine._proc.pid != old_pid
    engine.release(reply)


def test_cancel_abandons_a_request_and_leaves_no_files(engine, options, sample_photo):
    req = engine.submit("reconstruct", photo=str(sample_photo), options=options)
    engine.cancel(req)
    with pytest.raises(request.EngineCancelled):
        req.result()
    assert engine.call("ping")["ok"]  # the worker is still usable
    deadline = time.monotonic() + REQUEST_TIMEOUT_S
    while any(engine.workdir.iterdir()) and time.monotonic() < deadline:
        engine.call("ping")
    assert not any(engine.workdir.iterdir())


def test_a_timeout_stops_the_worker_and_the_next_request_works(engine, options, sample_photo):
    req = engine.submit("reconstruct", photo=str(sample_photo), options=options, timeout_s=0.01)
    with pytest.raises(request.EngineTimeout, match="did not answer"):
        engine.wait(req)
    assert not engine.alive
    assert engine.call("ping")["ok"]


def test_missing_interpreter_or_packages_say_how_to_fix_it(tmp_path):
    with pytest.raises(request.EngineUnavailable, match="cannot start"):
        client.EngineClient(str(tmp_path / "python"), root=REPO).call("ping")
    if os.name == "nt":
        return
    bare = tmp_path / "bare-python"  # this interpreter without site-packages: no numpy, no torch
    bare.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S "$@"\n')
    bare.chmod(0o755)
    c = client.EngineClient(str(bare), root=REPO, timeout_s=REQUEST_TIMEOUT_S)
    try:
        with pytest.raises(request.EngineUnavailable, match="No module named"):
            c.call("ping")
    finally:
        c.stop()


def test_engine_python_is_found_in_the_documented_order(tmp_path, monkeypatch):
    monkeypatch.delenv(interpreter.ENGINE_PYTHON_ENV, raising=False)
    exe = tmp_path / "py"
    exe.write_text("")
    assert interpreter.find_engine_python(str(exe)) == str(exe)
    with pytest.raises(request.EngineUnavailable, match="does not exist"):
        interpreter.find_engine_python(str(tmp_path / "missing"))
    monkeypatch.setenv(interpreter.ENGINE_PYTHON_ENV, str(exe))
    assert interpreter.find_engine_python("") == str(exe)
    monkeypatch.delenv(interpreter.ENGINE_PYTHON_ENV)
    assert interpreter.find_engine_python("") == sys.executable  # this Python has torch & co.
    monkeypatch.setattr(interpreter, "current_python_has_deps", lambda: False)
    env = tmp_path / "env"
    interpreter.venv_python(env).parent.mkdir(parents=True)
    interpreter.venv_python(env).write_text("")
    assert interpreter.find_engine_python("", extra_envs=[env]) == str(interpreter.venv_python(env))
    if interpreter.venv_python(REPO / ".venv").is_file():  # a repo checkout with its .venv
        assert interpreter.find_engine_python("") == str(interpreter.venv_python(REPO / ".venv"))
    monkeypatch.setattr(interpreter, "engine_root", lambda: tmp_path / "nowhere")
    with pytest.raises(request.EngineUnavailable, match="Install engine"):
        interpreter.find_engine_python("")


def test_the_session_client_is_shared_and_replaced_when_the_interpreter_changes():
    a = client.shared_client(sys.executable, root=REPO)
    assert client.shared_client(sys.executable, root=REPO) is a and client.current_client() is a
    b = client.shared_client(sys.executable + "-other", root=REPO)
    assert b is not a and not a.workdir.exists()
    client.shutdown()
    assert client.current_client() is None


def test_the_preferences_name_the_model_and_its_licence(tmp_path):
    from prnet_blender import engine_link

    shipped = engine_link.shipped_bundle_dir()
    assert shipped is not None and shipped.name == "default"
    name, licence = engine_link.bundle_summary(shipped)
    assert name == "prnet-blender-default" and "non-commercial" in licence
    assert engine_link.bundle_summary(tmp_path) is None and engine_link.bundle_summary(None) is None
    (tmp_path / "bundle.json").write_text('{"name": "mine"}', encoding="utf-8")
    assert engine_link.bundle_summary(tmp_path) == ("mine", "not stated")
