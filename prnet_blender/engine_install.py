"""Install Engine's work, without bpy: make a Python environment with the engine's packages, step by
step in subprocesses, with a progress line, cancel, and nothing left behind unless it worked.

:class:`Installer` runs ``python -m venv``, ``pip install`` of :data:`ENGINE_REQUIREMENTS` (from the
package index pip is configured for, or with ``wheel_folder`` offline from a folder of wheels:
``--no-index --find-links``) and an import check, appending every step's output to a log. The
caller polls it (Blender's modal timer); :meth:`Installer.cancel` stops the running step. If any
step fails or is cancelled the environment folder is removed, so the add-on finds either a
working engine Python or none.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from .interpreter import ENGINE_DEPS, venv_python

# The engine's runtime packages (pyproject.toml [project] dependencies; a test keeps them equal).
ENGINE_REQUIREMENTS = ("torch>=2.2", "numpy>=1.24,<2", "opencv-python-headless>=4.8,<4.12", "scipy>=1.10")
LOG_NAME = "install.log"  # beside the environment folder (it outlives a failed install)
PROGRESS_WORDS = ("Collecting", "Downloading", "Processing", "Installing collected", "Successfully installed")


def install_steps(
    env_dir: Path, *, wheel_folder: Path | None, requirements=ENGINE_REQUIREMENTS, imports=ENGINE_DEPS
) -> list[tuple[str, list[str]]]:
    """``(what, command)`` per step: create the environment, (online: update pip,) install, check imports."""
    python = str(venv_python(env_dir))
    source = ["--no-index", "--find-links", str(wheel_folder)] if wheel_folder else []
    steps = [("creating the environment", [sys.executable, "-m", "venv", str(env_dir)])]
    if not wheel_folder:
        steps.append(("updating pip", [python, "-m", "pip", "install", "--upgrade", "pip"]))
    steps.append(("installing packages", [python, "-m", "pip", "install", *source, *requirements]))
    steps.append(("checking the packages", [python, "-c", "import " + ", ".join(imports)]))
    return steps


def progress_line(log_text: str) -> str:
    """The latest line of pip's output that says what it is doing ("" when none yet)."""
    for line in reversed(log_text.splitlines()):
        line = line.strip()
        if line.startswith(PROGRESS_WORDS):
            return line[:80]
    return ""


class Installer:
    """Runs :func:`install_steps` one after the other; :meth:`poll` advances and reports the state."""

    def __init__(self, env_dir: Path, *, wheel_folder: Path | None = None, **steps) -> None:
        self.env_dir, self.log = Path(env_dir), Path(env_dir).parent / LOG_NAME
        self.steps = install_steps(self.env_dir, wheel_folder=wheel_folder, **steps)
        self.stage, self.state, self._proc, self._log_file = "", "running", None, None

    def start(self) -> None:
        if self.env_dir.exists():
            shutil.rmtree(self.env_dir)  # a half-made environment of an earlier attempt
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.log.write_text("", encoding="utf-8")
        self._next()

    def poll(self) -> str:
        """``"running"``, ``"done"`` or ``"failed"`` (then :attr:`stage` says where; see :attr:`log`)."""
        if self.state != "running" or self._proc.poll() is None:
            return self.state
        if self._proc.returncode != 0:
            return self._fail()
        if self.steps:
            self._next()
        else:
            self._close()
            self.state = "done"
        return self.state

    def progress(self) -> str:
        """What is happening now, for a status bar."""
        detail = progress_line(self.log.read_text(encoding="utf-8", errors="replace")) if self.log.exists() else ""
        return f"{self.stage}: {detail}" if detail else self.stage

    def cancel(self) -> None:
        if self.state == "running" and self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        if self.state == "running":
            self._fail("cancelled")

    def last_log_line(self) -> str:
        lines = self.log.read_text(encoding="utf-8", errors="replace").strip().splitlines() if self.log.exists() else []
        return lines[-1] if lines else ""

    def _next(self) -> None:
        self.stage, cmd = self.steps.pop(0)
        self._close()
        self._log_file = open(self.log, "a", encoding="utf-8")  # noqa: SIM115 - open while the step runs
        self._log_file.write("$ " + " ".join(cmd) + "\n")
        self._log_file.flush()
        try:
            self._proc = subprocess.Popen(cmd, stdout=self._log_file, stderr=subprocess.STDOUT)
        except OSError as exc:
            self._log_file.write(f"cannot run {cmd[0]}: {exc}\n")
            self._proc = None
            self._fail()

    def _fail(self, why: str = "failed") -> str:
        self._close()
        shutil.rmtree(self.env_dir, ignore_errors=True)  # a working engine or nothing
        self.state, self.stage = "failed", f"{self.stage} {why}"
        return self.state

    def _close(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
