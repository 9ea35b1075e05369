"""PRNet Face: one photo → a textured, posed 3D face mesh with 68 landmark empties (a video → the
head animated), in Blender.

A thin Blender layer over the ``engine`` package, which runs in its own Python process (see
``client.py``). This file only registers: bpy-dependent modules are imported inside
:func:`register`, so importing the package outside Blender (tests, tools) works and loads nothing.
"""


def _classes() -> tuple:
    """Every class this add-on registers, in registration order (unregistered in reverse)."""
    from .operators import PRNET_OT_reconstruct_folder, PRNET_OT_reconstruct_photo
    from .panels import PRNET_PT_main
    from .pickers import PRNET_OT_import_face_photo, PRNET_OT_use_editor_image
    from .preferences import PRNET_AddonPreferences, PRNET_OT_check_engine, PRNET_OT_install_engine
    from .properties import PRNET_PG_settings
    from .rig_operators import PRNET_OT_build_rig
    from .track_operators import PRNET_OT_track_video

    return (
        PRNET_AddonPreferences,
        PRNET_OT_check_engine,
        PRNET_OT_install_engine,
        PRNET_PG_settings,
        PRNET_OT_reconstruct_photo,
        PRNET_OT_reconstruct_folder,
        PRNET_OT_use_editor_image,
        PRNET_OT_import_face_photo,
        PRNET_OT_build_rig,
        PRNET_OT_track_video,
        PRNET_PT_main,
    )


def register() -> None:
    import bpy

    from .pickers import import_menu_entry
    from .properties import register_settings

    for cls in _classes():
        bpy.utils.register_class(cls)
    register_settings()
    bpy.types.TOPBAR_MT_file_import.append(import_menu_entry)


def unregister() -> None:
    import bpy

    from . import client
    from .pickers import import_menu_entry
    from .properties import unregister_settings

    client.shutdown()
    bpy.types.TOPBAR_MT_file_import.remove(import_menu_entry)
    unregister_settings()
    for cls in reversed(_classes()):
        bpy.utils.unregister_class(cls)
