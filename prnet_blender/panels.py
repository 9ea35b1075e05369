"""The Face tab of the 3D Viewport's sidebar: engine status, photo, options, Reconstruct, rig, video,
folder batch."""

import textwrap

import bpy

from . import operators, pickers, preferences, request, rig_operators, track_operators

WRAP_CHARS = 42  # the sidebar's default width holds about this many characters per line


def engine_problem(context) -> str | None:
    """Why the engine cannot run (the message of engine_python's EngineUnavailable), or None."""
    try:
        preferences.engine_python(context)
    except request.EngineUnavailable as exc:
        return str(exc)
    return None


def draw_engine_setup(layout, context, problem: str) -> None:
    """The box a fresh Blender shows instead of failing on the first click: what is missing and the
    ways out (install here when Online Access allows it, or the add-on's preferences)."""
    box = layout.box()
    box.label(text="The engine is not set up yet", icon="ERROR")
    col = box.column(align=True)
    for line in textwrap.wrap(problem, WRAP_CHARS):
        col.label(text=line)
    if bpy.app.online_access or preferences.has_offline_wheels(context):
        box.operator(preferences.PRNET_OT_install_engine.bl_idname, icon="IMPORT")
    else:
        col = box.column(align=True)
        col.label(text="Installing it from here needs Online Access", icon="INFO")
        col.label(text="(Preferences › System › Network)")
        col.label(text="or an Offline Wheels folder (Engine Settings)")
    op = box.operator("preferences.addon_show", text="Engine Settings…", icon="PREFERENCES")
    op.module = preferences.__package__


class PRNET_PT_main(bpy.types.Panel):
    bl_label = "Face from Photo"
    bl_idname = "PRNET_PT_main"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Face"

    def draw(self, context):
        settings = context.scene.prnet
        layout = self.layout
        problem = engine_problem(context)
        if problem is not None:
            draw_engine_setup(layout, context, problem)
        row = layout.row(align=True)
        row.prop(settings, "filepath", text="")
        row.operator(pickers.PRNET_OT_use_editor_image.bl_idname, text="", icon="IMAGE_DATA")

        col = layout.column(heading="Options")
        col.prop(settings, "quality")
        col.prop(settings, "texture_size")
        col.prop(settings, "device")
        col.prop(settings, "all_faces")
        col.prop(settings, "texture_mode")
        col.prop(settings, "mouth")
        col.prop(settings, "topology")
        if settings.topology == "quads":
            col.prop(settings, "quad_cells")
        col.prop(settings, "create_landmarks")
        col.prop(settings, "apply_pose")
        col.prop(settings, "add_camera")
        col.prop(settings, "pack_photo")
        col.prop(settings, "keep_previous")

        busy = operators.is_busy()
        row = layout.row()
        row.scale_y = 1.5
        row.enabled = not busy
        row.operator(operators.PRNET_OT_reconstruct_photo.bl_idname, icon="USER")
        if busy:
            layout.label(text="Working… (Esc cancels)", icon="TIME")

        box = layout.box()
        box.label(text="Rig", icon="ARMATURE_DATA")
        box.prop(settings, "build_rig")
        row = box.row()
        row.prop(settings, "eyeballs")
        row.prop(settings, "rigify_metarig")
        box.operator(rig_operators.PRNET_OT_build_rig.bl_idname, icon="BONE_DATA")

        box = layout.box()
        box.label(text="Video", icon="SEQUENCE")
        box.prop(settings, "video", text="")
        row = box.row(align=True)
        row.prop(settings, "track_start")
        row.prop(settings, "track_end")
        row = box.row()
        row.prop(settings, "track_every")
        row.prop(settings, "track_fast")
        box.prop(settings, "track_mesh_cache")
        row = box.row()
        row.enabled = not busy
        row.operator(track_operators.PRNET_OT_track_video.bl_idname, icon="TRACKING")

        box = layout.box()
        box.prop(settings, "folder", text="")
        row = box.row()
        row.enabled = not busy
        row.operator(operators.PRNET_OT_reconstruct_folder.bl_idname, icon="FILE_FOLDER")
