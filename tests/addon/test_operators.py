"""The operators' UI path (modal, timer, Esc, refusing a second start) driven in this process.

Background bpy has no event loop, so the test plays the window manager: it calls ``invoke`` and
then ``modal`` with timer and Esc events, on an operator object built from the same mixin as the
registered operators, with a real engine worker (mean-face bundle) and the real scene builder.
The registered operators themselves run end to end in test_extension.py.
"""

from __future__ import annotations

import sys
import time
from types import SimpleNamespace

import pytest
from addon_env import NO_BPY_REASON, REPO

bpy = pytest.importorskip("bpy", reason=NO_BPY_REASON)

from prnet_blender import client, operators, preferences, properties, track_operators  # noqa: E402

MODAL_TIMEOUT_S = 120.0  # the shared CI machine is slow; a warm worker answers in ≈ 2 s


class FakeWindowManager:
    def __init__(self):
        self.timers, self.handlers = [], []

    def event_timer_add(self, step, window=None):
        self.timers.append(step)
        return step

    def event_timer_remove(self, timer):
        self.timers.remove(timer)

    def modal_handler_add(self, op):
        self.handlers.append(op)


class FakeWorkspace:
    def __init__(self):
        self.status = []

    def status_text_set(self, text):
        self.status.append(text)


class Recording:
    """What Blender gives a running operator, minus registration: no argument set by the caller,
    and reports collected."""

    def __init__(self):
        self.reports = []
        self.properties = SimpleNamespace(is_property_set=lambda name: False)

    def report(self, level, message):
        self.reports.append((set(level), message))


class PhotoOperator(Recording, operators._PhotoQueueOperator):
    """The photo operators' mixin as Blender would run it."""

    def __init__(self, photo):
        super().__init__()
        self.photo = str(photo)

    def photos(self, context):
        return [self.photo]


@pytest.fixture
def ui(monkeypatch, mean_face_bundle):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.utils.register_class(properties.PRNET_PG_settings)
    properties.register_settings()
    bpy.context.scene.prnet.texture_size = "512"
    engine = client.EngineClient(sys.executable, root=REPO, timeout_s=MODAL_TIMEOUT_S)
    monkeypatch.setattr(operators, "runs_blocking", lambda: False)
    monkeypatch.setattr(preferences, "engine_client", lambda context: engine)
    monkeypatch.setattr(preferences, "bundle_override", lambda context: str(mean_face_bundle))
    context = SimpleNamespace(
        scene=bpy.context.scene, view_layer=bpy.context.view_layer, window=None,
        window_manager=FakeWindowManager(), workspace=FakeWorkspace(),
    )  # fmt: skip
    yield context
    engine.stop()
    properties.unregister_settings()
    bpy.utils.unregister_class(properties.PRNET_PG_settings)
    bpy.ops.wm.read_factory_settings(use_empty=True)


def _event(kind, value="NOTHING"):
    return SimpleNamespace(type=kind, value=value)


def test_modal_run_shows_progress_refuses_a_second_start_and_builds(ui, sample_photo):
    op = PhotoOperator(sample_photo)
    assert op.invoke(ui, _event("NONE")) == {"RUNNING_MODAL"} and operators.is_busy()
    second = PhotoOperator(sample_photo)
    assert second.invoke(ui, _event("NONE")) == {"CANCELLED"}
    assert second.reports[0][0] == {"WARNING"} and "still working" in second.reports[0][1]
    assert op.modal(ui, _event("MOUSEMOVE")) == {"PASS_THROUGH"}  # the UI stays live
    deadline = time.monotonic() + MODAL_TIMEOUT_S
    while (state := op.modal(ui, _event("TIMER"))) == {"PASS_THROUGH"} and time.monotonic() < deadline:
        time.sleep(operators.TIMER_S)
    assert state == {"FINISHED"} and not operators.is_busy()
    assert op.reports[-1][0] == {"INFO"} and op.reports[-1][1].startswith("astronaut: 1 face(s)")
    assert "scene camera set to 'astronaut camera', render size 512×512" in op.reports[-1][1]
    assert "Esc to cancel" in ui.workspace.status[0] and ui.workspace.status[-1] is None
    assert not ui.window_manager.timers and "astronaut" in bpy.data.objects


def test_esc_cancels_and_leaves_the_scene_as_it_was(ui, sample_photo):
    before = len(bpy.data.objects)
    op = PhotoOperator(sample_photo)
    op.invoke(ui, _event("NONE"))
    assert op.modal(ui, _event("ESC", "PRESS")) == {"CANCELLED"}
    assert op.reports == [({"WARNING"}, "Reconstruction cancelled")] and not operators.is_busy()
    assert len(bpy.data.objects) == before and not ui.window_manager.timers and ui.workspace.status[-1] is None


class TrackOperator(Recording, track_operators.TrackVideo):
    """Track Video as Blender would run it."""

    def __init__(self, video):
        super().__init__()
        self.filepath = str(video)


@pytest.fixture
def still_video(tmp_path, sample_photo):
    sys.path.insert(0, str(REPO / "tests"))
    from video_clips import still_clip

    from engine.image_io import load_image

    path = tmp_path / "still.avi"
    still_clip(path, load_image(sample_photo), (224.0, 126.0), 4)
    return path


def test_track_video_runs_modal_with_frames_in_the_status_bar(ui, still_video):
    op = TrackOperator(still_video)
    assert op.invoke(ui, _event("NONE")) == {"RUNNING_MODAL"} and operators.is_busy()
    assert PhotoOperator(still_video).invoke(ui, _event("NONE")) == {"CANCELLED"}  # one at a time
    deadline = time.monotonic() + MODAL_TIMEOUT_S
    while (state := op.modal(ui, _event("TIMER"))) == {"PASS_THROUGH"} and time.monotonic() < deadline:
        time.sleep(operators.TIMER_S)
    assert state == {"FINISHED"} and not operators.is_busy(), op.reports
    assert op.reports[-1][1].startswith("still: 4 frames tracked")
    assert any("frame" in text and "frames/s" in text for text in ui.workspace.status if text)
    head = bpy.data.objects["still"]
    assert head.animation_data.action is not None and ui.workspace.status[-1] is None


def test_esc_cancels_tracking_and_builds_nothing(ui, still_video):
    before = len(bpy.data.objects)
    op = TrackOperator(still_video)
    op.invoke(ui, _event("NONE"))
    assert op.modal(ui, _event("ESC", "PRESS")) == {"CANCELLED"}
    assert op.reports == [({"WARNING"}, "Tracking cancelled")] and not operators.is_busy()
    assert len(bpy.data.objects) == before and not ui.window_manager.timers


def test_the_image_editors_photo_becomes_the_photo_to_reconstruct(sample_photo):
    """Registers the whole add-on from source (the classes tuple), then uses an Image Editor's image."""
    import prnet_blender
    from prnet_blender.pickers import import_menu_entry

    bpy.ops.wm.read_factory_settings(use_empty=True)
    prnet_blender.register()
    try:
        assert import_menu_entry in bpy.types.TOPBAR_MT_file_import._dyn_ui_initialize()  # File › Import
        assert bpy.ops.prnet.import_face_photo.poll()
        window = bpy.context.window_manager.windows[0]
        area = window.screen.areas[0]
        area.type = "IMAGE_EDITOR"
        area.spaces.active.image = bpy.data.images.load(str(sample_photo))
        with bpy.context.temp_override(window=window, screen=window.screen, area=area):
            assert bpy.ops.prnet.use_editor_image() == {"FINISHED"}
            assert bpy.context.scene.prnet.filepath == str(sample_photo)
            area.spaces.active.image = bpy.data.images.new("generated", 4, 4)
            with pytest.raises(RuntimeError, match="no file on disk"):
                bpy.ops.prnet.use_editor_image()
    finally:
        prnet_blender.unregister()
        bpy.ops.wm.read_factory_settings(use_empty=True)
    assert "prnet" not in bpy.types.Scene.bl_rna.properties  # unregister removed the settings
    assert import_menu_entry not in bpy.types.TOPBAR_MT_file_import._dyn_ui_initialize()
