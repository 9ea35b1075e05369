"""Install Engine's steps (prnet_blender.engine_install) run for real, offline, on a folder holding one
small wheel: the environment works, or nothing is left (failure, cancel)."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import time
import zipfile
from pathlib import Path

import pytest

from prnet_blender.engine_install import Installer, install_steps, progress_line
from prnet_blender.interpreter import venv_python

PACKAGE = "prnet_probe_dep"  # a package no index has: it can only come from the wheel folder
INSTALL_TIMEOUT_S = 180.0  # venv with pip plus one local wheel: seconds here


def _wheel(folder: Path) -> Path:
    """A minimal pure-Python wheel of :data:`PACKAGE` (PEP 427 layout)."""
    files = {
        f"{PACKAGE}/__init__.py": b"VALUE = 42\n",
        f"{PACKAGE}-1.0.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {PACKAGE}\nVersion: 1.0\n".encode(),
        f"{PACKAGE}-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{PACKAGE}-1.0.dist-info/RECORD,,")
    path = folder / f"{PACKAGE}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
        z.writestr(f"{PACKAGE}-1.0.dist-info/RECORD", "\n".join(record) + "\n")
    return path


def _run(installer: Installer) -> str:
    installer.start()
    deadline = time.monotonic() + INSTALL_TIMEOUT_S
    while (state := installer.poll()) == "running" and time.monotonic() < deadline:
        time.sleep(0.2)
    return state


def test_offline_install_from_a_wheel_folder_gives_a_working_environment(tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    _wheel(wheels)
    env = tmp_path / "user" / "engine_env"
    installer = Installer(env, wheel_folder=wheels, requirements=(PACKAGE,), imports=(PACKAGE,))
    assert _run(installer) == "done", installer.log.read_text()
    out = subprocess.run([str(venv_python(env)), "-c", f"import {PACKAGE}; print({PACKAGE}.VALUE)"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    assert out.stdout.strip() == "42"
    assert "--no-index" in installer.log.read_text()  # offline: pip never asked an index


def test_a_failed_install_leaves_no_environment_and_names_the_step(tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()  # empty: the package is not there
    env = tmp_path / "user" / "engine_env"
    installer = Installer(env, wheel_folder=wheels, requirements=(PACKAGE,), imports=(PACKAGE,))
    assert _run(installer) == "failed"
    assert not env.exists() and installer.stage.startswith("installing packages")
    assert installer.log.exists() and installer.last_log_line()


def test_cancel_stops_the_step_and_leaves_nothing(tmp_path):
    env = tmp_path / "user" / "engine_env"
    installer = Installer(env, wheel_folder=tmp_path, requirements=(PACKAGE,), imports=(PACKAGE,))
    installer.start()  # creating the environment
    installer.cancel()
    assert installer.poll() == "failed" and installer.stage.endswith("cancelled") and not env.exists()


def test_online_steps_update_pip_and_offline_steps_never_reach_an_index(tmp_path):
    online = [cmd for _, cmd in install_steps(tmp_path / "e", wheel_folder=None)]
    offline = [cmd for _, cmd in install_steps(tmp_path / "e", wheel_folder=tmp_path)]
    assert any("--upgrade" in c for c in online) and not any("--no-index" in c for c in online)
    assert all("--upgrade" not in c for c in offline) and any("--no-index" in c for c in offline)
    assert offline[-1][-1].startswith("import torch")  # the last step checks the engine's imports


@pytest.mark.parametrize(
    ("log", "line"),
    [
        (
            "$ pip\nCollecting torch>=2.2\n  Downloading torch-2.13.0.whl (200 MB)\n",
            "Downloading torch-2.13.0.whl (200 MB)",
        ),
        ("$ python -m venv x\n", ""),
    ],
)
def test_the_progress_line_is_pips_latest_step(log, line):
    assert progress_line(log) == line


def _pinned(names: tuple[str, ...]) -> list[str]:
    """The requirements.txt pins of ``names`` (the versions the engine is tested with)."""
    lines = (Path(__file__).resolve().parents[2] / "requirements.txt").read_text().splitlines()
    return [line.split("#")[0].strip() for line in lines if line.split("==")[0].strip() in names]


def test_a_fresh_blender_installs_the_engine_offline_and_reconstructs(tmp_path, monkeypatch, sample_photo):
    """The issue's end to end: the engine's wheels in a folder (fetched once here; the install itself
    runs with --no-index), the add-on's install steps, then the add-on finds that Python and a photo
    becomes a head in the scene. ~300 MB of wheels, ~1.3 GB installed (removed afterwards)."""
    import shutil
    import sys

    bpy = pytest.importorskip("bpy", reason="needs the bpy module")
    from prnet_blender import client, interpreter, scene_build
    from prnet_blender.result import FaceResult

    wheels = tmp_path / "wheels"
    pins = _pinned(("torch", "numpy", "opencv-python-headless", "scipy"))
    fetched = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "-d", str(wheels), *pins],
                             capture_output=True, text=True)  # fmt: skip
    if fetched.returncode != 0:
        pytest.skip(f"cannot fetch the engine's wheels for the offline folder: {fetched.stderr.strip()[-200:]}")
    env = tmp_path / "user" / "engine_env"
    monkeypatch.setattr(interpreter, "current_python_has_deps", lambda: False)  # Blender's Python has no torch
    monkeypatch.delenv(interpreter.ENGINE_PYTHON_ENV, raising=False)
    try:
        installer = Installer(env, wheel_folder=wheels)
        assert _run(installer) == "done", installer.log.read_text()[-2000:]
        python = interpreter.find_engine_python("", extra_envs=[env])
        assert python == str(venv_python(env))
        engine = client.EngineClient(python, root=Path(__file__).resolve().parents[2])
        try:
            reply = engine.call("reconstruct", photo=str(sample_photo), options={"texture_size": 256})
            faces = [FaceResult.from_reply(f, photo=str(sample_photo), landmark_names=reply["landmark_names"])
                     for f in reply["faces"]]  # fmt: skip
        finally:
            engine.stop()
        bpy.ops.wm.read_factory_settings(use_empty=True)
        built = scene_build.build_photo(bpy.context, faces)
        assert len(built.faces) == 1 and len(built.faces[0].data.vertices) > 40_000
    finally:
        shutil.rmtree(env, ignore_errors=True)
        shutil.rmtree(wheels, ignore_errors=True)
        bpy.ops.wm.read_factory_settings(use_empty=True)
