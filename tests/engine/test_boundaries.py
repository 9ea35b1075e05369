"""Architecture boundaries (DESIGN.md §2): checked in fresh interpreters, so imports are real."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _loaded_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_engine_never_imports_bpy():
    mods = _loaded_after("import engine, engine.api, engine.cli, engine.export, engine.bench, engine.prnet_import")
    assert "bpy" not in mods


@pytest.mark.parametrize(
    "module",
    [
        "engine.mesh",
        "engine.landmarks",
        "engine.visibility",
        "engine.pose",
        "engine.depth",
        "engine.texture",
        "engine.position_map",
        "engine.readout",
        "engine.export",
        "engine.image_io",
        "engine.detect",
        "engine.crop",
    ],
)
def test_geometry_modules_do_not_import_torch(module):
    assert "torch" not in _loaded_after(f"import {module}")


def test_engine_package_import_is_light():
    """`import engine` alone must not pull torch (the Blender side reads engine metadata cheaply)."""
    assert "torch" not in _loaded_after("import engine")
