"""Atomic file output: a file either keeps its old content or gets the whole new one.

Bytes go to a hidden temporary file in the target's own folder (same file system, so the final
``os.replace`` is an atomic rename), created with mode 0666 less the umask like any ordinary file.
A group of files is staged completely before any is moved into place, so a failure while writing
(disk full, no permission) leaves none of them; a failure while moving them (rare: a target is a
folder) leaves only whole files. Ctrl-C and SIGTERM are held back while a group is moved (they take
effect as soon as it is complete), so an interrupted run never leaves a face's OBJ without its
MTL or texture. Temporary files never outlive a call; those a killed process left behind
(SIGKILL, power loss) are removed by the next :func:`check_writable` of their folder once they are
:data:`STALE_TEMP_S` old. Errors become
:class:`~engine.errors.OutputError` naming the path. No fsync: we guard against half-written files
from errors, not against power loss.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

from .errors import OutputError

TEMP_SUFFIX = ".tmp"
TEMP_PATTERN = re.compile(r"^\..+\.[0-9a-f]{12}\.tmp$")  # what _stage names its temporary files
STALE_TEMP_S = 600.0  # a temporary file this old belongs to no running write (a face takes seconds)
DEFERRED_SIGNALS = (signal.SIGINT, signal.SIGTERM)
PROBE_NAME = ".write-probe"  # name (plus random suffix) of the empty file that tests a folder


def check_writable(folder: str | Path) -> Path:
    """Create ``folder`` if missing and prove a file can be created in it; raises OutputError."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _stage(folder / PROBE_NAME, b"").unlink()
    except OSError as exc:
        raise OutputError(f"output folder {folder} is not writable: {exc}") from exc
    remove_stale_temps(folder)
    return folder


def remove_stale_temps(folder: Path, *, older_than_s: float = STALE_TEMP_S) -> list[Path]:
    """Delete this module's temporary files in ``folder`` older than ``older_than_s``; returns them."""
    removed, now = [], time.time()
    for entry in folder.iterdir():
        try:
            if TEMP_PATTERN.match(entry.name) and entry.is_file() and now - entry.stat().st_mtime > older_than_s:
                entry.unlink()
                removed.append(entry)
        except OSError:
            continue  # gone already, or not ours to remove
    return removed


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back until the block ends (main thread only; elsewhere a no-op): a
    signal that arrives meanwhile is recorded and its handler runs when the block is done. (Blocking
    the signal in the thread is not enough: the process's other threads, torch's among them, would
    take it.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    arrived: list[tuple[int, object]] = []
    previous = {
        sig: signal.signal(sig, lambda signum, frame: arrived.append((signum, frame))) for sig in DEFERRED_SIGNALS
    }
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for signum, frame in arrived[:1]:
            handler = previous[signum]
            if callable(handler):
                handler(signum, frame)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(signum)


def write_files_atomically(payloads: Mapping[Path, bytes]) -> list[Path]:
    """Write each ``path → bytes`` pair atomically, all staged before any is replaced; returns the paths."""
    staged: list[tuple[Path, Path]] = []
    try:
        for path, data in payloads.items():
            try:
                staged.append((_stage(Path(path), data), Path(path)))
            except OSError as exc:
                raise OutputError(f"cannot write {path}: {exc}") from exc
        with signals_deferred():  # a group is moved whole, or not at all
            for tmp, path in staged:
                try:
                    os.replace(tmp, path)
                except OSError as exc:
                    raise OutputError(f"cannot write {path}: {exc}") from exc
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)  # only leftovers of a failed call still exist
    return [Path(p) for p in payloads]


@contextlib.contextmanager
def staged_file(path: Path) -> Iterator[BinaryIO]:
    """A binary file to stream into, which replaces ``path`` when the block ends normally (atomically,
    signals deferred); if the block raises, the partial file is removed and ``path`` is untouched."""
    path = Path(path)
    try:
        tmp = _stage(path, b"")
        f = open(tmp, "r+b")
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc}") from exc
    try:
        with f:
            yield f
        with signals_deferred():
            try:
                os.replace(tmp, path)
            except OSError as exc:
                raise OutputError(f"cannot write {path}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)


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
