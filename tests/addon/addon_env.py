"""Constants shared by the add-on tests (imported by name; conftest modules are not importable
reliably when several test folders each have one)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SAMPLE_PHOTO = REPO / "engine" / "data" / "astronaut.jpg"
HAS_BPY = importlib.util.find_spec("bpy") is not None
NO_BPY_REASON = "needs the bpy module (pip install bpy==5.0.1 on Python 3.11)"
NO_FACE_SIZE = (240, 320)  # (height, width) px of the flat grey photo without a face
