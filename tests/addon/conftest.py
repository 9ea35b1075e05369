"""Fixtures of the add-on tests (prnet_blender/ and the engine worker it drives).

bpy 5.0.1 runs as a Python module in the test environment; tests that need it skip with a reason
where it is absent. Blender reads ``BLENDER_USER_RESOURCES`` once, when bpy is first imported, so
it is pointed at a throwaway folder here — before any test module imports bpy — and tests never
touch the real user's preferences or extensions. The engine runs with this interpreter
(``sys.executable``: the project .venv) and the deterministic mean-face bundle (tests/mean_face.py).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from addon_env import NO_FACE_SIZE, SAMPLE_PHOTO

if "BLENDER_USER_RESOURCES" not in os.environ:
    _user_resources = tempfile.mkdtemp(prefix="prnet_blender_user_")
    os.environ["BLENDER_USER_RESOURCES"] = _user_resources
    atexit.register(shutil.rmtree, _user_resources, True)


@pytest.fixture(scope="session")
def sample_photo() -> Path:
    return SAMPLE_PHOTO


@pytest.fixture(scope="session")
def no_face_photo(tmp_path_factory) -> Path:
    import cv2

    path = tmp_path_factory.mktemp("photos") / "grey.png"
    cv2.imwrite(str(path), np.full((*NO_FACE_SIZE, 3), 128, np.uint8))
    return path
