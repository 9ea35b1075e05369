"""The add-on's side of the engine worker: start it, talk to it, notice when it dies, stop it.

Blender never imports torch. The engine runs as ``python -m engine.worker`` in a separate process
(see that module for the JSON-lines protocol), so a crash or a CUDA problem cannot take Blender
down, and Blender's own Python needs nothing installed. One :class:`EngineClient` per Blender
session keeps one worker — and its loaded model — warm; :func:`shared_client` hands it out and
:func:`shutdown` (on unregister and at exit) stops it. Which interpreter runs the worker is
:mod:`.interpreter`'s business.

Threads: a reader thread turns the worker's stdout lines into messages on a queue, another keeps
the last lines of its stderr (the worker's log, quoted when it dies). Everything else — sending,
dispatching replies by id, deadlines — runs on the caller's thread, so Blender's main thread can
poll from a modal timer without locks around bpy. This module imports no bpy.
"""

from __future__ import annotations

import atexit
import itertools
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from collections import deque
from pathlib import Path

from .engine_link import engine_module
from .request import (
    EngineCancelled,
    EngineTimeout,
    EngineUnavailable,
    Request,
    RequestFailed,
    crash_error,
)

P = engine_module("protocol")  # the worker protocol, shared with engine.worker

DEFAULT_TIMEOUT_S = 180.0  # per request, from submit to reply: process start + model load + a 4k texture on CPU
STOP_GRACE_S = 3.0  # after "shutdown"/EOF, before the worker is killed
STDERR_KEEP_LINES = 40  # worker log lines kept for error messages
POLL_S = 0.05  # blocking waits check the deadline this often


class EngineClient:
    """One worker process and its pending requests."""

    def __init__(self, python: str, *, root: str | Path, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.python = str(python)
        self.root = Path(root)
        self.timeout_s = float(timeout_s)
        self.workdir = Path(tempfile.mkdtemp(prefix="prnet_engine_"))
        self._proc: subprocess.Popen | None = None
        self._inbox: queue.Queue = queue.Queue()
        self._stderr: deque[str] = deque(maxlen=STDERR_KEEP_LINES)
        self._stderr_thread: threading.Thread | None = None
        self._pending: dict[int, Request] = {}
        self._abandoned: set[int] = set()  # cancelled or timed-out ids whose late replies are dropped
        self._ids = itertools.count(1)

    # -- process ----------------------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def busy(self) -> bool:
        return bool(self._pending)

    def start(self) -> None:
        """Start the worker unless it runs; a dead one is replaced (its pending requests fail)."""
        if self.alive:
            return
        self._reap("the engine process had exited")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(self.root), *filter(None, [env.get("PYTHONPATH")])])
        env["PYTHONIOENCODING"] = "utf-8"
        flags = getattr(subprocess, "CREATE_NO_WINDOW", 0)  # no console window on Windows
        try:
            proc = subprocess.Popen(
                [self.python, "-m", "engine.worker", "--workdir", str(self.workdir)],
                cwd=self.root, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True, encoding="utf-8", bufsize=1, creationflags=flags,
            )  # fmt: skip
        except OSError as exc:
            raise EngineUnavailable(f"cannot start the engine Python {self.python}: {exc}") from exc
        self._proc, self._inbox = proc, queue.Queue()
        self._stderr.clear()
        threading.Thread(target=_read_stdout, args=(proc, self._inbox), daemon=True).start()
        self._stderr_thread = threading.Thread(target=_read_stderr, args=(proc, self._stderr), daemon=True)
        self._stderr_thread.start()

    def stop(self) -> None:
        """Ask the worker to exit (close its stdin), kill it after a grace period, delete the workdir."""
        proc, self._proc = self._proc, None
        if proc is not None:
            _close_quietly(proc.stdin)
            try:
                proc.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(STOP_GRACE_S)
            for stream in (proc.stdout, proc.stderr):
                _close_quietly(stream)
        for req in self._pending.values():
            req.error = EngineCancelled("the engine was stopped")
        self._pending.clear()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def kill(self) -> None:
        """Kill the worker now (tests and stuck workers); pending requests fail as crashed."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(STOP_GRACE_S)

    # -- requests ---------------------------------------------------------------------------------
    def submit(
        self, cmd: str, *, timeout_s: float | None = None, on_progress=None, renew_on_progress: bool = False, **payload
    ) -> Request:
        """Send a request and return at once; drive it with :meth:`poll` or :meth:`wait`. With
        ``renew_on_progress`` the timeout runs from the last progress message, not from the start
        (a request whose length depends on its input, such as a video's)."""
        self.start()
        rid = next(self._ids)
        timeout = self.timeout_s if timeout_s is None else timeout_s
        req = Request(
            id=rid, cmd=cmd, timeout_s=timeout, deadline=time.monotonic() + timeout, on_progress=on_progress,
            renew_on_progress=renew_on_progress,
        )  # fmt: skip
        try:
            self._proc.stdin.write(json.dumps({"id": rid, "cmd": cmd, **payload}) + "\n")
            self._proc.stdin.flush()
        except (OSError, ValueError):  # broken pipe / closed file: the worker died
            self._pending[rid] = req
            self._reap("the engine process exited")
            return req
        self._pending[rid] = req
        return req

    def poll(self, req: Request) -> bool:
        """Handle every message that arrived; True once ``req`` is done (then see ``req.result()``)."""
        self._pump()
        if not req.done and time.monotonic() > req.deadline:
            self._pending.pop(req.id, None)
            req.error = EngineTimeout(
                f"the engine did not answer within {req.timeout_s:.0f} s ({req.stage}); it was stopped and the "
                "next request starts a fresh one"
            )
            self.kill()
            self._pump()
        return req.done

    def wait(self, req: Request) -> dict:
        """Block until ``req`` is done; its reply, or raise its error."""
        while not self.poll(req):
            try:
                self._dispatch(self._inbox.get(timeout=POLL_S))
            except queue.Empty:
                pass
        return req.result()

    def call(self, cmd: str, **kwargs) -> dict:
        """Blocking request: submit and wait."""
        return self.wait(self.submit(cmd, **kwargs))

    def cancel(self, req: Request) -> None:
        """Abandon ``req``: the worker stops at its next stage and its files are deleted."""
        if req.done:
            return
        self._pending.pop(req.id, None)
        self._abandoned.add(req.id)
        req.error = EngineCancelled("cancelled")
        if self.alive:
            try:
                self._proc.stdin.write(json.dumps({"id": next(self._ids), "cmd": P.CANCEL, "target": req.id}) + "\n")
                self._proc.stdin.flush()
            except (OSError, ValueError):
                pass

    def release(self, reply: dict) -> None:
        """Delete the files of a reconstruct reply once they have been read."""
        for face in reply.get("faces", ()):
            folder = Path(face["npz"]).parent
            if folder.parent == self.workdir:
                shutil.rmtree(folder, ignore_errors=True)

    def last_log(self, lines: int = 1) -> str:
        """The worker's last stderr lines (its log, or a traceback's last line)."""
        return " | ".join(list(self._stderr)[-lines:])

    # -- internals --------------------------------------------------------------------------------
    def _pump(self) -> None:
        while True:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return
            self._dispatch(item)

    def _dispatch(self, item: tuple[str, object]) -> None:
        what, msg = item
        if what == "exit":
            self._reap("the engine process exited")
            return
        rid = msg.get("id")
        req = self._pending.get(rid)
        if req is None:
            if rid in self._abandoned and "ok" in msg:
                self._abandoned.discard(rid)
                self.release(msg)
            return
        if "progress" in msg:
            req.progress, req.stage = float(msg["progress"]), str(msg.get("stage", ""))
            if req.renew_on_progress:
                req.deadline = time.monotonic() + req.timeout_s
            if req.on_progress is not None:
                req.on_progress(req.progress, req.stage)
        elif "ok" in msg:
            del self._pending[rid]
            if msg["ok"]:
                req.reply = msg
            else:
                req.error = RequestFailed(str(msg.get("kind", P.INTERNAL)), str(msg.get("error", "engine error")))

    def _reap(self, why: str) -> None:
        """Fail every pending request after the worker died, with the reason its log gives."""
        if not self._pending:
            return
        proc = self._proc
        if proc is not None:
            try:
                proc.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                proc.kill()
        if self._stderr_thread is not None:
            self._stderr_thread.join(STOP_GRACE_S)  # until the traceback's last lines are in
        code = None if proc is None else proc.returncode
        error = crash_error(why, code, self.python, list(self._stderr))
        for req in self._pending.values():
            req.error = error
        self._pending.clear()


def _read_stdout(proc: subprocess.Popen, inbox: queue.Queue) -> None:
    for line in proc.stdout:
        try:
            msg = json.loads(line)
        except ValueError:
            continue  # not protocol: ignored (the worker sends its log to stderr)
        if isinstance(msg, dict):
            inbox.put(("msg", msg))
    inbox.put(("exit", None))


def _read_stderr(proc: subprocess.Popen, lines: deque) -> None:
    for line in proc.stderr:
        lines.append(line.rstrip("\n"))


def _close_quietly(stream) -> None:
    try:
        if stream is not None:
            stream.close()
    except OSError:
        pass


# -- the session's client ----------------------------------------------------------------------------
_shared: EngineClient | None = None
_atexit_registered = False


def shared_client(python: str, *, root: str | Path, timeout_s: float = DEFAULT_TIMEOUT_S) -> EngineClient:
    """The session's client; replaced when the interpreter or engine folder changes."""
    global _shared, _atexit_registered
    if _shared is not None and (_shared.python != str(python) or _shared.root != Path(root)):
        _shared.stop()
        _shared = None
    if _shared is None:
        if not _atexit_registered:
            atexit.register(shutdown)
            _atexit_registered = True
        _shared = EngineClient(python, root=root, timeout_s=timeout_s)
    _shared.timeout_s = float(timeout_s)
    return _shared


def current_client() -> EngineClient | None:
    return _shared


def shutdown() -> None:
    """Stop the session's worker (unregister, Blender exit)."""
    global _shared
    if _shared is not None:
        _shared.stop()
        _shared = None
