"""Boundaries of the Blender layer (docs/architecture.md, "Boundaries"), checked in fresh interpreters
so imports are real: prnet_blender imports outside Blender without loading anything, and never
imports torch."""

from __future__ import annotations

import ast
import re
import subprocess
import sys

import pytest
from addon_env import HAS_BPY, NO_BPY_REASON, REPO


def _loaded_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_the_package_imports_outside_blender_without_loading_bpy_or_torch():
    mods = _loaded_after("import prnet_blender")
    assert not {"bpy", "torch", "numpy"} & mods


def test_the_plain_python_modules_need_no_bpy_and_no_torch():
    mods = _loaded_after(
        "import prnet_blender.client, prnet_blender.interpreter, prnet_blender.frames, prnet_blender.result"
    )
    assert not {"bpy", "torch", "engine"} & mods
    shared = {m for m in mods if m.startswith("_prnet_engine")}  # engine modules, under the add-on's alias
    assert shared and shared <= {
        "_prnet_engine",
        *(f"_prnet_engine.{m}" for m in ("protocol", "options", "device", "errors")),
    }


@pytest.mark.skipif(not HAS_BPY, reason=NO_BPY_REASON)
def test_the_blender_modules_never_import_torch():
    mods = _loaded_after(
        "import bpy, prnet_blender; prnet_blender.register(); "
        "import prnet_blender.operators, prnet_blender.scene_build, prnet_blender.panels; prnet_blender.unregister()"
    )
    assert "torch" not in mods and "engine" not in mods


def test_install_engine_asks_for_the_packages_pyproject_declares():
    tree = ast.parse((REPO / "prnet_blender" / "engine_install.py").read_text(encoding="utf-8"))
    declared = next(
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "ENGINE_REQUIREMENTS"
    )
    block = re.search(r"^dependencies = \[(.*?)\]", (REPO / "pyproject.toml").read_text(), re.S | re.M).group(1)
    assert list(declared) == re.findall(r'"([^"]+)"', block)
