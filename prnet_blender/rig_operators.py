"""Build Face Rig: the operator on the active reconstructed head (.rig_build, .metarig).

No ``from __future__ import annotations``: Blender reads properties from class annotations.
"""

import bpy
from bpy.props import BoolProperty

from . import metarig, rig_build

RIG_OPTION_NAMES = ("eyeballs", "rigify_metarig")  # shared with Reconstruct's Build Rig option


def rig_properties() -> dict:
    """The rig's options (the operator's, and the scene settings' for Reconstruct)."""
    return {
        "eyeballs": BoolProperty(
            name="Eyeballs", default=True, description="Add eyeball spheres on the eye bones, behind the lids"
        ),
        "rigify_metarig": BoolProperty(
            name="Rigify Metarig",
            default=True,
            description="Also add a Rigify face metarig fitted to this face (Generate Rig makes a full face rig)",
        ),
    }


def head_of(obj):
    """The reconstructed head ``obj`` is, or whose rig it is; None otherwise."""
    if rig_build.is_head(obj):
        return obj
    if obj is not None and obj.type == "ARMATURE":
        return next((c for c in obj.children if rig_build.is_head(c)), None)
    return None


def rig_head(context, head, *, eyeballs: bool, rigify_metarig: bool) -> str:
    """Rig ``head`` (and fit a metarig) → the report line. Raises ValueError or RuntimeError."""
    built = rig_build.build_rig(context, head, eyeballs=eyeballs)
    line = f"{built.armature.name}: {len(built.armature.data.bones)} bones"
    if rigify_metarig:
        meta = metarig.build_metarig(context, head, built.armature)
        line += f"; Rigify metarig {meta.name!r} fitted (select it, then Generate Rig)"
    return line


class PRNET_OT_build_rig(bpy.types.Operator):
    """Build a posable face rig for the active reconstructed head (jaw, eyes, lids, brows, lips, head)"""

    bl_idname = "prnet.build_rig"
    bl_label = "Build Face Rig"
    bl_options = {"REGISTER", "UNDO"}

    __annotations__ = rig_properties()

    @classmethod
    def poll(cls, context):
        return head_of(context.active_object) is not None

    def execute(self, context):
        head = head_of(context.active_object)
        try:
            line = rig_head(context, head, eyeballs=self.eyeballs, rigify_metarig=self.rigify_metarig)
        except (ValueError, RuntimeError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, line)
        return {"FINISHED"}
