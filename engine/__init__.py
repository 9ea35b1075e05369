"""prnet_blender engine: one photo → UV position map → dense textured 3D face, 68 landmarks, head pose.

Public API::

    from engine import Reconstructor
    faces = Reconstructor.from_bundle(device="cpu")("photo.jpg")   # list[FaceReconstruction]

``import engine`` stays light (no torch): the names below are loaded on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = ["Reconstructor", "FaceReconstruction", "HeadPose", "BoundingBox", "load_bundle", "load_image", "export_face"]

_LAZY = {
    "Reconstructor": "engine.api",
    "FaceReconstruction": "engine.types",
    "HeadPose": "engine.types",
    "BoundingBox": "engine.types",
    "load_bundle": "engine.bundle",
    "load_image": "engine.image_io",
    "export_face": "engine.export",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'engine' has no attribute {name!r}")
