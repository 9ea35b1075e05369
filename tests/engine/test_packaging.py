"""The wheel a plain ``pip install .`` builds: the runtime and the shipped model, nothing else, and an
installed engine that finds its model without the checkout. Built from a copy of the sources, so the
checkout gets no build folders."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "README.md", "engine", "weights/default", "weights/fast")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    if not all((REPO / "weights" / name / "bundle.json").is_file() for name in ("default", "fast")):
        pytest.skip("no model bundles in weights/default and weights/fast")
    pytest.importorskip("setuptools")
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(REPO / name, src / name)
    out = tmp_path_factory.mktemp("wheel")
    cmd = [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation", "-q", "-w", str(out)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    (found,) = out.glob("*.whl")
    return found


def test_the_wheel_holds_the_runtime_and_the_shipped_model_only(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    files = [n for n in names if ".dist-info/" not in n]
    assert all(n.startswith("engine/") for n in files), [n for n in files if not n.startswith("engine/")]
    assert not any("training" in n or n.endswith(".jsonl") or n.endswith("ruff.toml") for n in files)
    for name in ("default", "fast"):
        bundle = {n.rsplit("/", 1)[1] for n in files if n.startswith(f"engine/_weights/{name}/")}
        assert bundle == {p.name for p in (REPO / "weights" / name).iterdir()}
    layouts = sorted(n for n in files if n.endswith(".npz") and "layout" in n)
    assert layouts == ["engine/_weights/default/layout.npz", "engine/_weights/fast/layout.npz"]


def test_an_installed_engine_finds_and_loads_its_model_away_from_the_checkout(wheel, tmp_path):
    site = tmp_path / "site"
    cmd = [sys.executable, "-m", "pip", "install", str(wheel), "--no-deps", "-q", "--target", str(site)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    code = (
        "import engine, engine.bundle as b; p = b.default_bundle_path(); m = b.load_bundle(p); "
        "f = b.load_bundle(b.fast_bundle_path()); print(engine.__file__); print(p); print(m.bundle_id); "
        "print(f.bundle_id)"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env={"PYTHONPATH": str(site)}, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    module_file, bundle_path, bundle_id, fast_id = run.stdout.split()
    assert module_file.startswith(str(site)) and bundle_path.startswith(str(site))
    assert bundle_id.startswith("prnet-blender-default@") and fast_id.startswith("prnet-blender-fast@")
