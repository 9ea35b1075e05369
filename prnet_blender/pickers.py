"""Ways to choose the photo: File › Import › Face from Photo, and the Image Editor's image.

Reconstruct opens the same file browser when no photo is set (``operators``). No
``from __future__ import annotations``: Blender reads properties from class annotations.
"""

from pathlib import Path

import bpy
from bpy.props import StringProperty
from bpy_extras.io_utils import ImportHelper

from .operators import PHOTO_SUFFIXES


class PRNET_OT_import_face_photo(bpy.types.Operator, ImportHelper):
    """Reconstruct a textured 3D face from a photo chosen in the file browser"""

    bl_idname = "prnet.import_face_photo"
    bl_label = "Face from Photo"
    bl_options = {"REGISTER"}

    filename_ext = ".jpg"
    filter_glob: StringProperty(default=";".join(f"*{s}" for s in PHOTO_SUFFIXES), options={"HIDDEN"})

    def execute(self, context):
        # the reconstruction is its own operator (modal in the UI, one undo step); the panel's options apply
        return bpy.ops.prnet.reconstruct_photo("INVOKE_DEFAULT", filepath=self.filepath)


def import_menu_entry(self, context):
    """File › Import › Face from Photo."""
    self.layout.operator(PRNET_OT_import_face_photo.bl_idname, text="Face from Photo (.jpg, .png)")


class PRNET_OT_use_editor_image(bpy.types.Operator):
    """Use the image shown in an Image Editor as the photo"""

    bl_idname = "prnet.use_editor_image"
    bl_label = "Use Image Editor's Image"
    bl_options = {"INTERNAL"}

    def execute(self, context):
        image = _editor_image(context)
        if image is None:
            self.report({"ERROR"}, "No Image Editor with an image is open in this window")
            return {"CANCELLED"}
        path = bpy.path.abspath(image.filepath, library=image.library) if image.filepath else ""
        if not path or not Path(path).is_file():
            self.report({"ERROR"}, f"Image '{image.name}' has no file on disk: save it first")
            return {"CANCELLED"}
        context.scene.prnet.filepath = path
        return {"FINISHED"}


def _editor_image(context):
    """The image of the active Image Editor, else of the first one in the window."""
    space = context.space_data
    if space is not None and space.type == "IMAGE_EDITOR" and space.image is not None:
        return space.image
    screen = context.window.screen if context.window else None
    for area in screen.areas if screen else ():
        if area.type == "IMAGE_EDITOR" and area.spaces.active.image is not None:
            return area.spaces.active.image
    return None
