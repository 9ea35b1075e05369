"""Fixtures of the add-on tests (prnet_blender/ and the engine worker it drives).

bpy 5.0.1 runs as a Python module in the test environment; tests that need it skip with a reason
where it is absent. Blender reads ``BLENDER_USER_RESOURCES`` once, when bpy is first imported, so
it is pointed at a throwaway folder here — before any test module imports bpy — and tests never
touch the real user's preferences or extensions. The engine runs with this interpreter
(``sys.executable``: the project .venv) and the deterministic mean-face bundle (tests/conftest.py).
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLE_PHOTO = REPO / "engine" / "data" / "astronaut.jpg"
HAS_BPY = importlib.util.find_spec("bpy") is not None
NO_BPY_REASON = "needs the bpy module (pip install bpy==5.0.1 on Python 3.11)"
NO_FACE_SIZE = (240, 320)  # (height, width) px of the flat grey photo without a face

if "BLENDER_USER_RESOURCES" not in os.environ:
    _user_resources = tempfile.mkdtemp(prefix="prnet_blender_user_")
    os.environ["BLENDER_USER_RESOURCES"] = _user_resources
    atexit.register(shutil.rmtree, _user_resources, True)

sys.path.insert(0, str(REPO / "tests" / "engine"))  # shared helpers: arrays.assert_close


@pytest.fixture(scope="session")
def sample_photo() -> Path:
    return SAMPLE_PHOTO


@pytest.fixture(scope="session")
def no_face_photo(tmp_path_factory) -> Path:
    import cv2

    path = tmp_path_factory.mktemp("photos") / "grey.png"
    cv2.imwrite(str(path), np.full((*NO_FACE_SIZE, 3), 128, np.uint8))
    return path
