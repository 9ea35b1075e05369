"""Engine results → Blender data: mesh, UV map, packed texture + material, landmark empties, pose, camera.

Per photo, :func:`build_photo` makes one collection named after the photo and, per face, a mesh
object whose data is the frontal face (canonical mm → metres, Z up, looking along −Y; see
:mod:`.frames`) and whose rotation is the estimated head pose, so an animator re-poses the head by
rotating the object. Arrays go into Blender through ``foreach_set`` only. The 68 landmark empties
are children of the mesh object (frontal positions, so they follow any re-pose) in a "Landmarks"
child collection. The optional camera is orthographic, shows the photo as its background image and
sees the posed mesh over the face (the scene's render resolution becomes the photo's size).

All or nothing: if anything fails, every datablock made so far is removed before the error propagates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import bpy
import numpy as np
from mathutils import Vector

from . import replace
from .datablocks import remove_datablocks, track
from .frames import BLENDER_EULER_ORDER, engine_to_blender, face_placement, frontal_landmarks, matched_camera
from .materials import build_material, build_mouth_material, build_texture_image, name_texture
from .result import FaceResult
from .rig_build import store_rig_inputs

UV_LAYER_NAME = "UVMap"
LANDMARKS_COLLECTION = "Landmarks"
LANDMARK_EMPTY_SIZE_M = 0.002  # 2 mm spheres: visible on a ≈ 15 cm face without hiding it
LANDMARK_EMPTY_TYPE = "SPHERE"
PROP = "prnet_"  # prefix of the custom properties this add-on writes
HEAD_GAP_M = 0.05  # between the heads of photos laid out side by side (a batch)


@dataclass(frozen=True, slots=True)
class BuildOptions:
    create_landmarks: bool = True
    apply_pose: bool = True
    add_camera: bool = True
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)  # world point of the photo's first face (the 3D cursor)
    pack_photo: bool = True  # pack the photo the camera shows into the .blend (it travels with the file)
    replace: bool = True  # a new result of a photo replaces the photo's previous one (.replace)


@dataclass
class BuiltPhoto:
    collection: bpy.types.Collection
    faces: list[bpy.types.Object] = field(default_factory=list)
    camera: bpy.types.Object | None = None
    created: list[bpy.types.ID] = field(default_factory=list)  # every datablock made, for removal
    replaced: int = 0  # previous results of the photo this one replaced


def build_photo(context, faces: Sequence[FaceResult], options: BuildOptions | None = None) -> BuiltPhoto:
    """Build every face of one photo into a new collection in ``context.scene``; all or nothing."""
    options = options or BuildOptions()
    if not faces:
        raise ValueError("build_photo needs at least one face")
    stem = Path(faces[0].photo).stem or "face"
    created: list[bpy.types.ID] = []
    try:
        collection = track(created, bpy.data.collections.new(stem))
        context.scene.collection.children.link(collection)
        built = BuiltPhoto(collection=collection, created=created)
        ref = faces[0]
        for k, face in enumerate(faces, start=1):
            name = stem if len(faces) == 1 else f"{stem}_{k}"
            built.faces.append(
                build_face(face, name=name, ref=ref, collection=collection, options=options, created=created)
            )
        if options.add_camera:
            built.camera = build_camera(
                ref, name=f"{stem} camera", collection=collection, created=created, pack_photo=options.pack_photo
            )
            built.camera.location = tuple(o + c for o, c in zip(options.origin, built.camera.location))
            scene = context.scene
            scene.camera = built.camera
            scene.render.resolution_x, scene.render.resolution_y = ref.image_size[1], ref.image_size[0]
            scene.render.resolution_percentage = 100
            scene.render.pixel_aspect_x = scene.render.pixel_aspect_y = 1.0
        for block in created:
            replace.tag(block, ref.photo)
        replace.tag_result(collection, ref.photo)
    except BaseException:
        remove_datablocks(created)
        raise
    if options.replace:
        previous = replace.previous_results(context.scene, ref.photo, exclude=collection)
        if previous:
            replace.take_place_of(built.faces, built.camera, previous[0])
        for old in previous:
            replace.remove_result(old)
        built.replaced = len(previous)
        if previous:  # the old names are free now: take them (no .001 left behind)
            _name_result(built, stem, len(faces))
    view_layer = context.view_layer
    if built.replaced:
        view_layer.update()  # the view layer still lists the removed objects until it updates
    for obj in view_layer.objects:
        obj.select_set(False)
    for obj in built.faces:
        obj.select_set(True)
    view_layer.objects.active = built.faces[0]
    return built


def _name_result(built: BuiltPhoto, stem: str, n_faces: int) -> None:
    """Give a photo's result the names a first build gets (collection, heads, meshes, materials, textures, camera)."""
    built.collection.name = stem
    for k, obj in enumerate(built.faces, start=1):
        name = stem if n_faces == 1 else f"{stem}_{k}"
        obj.name = obj.data.name = name
        material = obj.active_material
        material.name = f"{name} face"
        image = next(n.image for n in material.node_tree.nodes if n.type == "TEX_IMAGE")
        name_texture(image, f"{name}_texture")
        if len(obj.data.materials) > 1:
            obj.data.materials[1].name = f"{name} mouth"
    if built.camera is not None:
        built.camera.name = built.camera.data.name = f"{stem} camera"


def x_extent(built: BuiltPhoto) -> tuple[float, float]:
    """(min, max) world X of the photo's heads (their meshes' bounding boxes; the heads have no parent, so
    their own transform is their world one, current even before the view layer updates)."""
    xs = [
        (obj.matrix_basis @ Vector(corner)).x for obj in built.faces for corner in obj.bound_box
    ]  # fmt: skip
    return min(xs), max(xs)


def place_beside(built: BuiltPhoto, previous: BuiltPhoto) -> None:
    """Move a photo's heads (and its camera) along X so that they start :data:`HEAD_GAP_M` right of
    ``previous``'s: a batch lays its photos out side by side, none overlapping the last."""
    shift = x_extent(previous)[1] + HEAD_GAP_M - x_extent(built)[0]
    for obj in [*built.faces, *([built.camera] if built.camera is not None else [])]:
        obj.location.x += shift


def build_face(
    face: FaceResult, *, name: str, ref: FaceResult, collection, options: BuildOptions, created: list
) -> bpy.types.Object:
    """Mesh object of one face, placed for the photo's camera, with material, props and landmarks."""
    mesh = build_mesh(name, face, created=created)
    image = build_texture_image(f"{name}_texture", face.texture, png=face.texture_png, created=created)
    mesh.materials.append(build_material(f"{name} face", image, created=created))
    if face.mouth_faces is not None and face.mouth_faces.any():
        mesh.materials.append(build_mouth_material(f"{name} mouth", created=created))
    obj = track(created, bpy.data.objects.new(name, mesh))
    collection.objects.link(obj)
    place = face_placement(
        yaw=face.yaw, pitch=face.pitch, roll=face.roll, rotation=face.rotation, translation=face.translation,
        scale=face.scale, ref_translation=ref.translation, ref_scale=ref.scale, apply_pose=options.apply_pose,
        pivot=face.head_pivot,
    )  # fmt: skip
    obj.rotation_mode = BLENDER_EULER_ORDER
    obj.rotation_euler = place.euler
    obj.location = tuple(o + p for o, p in zip(options.origin, place.location))
    obj.scale = (place.scale,) * 3
    obj[PROP + "bundle_id"] = face.bundle_id
    obj[PROP + "yaw"], obj[PROP + "pitch"], obj[PROP + "roll"] = face.yaw, face.pitch, face.roll
    obj[PROP + "box"] = list(face.box)
    obj[PROP + "px_per_mm"] = face.scale
    if face.keypoints_uv is not None:
        store_rig_inputs(obj, face)
    if options.create_landmarks:
        sub = track(created, bpy.data.collections.new(LANDMARKS_COLLECTION))
        collection.children.link(sub)
        build_landmarks(face, parent=obj, collection=sub, created=created)
    return obj


def build_mesh(name: str, face: FaceResult, *, created: list | None = None) -> bpy.types.Mesh:
    """Frontal mesh (Blender metres, triangles or quads, origin at the head pivot) with a per-loop UV
    layer, smooth shaded; arrays via foreach_set."""
    co = engine_to_blender(face.frontal_vertices - face.head_pivot).astype(np.float32)
    tris = np.ascontiguousarray(face.polygons, dtype=np.int32)
    n_loops = tris.size
    mesh = track(created, bpy.data.meshes.new(name))
    mesh.vertices.add(len(co))
    mesh.vertices.foreach_set("co", co.ravel())
    mesh.loops.add(n_loops)
    mesh.loops.foreach_set("vertex_index", tris.ravel())
    mesh.polygons.add(len(tris))
    mesh.polygons.foreach_set("loop_start", np.arange(0, n_loops, tris.shape[1], dtype=np.int32))
    if face.mouth_faces is not None and face.mouth_faces.any():  # material 1: the inside of the mouth
        mesh.polygons.foreach_set("material_index", face.mouth_faces.astype(np.int32))
    uv_layer = mesh.uv_layers.new(name=UV_LAYER_NAME)
    uv_layer.uv.foreach_set("vector", np.ascontiguousarray(face.uv[tris.ravel()], dtype=np.float32).ravel())
    mesh.update(calc_edges=True)
    mesh.shade_smooth()
    return mesh


def build_landmarks(face: FaceResult, *, parent, collection, created: list) -> list[bpy.types.Object]:
    """68 empties at the frontal landmark positions, parented to the face (they follow its pose)."""
    frontal = frontal_landmarks(face.landmarks_3d, face.rotation, face.translation, face.scale)
    local = engine_to_blender(frontal - face.head_pivot)
    empties = []
    for index, (name, pos, seen) in enumerate(zip(face.landmark_names, local, face.landmark_visibility)):
        empty = track(created, bpy.data.objects.new(name, None))
        empty[PROP + "landmark"] = index  # iBUG index (0-based): the name may gain a .001 suffix
        empty.empty_display_type = LANDMARK_EMPTY_TYPE
        empty.empty_display_size = LANDMARK_EMPTY_SIZE_M
        empty.parent = parent
        empty.location = pos
        empty[PROP + "visible"] = bool(seen)  # seen by the camera in the photo
        collection.objects.link(empty)
        empties.append(empty)
    return empties


def build_camera(ref: FaceResult, *, name: str, collection, created: list, pack_photo: bool = True) -> bpy.types.Object:
    """Orthographic camera framing the photo, photo as background image (see :mod:`.frames`); with
    ``pack_photo`` a photo this build loaded is packed into the .blend."""
    setup = matched_camera(ref_translation=ref.translation, ref_scale=ref.scale, image_size=ref.image_size)
    cam = track(created, bpy.data.cameras.new(name))
    cam.type = "ORTHO"
    cam.ortho_scale = setup.ortho_scale
    cam.sensor_fit = "AUTO"
    cam.clip_start, cam.clip_end = setup.clip
    photo = _load_photo(ref.background or ref.photo, created)
    if pack_photo and photo is not None and photo in created and photo.packed_file is None:
        photo.pack()  # the .blend carries the photo (another machine; the worker's upright copy is temporary)
    if photo is not None:
        bg = cam.background_images.new()
        bg.image = photo
        bg.frame_method = "FIT"
        bg.display_depth = "BACK"
        bg.alpha = 1.0
        cam.show_background_images = True
    obj = track(created, bpy.data.objects.new(name, cam))
    obj.location = setup.location
    obj.rotation_euler = setup.rotation_euler
    collection.objects.link(obj)
    return obj


def _load_photo(path: str, created: list) -> bpy.types.Image | None:
    """The photo as an image datablock (reused when already loaded); None if Blender cannot read it."""
    before = set(bpy.data.images)
    try:
        image = bpy.data.images.load(path, check_existing=True)
    except RuntimeError:
        return None
    if image not in before:
        created.append(image)
    return image
