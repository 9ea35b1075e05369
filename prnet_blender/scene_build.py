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

import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import bpy
import numpy as np
from mathutils import Vector

from .frames import BLENDER_EULER_ORDER, engine_to_blender, face_placement, frontal_landmarks, matched_camera
from .result import FaceResult

UV_LAYER_NAME = "UVMap"
LANDMARKS_COLLECTION = "Landmarks"
LANDMARK_EMPTY_SIZE_M = 0.002  # 2 mm spheres: visible on a ≈ 15 cm face without hiding it
LANDMARK_EMPTY_TYPE = "SPHERE"
SKIN_ROUGHNESS = 0.6  # matte: the photo texture already carries the light it was taken in
PROP = "prnet_"  # prefix of the custom properties this add-on writes
TEXTURE_FOLDER = "textures"  # where Blender's Unpack writes packed images, beside the .blend
HEAD_GAP_M = 0.05  # between the heads of photos laid out side by side (a batch)


@dataclass(frozen=True, slots=True)
class BuildOptions:
    create_landmarks: bool = True
    apply_pose: bool = True
    add_camera: bool = True
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)  # world point of the photo's first face (the 3D cursor)


@dataclass
class BuiltPhoto:
    collection: bpy.types.Collection
    faces: list[bpy.types.Object] = field(default_factory=list)
    camera: bpy.types.Object | None = None
    created: list[bpy.types.ID] = field(default_factory=list)  # every datablock made, for removal


def build_photo(context, faces: Sequence[FaceResult], options: BuildOptions | None = None) -> BuiltPhoto:
    """Build every face of one photo into a new collection in ``context.scene``; all or nothing."""
    options = options or BuildOptions()
    if not faces:
        raise ValueError("build_photo needs at least one face")
    stem = Path(faces[0].photo).stem or "face"
    created: list[bpy.types.ID] = []
    try:
        collection = _track(created, bpy.data.collections.new(stem))
        context.scene.collection.children.link(collection)
        built = BuiltPhoto(collection=collection, created=created)
        ref = faces[0]
        for k, face in enumerate(faces, start=1):
            name = stem if len(faces) == 1 else f"{stem}_{k}"
            built.faces.append(
                build_face(face, name=name, ref=ref, collection=collection, options=options, created=created)
            )
        if options.add_camera:
            built.camera = build_camera(ref, name=f"{stem} camera", collection=collection, created=created)
            built.camera.location = tuple(o + c for o, c in zip(options.origin, built.camera.location))
            scene = context.scene
            scene.camera = built.camera
            scene.render.resolution_x, scene.render.resolution_y = ref.image_size[1], ref.image_size[0]
            scene.render.resolution_percentage = 100
            scene.render.pixel_aspect_x = scene.render.pixel_aspect_y = 1.0
    except BaseException:
        remove_datablocks(created)
        raise
    view_layer = context.view_layer
    for obj in view_layer.objects:
        obj.select_set(False)
    for obj in built.faces:
        obj.select_set(True)
    view_layer.objects.active = built.faces[0]
    return built


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


def remove_datablocks(blocks: Sequence[bpy.types.ID]) -> None:
    """Remove datablocks this module made (the failure path, and undo's equivalent in scripts)."""
    alive = [b for b in blocks if _is_alive(b)]
    if alive:
        bpy.data.batch_remove(alive)


def build_face(
    face: FaceResult, *, name: str, ref: FaceResult, collection, options: BuildOptions, created: list
) -> bpy.types.Object:
    """Mesh object of one face, placed for the photo's camera, with material, props and landmarks."""
    mesh = build_mesh(name, face, created=created)
    image = build_texture_image(f"{name}_texture", face.texture, png=face.texture_png, created=created)
    mesh.materials.append(build_material(f"{name} face", image, created=created))
    obj = _track(created, bpy.data.objects.new(name, mesh))
    collection.objects.link(obj)
    place = face_placement(
        yaw=face.yaw, pitch=face.pitch, roll=face.roll, rotation=face.rotation, translation=face.translation,
        scale=face.scale, ref_translation=ref.translation, ref_scale=ref.scale, apply_pose=options.apply_pose,
    )  # fmt: skip
    obj.rotation_mode = BLENDER_EULER_ORDER
    obj.rotation_euler = place.euler
    obj.location = tuple(o + p for o, p in zip(options.origin, place.location))
    obj.scale = (place.scale,) * 3
    obj[PROP + "source_photo"] = face.photo
    obj[PROP + "bundle_id"] = face.bundle_id
    obj[PROP + "yaw"], obj[PROP + "pitch"], obj[PROP + "roll"] = face.yaw, face.pitch, face.roll
    obj[PROP + "box"] = list(face.box)
    obj[PROP + "px_per_mm"] = face.scale
    if options.create_landmarks:
        sub = _track(created, bpy.data.collections.new(LANDMARKS_COLLECTION))
        collection.children.link(sub)
        build_landmarks(face, parent=obj, collection=sub, created=created)
    return obj


def build_mesh(name: str, face: FaceResult, *, created: list | None = None) -> bpy.types.Mesh:
    """Frontal mesh (Blender metres) with a per-loop UV layer, smooth shaded; arrays via foreach_set."""
    co = engine_to_blender(face.frontal_vertices).astype(np.float32)
    tris = np.ascontiguousarray(face.triangles, dtype=np.int32)
    n_loops = tris.size
    mesh = _track(created, bpy.data.meshes.new(name))
    mesh.vertices.add(len(co))
    mesh.vertices.foreach_set("co", co.ravel())
    mesh.loops.add(n_loops)
    mesh.loops.foreach_set("vertex_index", tris.ravel())
    mesh.polygons.add(len(tris))
    mesh.polygons.foreach_set("loop_start", np.arange(0, n_loops, 3, dtype=np.int32))
    uv_layer = mesh.uv_layers.new(name=UV_LAYER_NAME)
    uv_layer.uv.foreach_set("vector", np.ascontiguousarray(face.uv[tris.ravel()], dtype=np.float32).ravel())
    mesh.update(calc_edges=True)
    mesh.shade_smooth()
    return mesh


def texture_pixels(texture: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8, row 0 on top → Blender's flat float32 RGBA, row 0 at the bottom."""
    texture = np.asarray(texture)
    if texture.ndim != 3 or texture.shape[2] != 3 or texture.dtype != np.uint8:
        raise ValueError(f"texture must be (H, W, 3) uint8, got {texture.shape} {texture.dtype}")
    rgba = np.ones((*texture.shape[:2], 4), dtype=np.float32)
    np.multiply(texture[::-1], np.float32(1 / 255), out=rgba[..., :3], casting="unsafe")
    return rgba.ravel()


def build_texture_image(
    name: str, texture: np.ndarray, *, png: str | None = None, created: list | None = None
) -> bpy.types.Image:
    """The UV texture as an sRGB image, packed into the .blend (saved with it, no file needed).

    With ``png`` (the worker's encoding of the same texture) the file's bytes are packed as they are:
    ≈ 2 ms instead of ≈ 400 ms of float conversion and PNG encoding on Blender's UI thread at 2048².
    """
    if png is not None and Path(png).is_file():
        name = _free_image_name(name)
        with tempfile.TemporaryDirectory(prefix="prnet_texture_") as tmp:
            # Unpack writes a packed file under the name it was loaded from: load it from a copy named
            # after this face's (unique) image, not the worker's face_1_texture.png
            staged = Path(tmp) / f"{bpy.path.clean_name(name)}.png"
            shutil.copyfile(png, staged)
            image = _track(created, bpy.data.images.load(str(staged), check_existing=False))
            image.pack()
        image.name = name
    else:
        pixels = texture_pixels(texture)
        height, width = texture.shape[:2]
        image = _track(created, bpy.data.images.new(name, width=width, height=height, alpha=False))
        image.pixels.foreach_set(pixels)
        image.pack()
    # File › External Data › Unpack writes each packed image to //textures/<this file name>: name it after
    # the datablock, whose name is unique in the .blend (Blender adds .001, …), so no face overwrites another
    image.filepath_raw = f"//{TEXTURE_FOLDER}/{bpy.path.clean_name(image.name)}.png"
    image.file_format = "PNG"
    return image


def _free_image_name(name: str) -> str:
    """``name``, or the first of ``name.001``, ``name.002``, … that no image of the file has."""
    taken = {image.name for image in bpy.data.images}
    candidate, k = name, 0
    while candidate in taken:
        k += 1
        candidate = f"{name}.{k:03d}"
    return candidate


def build_material(name: str, image: bpy.types.Image, *, created: list | None = None) -> bpy.types.Material:
    """Principled BSDF whose base colour is the texture (UV map ``UVMap``)."""
    mat = _track(created, bpy.data.materials.new(name))
    if mat.node_tree is None:  # Blender < 5.0 creates materials without nodes
        mat.use_nodes = True
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    bsdf = next((n for n in nodes if n.type == "BSDF_PRINCIPLED"), None) or nodes.new("ShaderNodeBsdfPrincipled")
    out = next((n for n in nodes if n.type == "OUTPUT_MATERIAL"), None) or nodes.new("ShaderNodeOutputMaterial")
    if not out.inputs["Surface"].is_linked:
        links.new(bsdf.outputs["BSDF"], out.inputs["Surface"])
    tex = nodes.new("ShaderNodeTexImage")
    tex.image = image
    tex.location = (bsdf.location.x - 400, bsdf.location.y)
    links.new(tex.outputs["Color"], bsdf.inputs["Base Color"])
    bsdf.inputs["Roughness"].default_value = SKIN_ROUGHNESS
    return mat


def build_landmarks(face: FaceResult, *, parent, collection, created: list) -> list[bpy.types.Object]:
    """68 empties at the frontal landmark positions, parented to the face (they follow its pose)."""
    local = engine_to_blender(frontal_landmarks(face.landmarks_3d, face.rotation, face.translation, face.scale))
    empties = []
    for name, pos, seen in zip(face.landmark_names, local, face.landmark_visibility):
        empty = _track(created, bpy.data.objects.new(name, None))
        empty.empty_display_type = LANDMARK_EMPTY_TYPE
        empty.empty_display_size = LANDMARK_EMPTY_SIZE_M
        empty.parent = parent
        empty.location = pos
        empty[PROP + "visible"] = bool(seen)  # seen by the camera in the photo
        collection.objects.link(empty)
        empties.append(empty)
    return empties


def build_camera(ref: FaceResult, *, name: str, collection, created: list) -> bpy.types.Object:
    """Orthographic camera framing the photo, photo as background image (see :mod:`.frames`)."""
    setup = matched_camera(ref_translation=ref.translation, ref_scale=ref.scale, image_size=ref.image_size)
    cam = _track(created, bpy.data.cameras.new(name))
    cam.type = "ORTHO"
    cam.ortho_scale = setup.ortho_scale
    cam.sensor_fit = "AUTO"
    cam.clip_start, cam.clip_end = setup.clip
    photo = _load_photo(ref.background or ref.photo, created)
    if photo is not None and photo in created and photo.packed_file is None:
        photo.pack()  # the .blend carries the photo (another machine; the worker's upright copy is temporary)
    if photo is not None:
        bg = cam.background_images.new()
        bg.image = photo
        bg.frame_method = "FIT"
        bg.display_depth = "BACK"
        bg.alpha = 1.0
        cam.show_background_images = True
    obj = _track(created, bpy.data.objects.new(name, cam))
    obj.location = setup.location
    obj.rotation_euler = setup.rotation_euler
    obj[PROP + "source_photo"] = ref.photo
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


def _track(created: list | None, block):
    """Record a new datablock for removal on failure (when a list is given)."""
    if created is not None:
        created.append(block)
    return block


def _is_alive(block) -> bool:
    try:
        block.name  # noqa: B018 - raises ReferenceError once the datablock was removed
    except ReferenceError:
        return False
    return True
