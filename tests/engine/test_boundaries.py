"""Architecture boundaries (docs/architecture.md, "Boundaries"), checked in fresh interpreters so
imports are real."""

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


def test_the_runtime_never_loads_the_training_package():
    """The wheel and the Blender zip ship ``engine`` only: nothing a user runs may need ``training``."""
    mods = _loaded_after(
        "import engine.api, engine.cli, engine.worker, engine.bench, engine.prnet_import; "
        "engine.cli.build_parser(); engine.worker.Worker"
    )
    assert not {m for m in mods if m == "training" or m.startswith("training.")}


@pytest.mark.parametrize("module", ["engine.protocol", "engine.options", "engine.device", "engine.errors"])
def test_the_modules_the_addon_reads_are_stdlib_only(module):
    """prnet_blender imports these inside Blender, where numpy may be old and torch is absent."""
    mods = _loaded_after(f"import {module}")
    assert not {"torch", "numpy", "cv2", "scipy", "bpy"} & mods
    assert {m for m in mods if m.startswith("engine")} <= {
        "engine", "engine.protocol", "engine.options", "engine.device", "engine.errors"
    }  # fmt: skip


def test_the_rig_the_addon_runs_in_blender_needs_numpy_only():
    mods = _loaded_after("import engine.rig")
    assert not {"torch", "cv2", "scipy", "bpy"} & mods
    assert {m for m in mods if m.startswith("engine")} <= {"engine", "engine.rig"}


def test_lazy_names_are_listed_by_dir():
    mods = _loaded_after("import engine; assert set(engine.__all__) <= set(dir(engine)), dir(engine)")
    assert "torch" not in mods


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


@pytest.mark.parametrize(
    ("preset", "expected"),
    [({}, "10000"), ({"GOMP_SPINCOUNT": "5"}, "5"), ({"OMP_WAIT_POLICY": "PASSIVE"}, "unset")],
)
def test_idle_threads_spin_briefly_unless_the_user_says_otherwise(preset, expected):
    """engine.device.limit_thread_spinning runs before torch loads; a user's setting wins."""
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(preset)
    code = "import os, engine; engine.Reconstructor; print(os.environ.get('GOMP_SPINCOUNT', 'unset'))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == expected
