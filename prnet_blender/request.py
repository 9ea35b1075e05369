"""One request to the engine worker, and the ways a request can fail, as the add-on reports them.

Each error's ``kind`` is one of the worker protocol's error kinds (engine.protocol.ERROR_KINDS) or one
of the add-on's own (``no_engine``, ``crashed``, ``timeout``). No bpy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .engine_link import engine_module

P = engine_module("protocol")  # the worker protocol, shared with engine.worker


class EngineClientError(Exception):
    """Base of the errors the add-on shows; ``kind`` is one of the worker protocol's error kinds
    (engine.protocol.ERROR_KINDS) or one of the add-on's own below (no_engine, crashed, timeout)."""

    kind = P.INTERNAL


class EngineUnavailable(EngineClientError):
    """No usable engine interpreter (missing, or without torch & co.)."""

    kind = "no_engine"


class EngineCrashed(EngineClientError):
    """The worker process exited while a request was pending; the next request starts a fresh one."""

    kind = "crashed"


class EngineTimeout(EngineClientError):
    kind = "timeout"


class EngineCancelled(EngineClientError):
    kind = P.CANCELLED


class RequestFailed(EngineClientError):
    """The worker answered ``ok: false``; ``kind`` is the worker's (no_face, bad_input, no_model, …)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


# -- requests ----------------------------------------------------------------------------------------
@dataclass
class Request:
    """One request in flight. ``reply`` or ``error`` is set once it is done."""

    id: int
    cmd: str
    timeout_s: float
    deadline: float  # time.monotonic() value
    progress: float = 0.0
    stage: str = "starting engine"
    reply: dict | None = None
    error: EngineClientError | None = None
    on_progress: Callable[[float, str], None] | None = field(default=None, repr=False)
    renew_on_progress: bool = False  # the timeout counts from the last progress message (a long video)

    @property
    def done(self) -> bool:
        return self.reply is not None or self.error is not None

    def result(self) -> dict:
        """The successful reply, or raise the request's error."""
        if self.error is not None:
            raise self.error
        if self.reply is None:
            raise RuntimeError(f"request {self.id} ({self.cmd}) is still running")
        return self.reply


def crash_error(why: str, code: int | None, python: str, log: list[str]) -> EngineClientError:
    """The error of requests whose worker exited with ``code``: the engine Python lacks a package (its
    log names it, or the protocol's exit code says so), or it crashed (its last log line)."""
    missing = next((line for line in reversed(log) if "No module named" in line), None)
    if missing is not None or code == P.EXIT_MISSING_PACKAGES:
        missing = missing or "torch, numpy, OpenCV or SciPy missing"
        return EngineUnavailable(
            f"the engine Python {python} cannot run the engine ({missing.strip()}): install the engine in the "
            "add-on preferences or choose a Python with torch"
        )
    last = next((line.strip() for line in reversed(log) if line.strip()), "no log")
    return EngineCrashed(f"{why} (code {code}): {last}; the next request starts a fresh one")
