"""Operators: read settings → ask the engine worker → build the scene → report (one line).

``prnet.reconstruct_photo`` and ``prnet.reconstruct_folder`` share one driver: a queue of photos
sent to the engine one at a time. Called from a script (``execute``, and always in background
mode) they block until done. Started from the UI (``invoke``) they run modal on a timer: the
status bar shows the stage, Esc cancels, Blender stays responsive, and a second start while one
runs is refused. Errors become one ``self.report`` line; a photo either appears complete or not
at all (:func:`.scene_build.build_photo` removes what it made if anything fails). No
``from __future__ import annotations``: Blender reads properties from class annotations.
"""

import os
import time
from pathlib import Path

import bpy
from bpy.props import StringProperty

from . import preferences, request, rig_operators, scene_build
from .engine_link import engine_module
from .properties import OPTION_NAMES, option_properties
from .result import FaceResult
from .rig_operators import RIG_OPTION_NAMES

TIMER_S = 0.1  # modal poll interval: smooth progress, negligible load
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")

P = engine_module("protocol")  # the worker protocol, shared with engine.worker
_running = None  # the operator instance that is talking to the engine, if any (one at a time)


def runs_blocking() -> bool:
    """Whether ``invoke`` runs to completion instead of modal: background mode has no event loop."""
    return bpy.app.background


def is_busy() -> bool:
    """Whether a reconstruction is running in this session (the panel greys its buttons out)."""
    return _running is not None


_ERROR_HINTS = {
    P.NO_FACE: "{msg}",
    P.BAD_INPUT: "Cannot use the photo: {msg}",
    P.NO_MODEL: "Model problem: {msg} (check Model Bundle in the add-on preferences)",
    P.CANCELLED: "Cancelled",
}


def claim(op) -> bool:
    """Make ``op`` the one operator talking to the engine; False when another one is."""
    global _running
    if _running is not None:
        return False
    _running = op
    return True


def release(op) -> None:
    """``op`` is done with the engine (a no-op when it was not the one)."""
    global _running
    if _running is op:
        _running = None


def option_value(op, context, name: str):
    """Operator ``op``'s argument ``name`` if the caller set it, else the scene's setting of that name."""
    return getattr(op, name) if op.properties.is_property_set(name) else getattr(context.scene.prnet, name)


def modal_event(op, event, context) -> str:
    """What a modal engine operator's timer loop does with ``event``: ``"esc"`` (cancel), ``"wait"``
    (pass the event through; on a timer tick the request is polled and its progress shown) or
    ``"done"`` (``op._req`` finished). ``op`` has ``_engine``, ``_req`` and ``_show_progress``."""
    if event.type == "ESC" and event.value == "PRESS":
        return "esc"
    if event.type != "TIMER":
        return "wait"
    if not op._engine.poll(op._req):
        op._show_progress(context)
        return "wait"
    return "done"


def error_line(exc: request.EngineClientError) -> str:
    """The one line the artist reads for an engine error."""
    text = str(exc)
    return _ERROR_HINTS.get(exc.kind, "Engine: {msg}").format(msg=text[:1].upper() + text[1:])


def _camera_note(built: scene_build.BuiltPhoto) -> str:
    """What the build changed in the scene beyond its collection: with Matched Camera, the scene camera
    and the render size (said, since they are the scene's, not the photo's)."""
    if built.camera is None:
        return ""
    scene = built.camera.users_scene[0] if built.camera.users_scene else None
    size = f", render size {scene.render.resolution_x}×{scene.render.resolution_y}" if scene is not None else ""
    return f"; scene camera set to {built.camera.name!r}{size}"


class _PhotoQueueOperator:
    """Mixin driving the engine over ``self.photos(context)``; subclasses only list the photos."""

    __annotations__ = option_properties()

    def photos(self, context) -> list[str]:
        raise NotImplementedError

    # -- shared setup -----------------------------------------------------------------------------
    def _option(self, context, name):
        return option_value(self, context, name)

    def _prepare(self, context) -> bool:
        o = {name: self._option(context, name) for name in OPTION_NAMES}
        self._request = {
            "quality": o["quality"],
            "texture_size": int(o["texture_size"]),
            "all_faces": o["all_faces"],
            "texture_mode": o["texture_mode"],
            "mouth": o["mouth"],
            "topology": o["topology"],
            "quad_cells": int(o["quad_cells"]),
            "device": o["device"],
            "bundle": preferences.bundle_override(context),
        }
        self._build = scene_build.BuildOptions(
            create_landmarks=o["create_landmarks"],
            apply_pose=o["apply_pose"],
            add_camera=o["add_camera"],
            origin=tuple(context.scene.cursor.location),  # a new head goes where the artist put the cursor
            pack_photo=o["pack_photo"],
            replace=not o["keep_previous"],
        )
        self._rig = {name: o[name] for name in RIG_OPTION_NAMES} if o["build_rig"] else None
        self._queue, self._built, self._failed, self._warnings = list(self.photos(context)), [], [], []
        if not self._queue:
            return False
        try:
            self._engine = preferences.engine_client(context)
        except request.EngineClientError as exc:
            self.report({"ERROR"}, error_line(exc))
            return False
        self._t0 = time.perf_counter()
        return True

    def _submit(self, photo: str) -> request.Request:
        self._photo = photo
        return self._engine.submit(P.RECONSTRUCT, photo=photo, options=self._request)

    def _collect(self, context, req: request.Request) -> None:
        """Turn a finished request into scene objects or a recorded failure."""
        try:
            reply = req.result()
        except request.EngineClientError as exc:
            self._failed.append((self._photo, exc))
            return
        try:
            faces = [
                FaceResult.from_reply(f, photo=self._photo, landmark_names=reply["landmark_names"])
                for f in reply["faces"]
            ]
            built = scene_build.build_photo(context, faces, self._build)
            if self._built and not built.replaced:  # a batch: beside the last photo, not on top of it
                scene_build.place_beside(built, self._built[-1])
            self._built.append(built)
            self._warnings += [f"{Path(self._photo).name}: {w}" for w in reply.get("warnings", [])]
            if self._rig is not None:
                for head in built.faces:
                    rig_operators.rig_head(context, head, **self._rig)
        except (ValueError, KeyError, RuntimeError) as exc:
            self._failed.append((self._photo, request.EngineClientError(f"could not build the result: {exc}")))
        finally:
            self._engine.release(reply)

    def _report_outcome(self) -> set:
        n_faces = sum(len(b.faces) for b in self._built)
        took = time.perf_counter() - self._t0
        if len(self._built) + len(self._failed) == 1:
            if self._failed:
                self.report({"ERROR"}, error_line(self._failed[0][1]))
                return {"CANCELLED"}
            built = self._built[0]
            n_vertices = len(built.faces[0].data.vertices)
            line = f"{built.collection.name}: {n_faces} face(s), {n_vertices} vertices, {took:.1f} s"
            replaced = " (replaced the photo's previous result; Ctrl+Z brings it back)" if built.replaced else ""
            warned = f"; warning: {self._warnings[0]}" if self._warnings else ""
            self.report({"WARNING"} if warned else {"INFO"}, line + replaced + _camera_note(built) + warned)
            return {"FINISHED"}
        summary = f"{len(self._built)} photo(s) reconstructed ({n_faces} faces) in {took:.1f} s"
        summary += _camera_note(self._built[-1]) if self._built else ""
        if self._failed:
            first_photo, first_exc = self._failed[0]
            summary += f"; {len(self._failed)} failed, first: {Path(first_photo).name}: {error_line(first_exc)}"
        self.report({"WARNING"} if self._failed else {"INFO"}, summary)
        return {"FINISHED"} if self._built else {"CANCELLED"}

    # -- scripts and background mode: blocking ----------------------------------------------------
    def execute(self, context):
        if _running is not None:
            return self._refuse()
        if not self._prepare(context):
            return {"CANCELLED"}
        for photo in self._queue:
            req = self._submit(photo)
            try:
                self._engine.wait(req)
            except request.EngineClientError:
                pass  # recorded by _collect
            self._collect(context, req)
        return self._report_outcome()

    # -- UI: modal on a timer ---------------------------------------------------------------------
    def invoke(self, context, event):
        if runs_blocking():
            return self.execute(context)
        if _running is not None:
            return self._refuse()
        if not self._prepare(context):
            return {"CANCELLED"}
        claim(self)
        self._req = self._submit(self._queue.pop(0))
        wm = context.window_manager
        self._timer = wm.event_timer_add(TIMER_S, window=context.window)
        wm.modal_handler_add(self)
        self._show_progress(context)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        try:
            return self._modal_step(context, event)
        except BaseException:
            self._end_modal(context)  # never leave the session "busy" behind an unexpected error
            raise

    def _modal_step(self, context, event):
        state = modal_event(self, event, context)
        if state == "esc":
            self._engine.cancel(self._req)
            self._queue.clear()
            self._end_modal(context)
            if self._built:  # keep the photos already built: they become this operator's undo step
                return self._report_outcome()
            self.report({"WARNING"}, "Reconstruction cancelled")
            return {"CANCELLED"}
        if state == "wait":
            return {"PASS_THROUGH"}
        self._collect(context, self._req)
        if self._queue:
            self._req = self._submit(self._queue.pop(0))
            self._show_progress(context)
            return {"PASS_THROUGH"}
        self._end_modal(context)
        return self._report_outcome()

    def cancel(self, context):  # Blender closes the window / file while running
        self._engine.cancel(self._req)
        self._end_modal(context)

    def _show_progress(self, context) -> None:
        done = len(self._built) + len(self._failed)
        total = done + len(self._queue) + 1
        count = f" (photo {done + 1}/{total})" if total > 1 else ""
        pct = int(100 * self._req.progress)
        context.workspace.status_text_set(
            f"PRNet: {Path(self._photo).name}{count} — {self._req.stage} {pct}% — Esc to cancel"
        )

    def _end_modal(self, context) -> None:
        release(self)
        if getattr(self, "_timer", None) is not None:
            context.window_manager.event_timer_remove(self._timer)
            self._timer = None
            context.workspace.status_text_set(None)

    def _refuse(self):
        self.report({"WARNING"}, "PRNet is still working on a photo: wait for it, or press Esc to cancel it")
        return {"CANCELLED"}


class PRNET_OT_reconstruct_photo(_PhotoQueueOperator, bpy.types.Operator):
    """Reconstruct a textured 3D face with landmarks and head pose from one photo"""

    bl_idname = "prnet.reconstruct_photo"
    bl_label = "Reconstruct from Photo"
    bl_options = {"REGISTER", "UNDO"}

    filepath: StringProperty(name="Photo", subtype="FILE_PATH", options={"SKIP_SAVE"})

    def photos(self, context):
        path = self.filepath or context.scene.prnet.filepath
        if not path:
            self.report({"ERROR"}, "Choose a photo first")
            return []
        return [os.path.abspath(bpy.path.abspath(path))]  # "//" → the .blend's folder; the worker has another cwd

    def invoke(self, context, event):
        if not (self.filepath or context.scene.prnet.filepath) and not runs_blocking():
            bpy.ops.prnet.import_face_photo("INVOKE_DEFAULT")  # no photo yet: the file browser (pickers.py)
            return {"CANCELLED"}
        return super().invoke(context, event)


class PRNET_OT_reconstruct_folder(_PhotoQueueOperator, bpy.types.Operator):
    """Reconstruct every photo in a folder (each into its own collection)"""

    bl_idname = "prnet.reconstruct_folder"
    bl_label = "Reconstruct Folder"
    bl_options = {"REGISTER", "UNDO"}

    directory: StringProperty(name="Folder", subtype="DIR_PATH", options={"SKIP_SAVE"})

    def photos(self, context):
        raw = self.directory or context.scene.prnet.folder
        if not raw:
            self.report({"ERROR"}, "Choose a folder first")
            return []
        folder = Path(os.path.abspath(bpy.path.abspath(raw)))
        if not folder.is_dir():
            self.report({"ERROR"}, f"Not a folder: {folder}")
            return []
        found = sorted(str(p) for p in folder.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES and p.is_file())
        if not found:
            self.report({"ERROR"}, f"No photos ({', '.join(PHOTO_SUFFIXES)}) in {folder}")
        return found
