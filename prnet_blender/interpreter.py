"""Which Python runs the engine, and where the ``engine`` package is.

The engine needs torch, numpy, OpenCV and SciPy; Blender's own Python usually has none of them.
:func:`find_engine_python` picks the interpreter by a fixed priority (see there) and, when none
fits, raises :class:`~.request.EngineUnavailable` with a message that says how to fix it. Nothing
here starts a process or imports a dependency: checks are file lookups and
``importlib.util.find_spec``, cheap enough for a preferences panel's draw. No bpy.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterable
from pathlib import Path

from .engine_link import engine_root
from .request import EngineUnavailable

ENGINE_DEPS = ("torch", "numpy", "cv2", "scipy")  # what `python -m engine.worker` imports
ENGINE_PYTHON_ENV = "PRNET_ENGINE_PYTHON"  # environment override of the engine interpreter


def venv_python(env_dir: str | Path) -> Path:
    """The interpreter of a virtual environment folder (Windows or POSIX layout)."""
    env_dir = Path(env_dir)
    return env_dir / "Scripts" / "python.exe" if os.name == "nt" else env_dir / "bin" / "python"


def current_python_has_deps() -> bool:
    """Whether the Python running this code (Blender's) could import the engine (no import done)."""
    return all(importlib.util.find_spec(name) is not None for name in ENGINE_DEPS)


def find_engine_python(configured: str = "", *, extra_envs: Iterable[str | Path] = ()) -> str:
    """The interpreter to run the engine with, by priority: ``configured`` (preferences) →
    ``$PRNET_ENGINE_PYTHON`` → this Python if it has the engine's deps → ``python`` of each of
    ``extra_envs`` (e.g. the add-on's installed environment) → ``.venv`` beside the engine."""
    for explicit, what in (
        (configured, "the engine Python set in the preferences"),
        (os.environ.get(ENGINE_PYTHON_ENV, ""), f"${ENGINE_PYTHON_ENV}"),
    ):
        if explicit:
            if not Path(explicit).is_file():
                raise EngineUnavailable(f"{what} does not exist: {explicit}")
            return str(explicit)
    if sys.executable and current_python_has_deps():
        return sys.executable
    root = engine_root()
    envs = [*extra_envs, *((root / ".venv",) if root is not None else ())]
    for env in envs:
        if venv_python(env).is_file():
            return str(venv_python(env))
    raise EngineUnavailable(
        "no Python with torch found to run the engine: use Preferences › Add-ons › PRNet Face › "
        f"Install engine, or set the engine Python (or ${ENGINE_PYTHON_ENV}) to one with {', '.join(ENGINE_DEPS)}"
    )
