"""The artist's settings of the Face panel: one PropertyGroup on each Scene (``scene.prnet``).

The operators read these when they are started from the panel; a script can pass the same names
as operator arguments instead (``bpy.ops.prnet.reconstruct_photo(filepath=..., texture_size="2048")``).
No ``from __future__ import annotations`` here: Blender reads the property definitions from the
class annotations, which must stay objects, not strings.
"""

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, StringProperty

from .engine_link import engine_module
from .rig_operators import RIG_OPTION_NAMES, rig_properties

_options, _device = engine_module("options"), engine_module("device")
TEXTURE_SIZE_ITEMS = tuple((str(s), f"{s} px", f"{s} × {s} texture") for s in _options.TEXTURE_SIZE_MENU)
DEFAULT_TEXTURE_SIZE = str(_options.DEFAULT_TEXTURE_SIZE)
DEVICE_LABELS = {  # the menu's words for each of the engine's device names (engine.device.DEVICES)
    "cpu": ("CPU", "Run the network on the processor (works everywhere)"),
    "cuda": ("CUDA", "Run the network on an NVIDIA GPU (needs a CUDA build of torch in the engine Python)"),
    "mps": ("Metal", "Run the network on an Apple GPU (macOS, Apple silicon)"),
    "auto": ("Auto", "CUDA if the engine sees an NVIDIA GPU, else Metal, else the processor"),
}
DEVICE_ITEMS = tuple((name, *DEVICE_LABELS[name]) for name in _device.DEVICES)
TEXTURE_MODE_LABELS = {  # engine.options.TEXTURE_MODES
    "complete": (
        "Complete",
        "Every texel coloured: what the photo hides comes from the mirror side or the skin around it",
    ),
    "photo": ("Photo Only", "Only what the photo shows; the rest is transparent in the image, for painting"),
}
MOUTH_LABELS = {  # engine.options.MOUTH_MODES
    "closed": ("Closed", "The lips meet: right for a neutral face"),
    "open": ("Open", "The mesh is cut along the inner lips: for a photo with the mouth open"),
}
TOPOLOGY_LABELS = {  # engine.options.TOPOLOGIES
    "triangles": ("Triangles", "The dense mesh, one vertex per position-map pixel (45k vertices)"),
    "quads": ("Quads", "A regular all-quad grid, for sculpting, subdividing and retopology"),
}
QUALITY_LABELS = {  # engine.options.QUALITIES
    "full": ("Full", "The model's full averaging: the most accurate"),
    "preview": ("Preview", "No shift averaging: a third of the network crops, a little less accurate"),
    "fast": ("Fast", "The fast model: several times quicker than Preview, less accurate (drafts, many photos)"),
}
OPTION_NAMES = (  # shared by the settings and the operators' arguments
    "quality",
    "texture_size",
    "all_faces",
    "texture_mode",
    "mouth",
    "topology",
    "quad_cells",
    "create_landmarks",
    "apply_pose",
    "add_camera",
    "pack_photo",
    "keep_previous",
    "build_rig",
    *RIG_OPTION_NAMES,
    "device",
)


def option_properties() -> dict:
    """Fresh property definitions for the reconstruction options (settings and operators share them)."""
    return {
        "quality": EnumProperty(
            name="Quality",
            items=tuple((k, *QUALITY_LABELS[k]) for k in _options.QUALITIES),
            default=_options.DEFAULT_QUALITY,
            description="How much averaging the network does",
        ),
        "texture_size": EnumProperty(
            name="Texture", items=TEXTURE_SIZE_ITEMS, default=DEFAULT_TEXTURE_SIZE, description="UV texture size"
        ),
        "all_faces": BoolProperty(
            name="All Faces", default=False, description="Reconstruct every face in the photo, not only the largest"
        ),
        "texture_mode": EnumProperty(
            name="Texture Fill",
            items=tuple((k, *TEXTURE_MODE_LABELS[k]) for k in _options.TEXTURE_MODES),
            default=_options.DEFAULT_TEXTURE_MODE,
            description="How the parts of the face the photo does not show are coloured",
        ),
        "mouth": EnumProperty(
            name="Mouth",
            items=tuple((k, *MOUTH_LABELS[k]) for k in _options.MOUTH_MODES),
            default=_options.DEFAULT_MOUTH,
            description="Whether the mesh closes the lips or opens the mouth",
        ),
        "topology": EnumProperty(
            name="Topology",
            items=tuple((k, *TOPOLOGY_LABELS[k]) for k in _options.TOPOLOGIES),
            default=_options.DEFAULT_TOPOLOGY,
            description="The mesh's polygons",
        ),
        "quad_cells": IntProperty(
            name="Quad Density",
            min=_options.QUAD_CELLS_MIN,
            max=_options.QUAD_CELLS_MAX,
            default=_options.DEFAULT_QUAD_CELLS,
            description="Quad grid cells across the UV square (Topology: Quads)",
        ),
        "create_landmarks": BoolProperty(
            name="Landmarks", default=True, description="Add the 68 landmarks as empties parented to the face"
        ),
        "apply_pose": BoolProperty(
            name="Apply Pose", default=True, description="Rotate the face object to the head pose seen in the photo"
        ),
        "add_camera": BoolProperty(
            name="Matched Camera",
            default=True,
            description="Add an orthographic camera that sees the face over the photo (sets the render size)",
        ),
        "pack_photo": BoolProperty(
            name="Pack Photo",
            default=True,
            description="Pack the photo the matched camera shows into the .blend, so the file travels",
        ),
        "keep_previous": BoolProperty(
            name="Keep Previous",
            default=False,
            description="Running a photo again keeps its earlier result (by default the new one replaces it)",
        ),
        "build_rig": BoolProperty(
            name="Build Face Rig",
            default=False,
            description="Rig each new head (as the Build Face Rig button does)",
        ),
        **rig_properties(),
        "device": EnumProperty(
            name="Device", items=DEVICE_ITEMS, default=_device.DEFAULT_DEVICE, description="Where the network runs"
        ),
    }


def track_properties() -> dict:
    """The Track Video options (the operator's arguments and the scene settings; .track_operators)."""
    return {
        "track_fast": BoolProperty(
            name="Fast",
            default=False,
            description="The fast model, one network image per frame instead of two: several times quicker, "
            "a little less steady",
        ),
        "track_every": IntProperty(name="Every", min=1, max=100, default=1, description="Track every N-th frame"),
        "track_start": FloatProperty(
            name="Start", min=0.0, default=0.0, unit="TIME_ABSOLUTE", description="First second of the video to track"
        ),  # fmt: skip
        "track_end": FloatProperty(
            name="End",
            min=0.0,
            default=0.0,
            unit="TIME_ABSOLUTE",
            description="Last second to track (0: the end of the video)",
        ),  # fmt: skip
        "track_mesh_cache": BoolProperty(
            name="Animate Expression",
            default=False,
            description="Also play the tracked mesh per frame through a Mesh Cache modifier (a PC2 file of about "
            "0.5 MB per frame, written to prnet_cache beside the .blend)",
        ),
    }


TRACK_OPTION_NAMES = tuple(track_properties())


class PRNET_PG_settings(bpy.types.PropertyGroup):
    filepath: StringProperty(name="Photo", subtype="FILE_PATH", description="Photo to reconstruct the face from")
    folder: StringProperty(name="Folder", subtype="DIR_PATH", description="Folder of photos to reconstruct")
    video: StringProperty(name="Video", subtype="FILE_PATH", description="Video to track the face through")
    __annotations__.update(option_properties())
    __annotations__.update(track_properties())  # the options, defined once for settings and operators


def register_settings() -> None:
    bpy.types.Scene.prnet = bpy.props.PointerProperty(type=PRNET_PG_settings)


def unregister_settings() -> None:
    del bpy.types.Scene.prnet
