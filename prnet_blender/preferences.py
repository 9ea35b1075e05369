"""Add-on preferences: the Python that runs the engine, the model bundle, the request timeout, and
an optional "Install engine" that makes that Python for the artist.

The engine needs torch; Blender's own Python usually lacks it, and the add-on never installs into
Blender. Default interpreter (see :func:`.interpreter.find_engine_python`): the one set here →
``$PRNET_ENGINE_PYTHON`` → Blender's own Python if it has the engine's packages → the environment
"Install engine" made under the extension's user folder → a ``.venv`` beside the engine (a repo
checkout). "Install engine" runs when Blender may go online (``bpy.app.online_access``) or an offline wheel
folder is set: :mod:`.engine_install` runs ``python -m venv`` and ``pip install`` in subprocesses,
the UI stays live, Esc cancels, and a failed install leaves nothing. No
``from __future__ import annotations``: Blender reads properties from class annotations.
"""

from pathlib import Path

import bpy
from bpy.props import FloatProperty, StringProperty

from . import client, engine_install, engine_link, interpreter, request

ENGINE_ENV_DIR = "engine_env"  # under the extension's user folder
INSTALL_POLL_S = 0.5  # how often the install operator looks at its subprocess


def addon_preferences(context) -> "PRNET_AddonPreferences":
    return context.preferences.addons[__package__].preferences


def has_offline_wheels(context) -> bool:
    """Whether an Offline Wheels folder is set (False where the add-on's preferences are not registered)."""
    try:
        return bool(addon_preferences(context).wheel_folder)
    except KeyError:
        return False


def user_folder(path: str = "", *, create: bool = False) -> Path:
    """The extension's writable user folder (or a Blender user data folder when run from source)."""
    try:
        return Path(bpy.utils.extension_path_user(__package__, path=path, create=create))
    except ValueError:  # registered as a plain add-on module, not an extension
        return Path(bpy.utils.user_resource("DATAFILES", path=str(Path("prnet_blender") / path), create=create))


def engine_python(context) -> str:
    """The interpreter the engine runs with; raises request.EngineUnavailable saying how to fix it."""
    prefs = addon_preferences(context)
    return interpreter.find_engine_python(bpy.path.abspath(prefs.python_path), extra_envs=[user_folder(ENGINE_ENV_DIR)])


def engine_client(context) -> client.EngineClient:
    """The session's engine client, set up from the preferences (the worker starts on first use)."""
    prefs = addon_preferences(context)
    root = interpreter.engine_root()
    if root is None:
        raise request.EngineUnavailable("the engine folder is missing from the add-on: reinstall the extension")
    return client.shared_client(engine_python(context), root=root, timeout_s=prefs.timeout_s)


def bundle_override(context) -> str | None:
    """The model bundle folder set in the preferences, or None for the shipped model."""
    path = addon_preferences(context).bundle_path
    return bpy.path.abspath(path) if path else None


class PRNET_AddonPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    python_path: StringProperty(
        name="Engine Python",
        subtype="FILE_PATH",
        description="Python interpreter with torch that runs the engine (empty: found automatically)",
    )
    bundle_path: StringProperty(
        name="Model Bundle",
        subtype="DIR_PATH",
        description="Folder of a model bundle to use instead of the shipped model (e.g. imported PRNet weights)",
    )
    wheel_folder: StringProperty(
        name="Offline Wheels",
        subtype="DIR_PATH",
        description="A folder of wheel files (torch, numpy, opencv-python-headless, scipy) for Install Engine "
        "without internet (see the README)",
    )
    timeout_s: FloatProperty(
        name="Timeout",
        default=client.DEFAULT_TIMEOUT_S,
        min=10.0,
        max=3600.0,
        unit="TIME_ABSOLUTE",
        description="Give up on a photo after this many seconds (the engine is then restarted)",
    )

    def draw(self, context):
        layout = self.layout
        layout.prop(self, "python_path")
        try:
            layout.label(text=f"Engine runs with: {engine_python(context)}", icon="CHECKMARK")
        except request.EngineUnavailable as exc:
            layout.label(text=str(exc), icon="ERROR")
        layout.prop(self, "bundle_path")
        folder = bpy.path.abspath(self.bundle_path) if self.bundle_path else engine_link.shipped_bundle_dir()
        summary = engine_link.bundle_summary(folder)
        if summary is None:
            layout.label(
                text="No model: set Model Bundle to a bundle folder (e.g. imported PRNet weights)", icon="ERROR"
            )
        else:
            name, licence = summary
            layout.label(text=f"Model: {name}", icon="INFO")
            layout.label(text=f"Model licence: {licence.split(' (')[0]} (the add-on's code: GPL-3.0-or-later)")
        layout.prop(self, "timeout_s")
        layout.prop(self, "wheel_folder")
        row = layout.row()
        row.operator(PRNET_OT_check_engine.bl_idname, icon="PLUGIN")
        if bpy.app.online_access or self.wheel_folder:
            row.operator(PRNET_OT_install_engine.bl_idname, icon="IMPORT")
        else:
            layout.label(
                text="Allow Online Access (Preferences › System) or set Offline Wheels to install the engine here",
                icon="INFO",
            )


class PRNET_OT_check_engine(bpy.types.Operator):
    """Start the engine and report its torch version and GPU"""

    bl_idname = "prnet.check_engine"
    bl_label = "Check Engine"

    def execute(self, context):
        try:
            engine = engine_client(context)
            reply = engine.call(client.P.PING)
        except request.EngineClientError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        gpu = "CUDA available" if reply.get("cuda") else "no CUDA GPU"
        self.report({"INFO"}, f"Engine ready: {engine.python}, torch {reply.get('torch')}, {gpu}")
        return {"FINISHED"}


class PRNET_OT_install_engine(bpy.types.Operator):
    """Create a Python environment for the engine in the add-on's user folder and pip-install torch,
    NumPy, OpenCV and SciPy (online: about 1 GB to download on Linux unless pip is set up for the CPU
    build of torch; offline: from the Offline Wheels folder). Esc cancels; a failed or cancelled
    install leaves nothing"""

    bl_idname = "prnet.install_engine"
    bl_label = "Install Engine"

    @classmethod
    def poll(cls, context):
        return bpy.app.online_access or has_offline_wheels(context)

    def invoke(self, context, event):
        folder = addon_preferences(context).wheel_folder
        wheels = Path(bpy.path.abspath(folder)) if folder else None
        if wheels is not None and not wheels.is_dir():
            self.report({"ERROR"}, f"Offline Wheels is not a folder: {wheels}")
            return {"CANCELLED"}
        self._installer = engine_install.Installer(user_folder(ENGINE_ENV_DIR, create=True), wheel_folder=wheels)
        self._installer.start()
        self._timer = context.window_manager.event_timer_add(INSTALL_POLL_S, window=context.window)
        context.window_manager.modal_handler_add(self)
        self._show(context)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        installer = self._installer
        if event.type == "ESC" and event.value == "PRESS":
            installer.cancel()
            return self._finish(context, {"WARNING"}, "Engine install cancelled (nothing was kept)")
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        state = installer.poll()
        if state == "running":
            self._show(context)
            return {"PASS_THROUGH"}
        if state == "failed":
            line = installer.last_log_line()
            return self._finish(context, {"ERROR"}, f"Engine install: {installer.stage} ({line}); log: {installer.log}")
        client.shutdown()  # the next click starts the worker with the new Python
        return self._finish(context, {"INFO"}, f"Engine installed in {installer.env_dir}")

    def _show(self, context) -> None:
        context.workspace.status_text_set(f"PRNet: installing the engine — {self._installer.progress()} — Esc cancels")

    def _finish(self, context, level, message):
        context.window_manager.event_timer_remove(self._timer)
        context.workspace.status_text_set(None)
        self.report(level, message)
        return {"FINISHED"} if "INFO" in level else {"CANCELLED"}
