"""Track Video: a video → an animated head, through the engine worker's ``track`` request (.track_build).

From the UI it runs modal on a timer (the status bar shows the frame and frames per second, Esc
cancels and nothing is built); from a script or in background mode it blocks. It shares the
one-at-a-time rule of the photo operators (.operators.claim). The per-frame mesh, when asked for,
is written by the worker as a PC2 file in ``prnet_cache`` beside the saved .blend (else beside the
video), never over an existing file. No ``from __future__ import annotations``: Blender reads
properties from class annotations.
"""

import os
import time
from pathlib import Path

import bpy
from bpy.props import StringProperty

from . import operators, preferences, request, track_build
from .engine_link import engine_module
from .frames import AXES, MM_TO_M
from .properties import TRACK_OPTION_NAMES, track_properties
from .result import FaceResult, TrackResult

P = engine_module("protocol")
CACHE_FOLDER = "prnet_cache"
TRACK_STALL_S = 180.0  # the engine must report a frame (or load the model) within this time


def cache_path(video: str) -> Path:
    """A new PC2 file name for ``video``'s mesh cache (an existing file is never reused)."""
    base = Path(bpy.path.abspath("//")) if bpy.data.filepath else Path(video).parent
    folder = base / CACHE_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    stem, k = Path(video).stem or "video", 1
    while (folder / (f"{stem}.pc2" if k == 1 else f"{stem}_{k}.pc2")).exists():
        k += 1
    return folder / (f"{stem}.pc2" if k == 1 else f"{stem}_{k}.pc2")


class TrackVideo:
    """Track Video's behaviour (the registered operator below adds Blender's class attributes)."""

    def _prepare(self, context) -> bool:
        raw = self.filepath or context.scene.prnet.video
        if not raw:
            self.report({"ERROR"}, "Choose a video first (Video in the Face panel)")
            return False
        self._video = os.path.abspath(bpy.path.abspath(raw))
        o = {name: operators.option_value(self, context, name) for name in TRACK_OPTION_NAMES}
        settings = context.scene.prnet
        self._options = {
            "start": float(o["track_start"]), "end": float(o["track_end"]) or None, "every": int(o["track_every"]),
            "fast": bool(o["track_fast"]), "texture_size": int(settings.texture_size), "device": settings.device,
            "bundle": preferences.bundle_override(context),
        }  # fmt: skip
        if o["track_mesh_cache"]:
            try:
                self._options["mesh_cache"] = str(cache_path(self._video))
            except OSError as exc:
                self.report({"ERROR"}, f"Cannot write the mesh cache folder: {exc}")
                return False
            self._options["mesh_cache_axes"] = (AXES * MM_TO_M).tolist()  # canonical mm → the head's metres
        self._build = track_build.TrackBuildOptions(
            origin=tuple(context.scene.cursor.location), replace=not settings.keep_previous,
            mesh_cache=bool(o["track_mesh_cache"]),
        )  # fmt: skip
        try:
            self._engine = preferences.engine_client(context)
        except request.EngineClientError as exc:
            self.report({"ERROR"}, operators.error_line(exc))
            return False
        self._t0 = time.perf_counter()
        return True

    def _submit(self) -> request.Request:
        return self._engine.submit(
            P.TRACK, video=self._video, options=self._options, timeout_s=TRACK_STALL_S, renew_on_progress=True
        )

    def _finish(self, context, req: request.Request) -> set:
        try:
            reply = req.result()
        except request.EngineClientError as exc:
            self.report({"ERROR"}, operators.error_line(exc))
            return {"CANCELLED"}
        try:
            face = FaceResult.from_reply(reply["faces"][0], photo=self._video, landmark_names=reply["landmark_names"])
            track = TrackResult.from_reply(reply, video=self._video)
            built = track_build.build_track(context, face, track, self._build)
        except (ValueError, KeyError, RuntimeError) as exc:
            self.report({"ERROR"}, f"Could not build the tracked head: {exc}")
            return {"CANCELLED"}
        finally:
            self._engine.release(reply)
        took = time.perf_counter() - self._t0
        gaps = reply["frames"] - reply["found"]
        line = (
            f"{built.collection.name}: {reply['frames']} frames tracked in {took:.1f} s "
            f"({reply['frames'] / max(took, 1e-9):.1f} frames/s), face in {reply['found']}"
            + (f", {gaps} gap(s) hold the last pose" if gaps else "")
            + f"; scene camera, frame range and {context.scene.render.fps} fps set from the video"
        )
        self.report({"INFO"}, line)
        return {"FINISHED"}

    def execute(self, context):
        if operators.is_busy():
            self.report({"WARNING"}, "PRNet is still working: wait for it, or press Esc to cancel it")
            return {"CANCELLED"}
        if not self._prepare(context):
            return {"CANCELLED"}
        req = self._submit()
        try:
            self._engine.wait(req)
        except request.EngineClientError:
            pass  # reported by _finish
        return self._finish(context, req)

    def invoke(self, context, event):
        if operators.runs_blocking():
            return self.execute(context)
        if not operators.claim(self):
            self.report({"WARNING"}, "PRNet is still working: wait for it, or press Esc to cancel it")
            return {"CANCELLED"}
        if not self._prepare(context):
            operators.release(self)
            return {"CANCELLED"}
        self._req = self._submit()
        wm = context.window_manager
        self._timer = wm.event_timer_add(operators.TIMER_S, window=context.window)
        wm.modal_handler_add(self)
        self._show_progress(context)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        try:
            state = operators.modal_event(self, event, context)
            if state == "esc":
                self._engine.cancel(self._req)
                self._end(context)
                self.report({"WARNING"}, "Tracking cancelled")
                return {"CANCELLED"}
            if state == "wait":
                return {"PASS_THROUGH"}
            self._end(context)
            return self._finish(context, self._req)
        except BaseException:
            self._end(context)
            raise

    def cancel(self, context):
        self._engine.cancel(self._req)
        self._end(context)

    def _show_progress(self, context) -> None:
        pct = int(100 * self._req.progress)
        context.workspace.status_text_set(f"PRNet: {Path(self._video).name} — {self._req.stage} {pct}% — Esc to cancel")

    def _end(self, context) -> None:
        operators.release(self)
        if getattr(self, "_timer", None) is not None:
            context.window_manager.event_timer_remove(self._timer)
            self._timer = None
            context.workspace.status_text_set(None)


class PRNET_OT_track_video(TrackVideo, bpy.types.Operator):
    """Track the face through a video: a head keyed per frame (pose, landmarks), over the footage"""

    bl_idname = "prnet.track_video"
    bl_label = "Track Video"
    bl_options = {"REGISTER", "UNDO"}

    filepath: StringProperty(name="Video", subtype="FILE_PATH", options={"SKIP_SAVE"})
    __annotations__.update(track_properties())
