"""prnet_blender engine: one photo → UV position map → dense textured 3D face, 68 landmarks, head pose.

Public API::

    from engine import Reconstructor, ReconstructOptions
    faces = Reconstructor.from_bundle(options=ReconstructOptions(device="cpu"))("photo.jpg")

``import engine`` stays light (no torch, no numpy): the names below are loaded on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = [
    "BoundingBox",
    "FaceReconstruction",
    "HeadPose",
    "InvalidOptionError",
    "ReconstructOptions",
    "Reconstructor",
    "export_face",
    "load_bundle",
    "load_image",
]

_LAZY = {
    "Reconstructor": "engine.api",
    "ReconstructOptions": "engine.options",
    "InvalidOptionError": "engine.errors",
    "FaceReconstruction": "engine.types",
    "HeadPose": "engine.types",
    "BoundingBox": "engine.types",
    "load_bundle": "engine.bundle",
    "load_image": "engine.image_io",
    "export_face": "engine.export",
}


def __getattr__(name: str) -> Any:
    if name == "Reconstructor":  # before torch loads (engine.device.limit_thread_spinning)
        from .device import limit_thread_spinning

        limit_thread_spinning()
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'engine' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
