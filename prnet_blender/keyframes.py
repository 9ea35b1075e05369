"""Dense keyframes in bulk: one F-curve per channel, every key set at once through ``foreach_set``.

A tracked video keys every frame of dozens of channels; ``keyframe_insert`` per key would take
minutes. :func:`key_channels` writes a whole channel's keys in one call on Blender 4.2 – 5.x: from
4.4 an action's F-curves live in a channelbag of the object's action slot (5.0 dropped the old
``Action.fcurves``), before that on the action itself.
"""

from __future__ import annotations

import bpy
import numpy as np

INTERPOLATION = {"CONSTANT": 0, "LINEAR": 1}  # Keyframe.interpolation's enum values, as foreach_set takes them


def object_fcurves(obj: bpy.types.Object, action_name: str):
    """The F-curves collection of ``obj``'s action (made, and assigned with a slot, when it has none)."""
    anim = obj.animation_data_create()
    if anim.action is None:
        anim.action = bpy.data.actions.new(action_name)
    action = anim.action
    if not hasattr(action, "layers"):  # Blender 4.2, 4.3: F-curves on the action itself
        return action.fcurves
    from bpy_extras import anim_utils

    if anim.action_slot is None:
        anim.action_slot = action.slots.new(id_type="OBJECT", name=obj.name)
    return anim_utils.action_ensure_channelbag_for_slot(action, anim.action_slot).fcurves


def key_channels(
    obj: bpy.types.Object,
    data_path: str,
    frames: np.ndarray,
    values: np.ndarray,
    *,
    hold_after: np.ndarray | None = None,
    action_name: str | None = None,
) -> None:
    """Key ``obj.<data_path>[i]`` at ``frames`` (K,) with ``values`` (K, C), linear between keys; keys
    where ``hold_after`` (K,) bool is set hold their value until the next key (a gap in the track)."""
    values = np.asarray(values, np.float64).reshape(len(frames), -1)
    curves = object_fcurves(obj, action_name or f"{obj.name} track")
    hold = np.zeros(len(frames), bool) if hold_after is None else np.asarray(hold_after, bool)
    interpolation = np.where(hold, INTERPOLATION["CONSTANT"], INTERPOLATION["LINEAR"]).astype(np.int32)
    for index in range(values.shape[1]):
        fc = curves.find(data_path, index=index) or curves.new(data_path, index=index)
        fc.keyframe_points.clear()
        fc.keyframe_points.add(len(frames))
        co = np.stack([np.asarray(frames, np.float64), values[:, index]], axis=1).astype(np.float32)
        fc.keyframe_points.foreach_set("co", co.ravel())
        fc.keyframe_points.foreach_set("interpolation", interpolation)
        fc.update()
