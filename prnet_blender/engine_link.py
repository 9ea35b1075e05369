"""Where the ``engine`` package and its shipped model are, and the engine modules the add-on shares.

The add-on and the engine worker must agree on the protocol (engine.protocol) and on the options'
limits (engine.options, engine.device), and the face rig is built in Blender from engine.rig. Those
modules are stdlib only (engine.rig: numpy only), so the add-on loads them from the engine folder it
ships (or the repo checkout's) under a private package name, :data:`ALIAS`: no sys.path edit, no
torch, and no clash with another ``engine`` package Blender's Python may have. No bpy.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

ALIAS = "_prnet_engine"  # the engine package's name inside Blender's Python
# stdlib only, and engine.rig numpy only (Blender ships numpy): tests/engine/test_boundaries.py
SHARED_MODULES = ("protocol", "options", "device", "errors", "rig")


def engine_root() -> Path | None:
    """The folder holding the ``engine`` package: inside the built extension, else the repo root."""
    here = Path(__file__).resolve().parent
    for folder in (here, here.parent):
        if (folder / "engine" / "worker.py").is_file():
            return folder
    return None


def engine_module(name: str) -> ModuleType:
    """``engine.<name>`` for one of :data:`SHARED_MODULES`, loaded once under :data:`ALIAS`."""
    if name not in SHARED_MODULES:
        raise ValueError(f"the add-on shares only {SHARED_MODULES} with the engine, not {name!r}")
    if ALIAS not in sys.modules:
        root = engine_root()
        if root is None:
            raise ImportError("the engine package is missing beside the add-on (a broken install?)")
        package = root / "engine"
        spec = importlib.util.spec_from_file_location(
            ALIAS, package / "__init__.py", submodule_search_locations=[str(package)]
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[ALIAS] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[ALIAS]
            raise
    return importlib.import_module(f"{ALIAS}.{name}")


def shipped_bundle_dir() -> Path | None:
    """The model bundle that ships with the engine (the built extension's, else the checkout's), if any."""
    root = engine_root()
    if root is None:
        return None
    for folder in (root / "engine" / "_weights" / "default", root / "weights" / "default"):
        if (folder / "bundle.json").is_file():
            return folder
    return None


def bundle_summary(folder: str | Path | None) -> tuple[str, str] | None:
    """(name, licence) a bundle folder's bundle.json states, for the preferences; None when the folder
    holds no readable bundle.json (nothing is verified here: the engine does that on load)."""
    if folder is None:
        return None
    try:
        meta = json.loads((Path(folder) / "bundle.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(meta, dict):
        return None
    return str(meta.get("name", Path(folder).name)), str(meta.get("licence", "not stated"))
