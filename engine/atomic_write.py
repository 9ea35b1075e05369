"""Atomic file output: a file either keeps its old content or gets the whole new one.

Bytes go to a hidden temporary file in the target's own folder (same file system, so the final
``os.replace`` is an atomic rename), created with mode 0666 less the umask like any ordinary file.
A group of files is staged completely before any is moved into place, so a failure while writing
(disk full, no permission) leaves none of them; a failure while moving them (rare: a target is a
folder) leaves only whole files. Temporary files never outlive a call. Errors become
:class:`~engine.errors.OutputError` naming the path. No fsync: we guard against half-written files
from errors, not against power loss.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from .errors import OutputError

TEMP_SUFFIX = ".tmp"
PROBE_NAME = ".write-probe"  # name (plus random suffix) of the empty file that tests a folder


def check_writable(folder: str | Path) -> Path:
    """Create ``folder`` if missing and prove a file can be created in it; raises OutputError."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _stage(folder / PROBE_NAME, b"").unlink()
    except OSError as exc:
        raise OutputError(f"output folder {folder} is not writable: {exc}") from exc
    return folder


def write_files_atomically(payloads: Mapping[Path, bytes]) -> list[Path]:
    """Write each ``path → bytes`` pair atomically, all staged before any is replaced; returns the paths."""
    staged: list[tuple[Path, Path]] = []
    try:
        for path, data in payloads.items():
            try:
                staged.append((_stage(Path(path), data), Path(path)))
            except OSError as exc:
                raise OutputError(f"cannot write {path}: {exc}") from exc
        for tmp, path in staged:
            try:
                os.replace(tmp, path)
            except OSError as exc:
                raise OutputError(f"cannot write {path}: {exc}") from exc
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)  # only leftovers of a failed call still exist
    return [Path(p) for p in payloads]


def _stage(path: Path, data: bytes) -> Path:
    """Write ``data`` to a new hidden file beside ``path``; returns the temporary file's path."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}{TEMP_SUFFIX}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp
