"""The Face panel in a fresh Blender without an engine: it says so and offers the ways out."""

from __future__ import annotations

import pytest
from addon_env import NO_BPY_REASON

bpy = pytest.importorskip("bpy", reason=NO_BPY_REASON)

from prnet_blender import panels, preferences, request  # noqa: E402


class FakeLayout:
    """Records what a draw function puts on the panel (labels, operators and their settings)."""

    def __init__(self, log=None):
        self.log = [] if log is None else log

    def box(self, **_):
        return FakeLayout(self.log)

    column = row = box

    def label(self, *, text="", icon="NONE"):
        self.log.append(("label", text))

    def operator(self, idname, text="", icon="NONE"):
        op = type("Op", (), {})()
        self.log.append(("operator", idname, op))
        return op


def _no_engine(context):
    raise request.EngineUnavailable("no Python with torch found to run the engine: use Install engine")


def test_without_an_engine_the_panel_explains_and_offers_install_or_settings(monkeypatch):
    monkeypatch.setattr(preferences, "engine_python", _no_engine)
    problem = panels.engine_problem(bpy.context)
    assert problem.startswith("no Python with torch")
    layout = FakeLayout()
    panels.draw_engine_setup(layout, bpy.context, problem)
    labels = " ".join(entry[1] for entry in layout.log if entry[0] == "label")
    operators = [entry[1] for entry in layout.log if entry[0] == "operator"]
    assert "not set up" in labels and "no Python with torch" in labels
    settings = next(entry[2] for entry in layout.log if entry[0] == "operator" and entry[1] == "preferences.addon_show")
    assert settings.module == preferences.__package__
    if bpy.app.online_access:  # read-only in bpy: the branch this Blender takes is the one checked
        assert preferences.PRNET_OT_install_engine.bl_idname in operators
    else:
        assert "Online Access" in labels and preferences.PRNET_OT_install_engine.bl_idname not in operators


def test_with_an_engine_the_panel_shows_no_setup_box(monkeypatch):
    monkeypatch.setattr(preferences, "engine_python", lambda context: "/usr/bin/python3")
    assert panels.engine_problem(bpy.context) is None
