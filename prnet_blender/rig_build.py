"""Build Face Rig: an armature that deforms a reconstructed head, ready to pose (engine.rig in Blender).

A head built by :mod:`.scene_build` carries what the rig needs (:func:`store_rig_inputs`): its
frontal landmarks and head pivot (canonical mm) and the UV layout's landmark positions. The bones
(``engine.rig.rig_bones``) go into an armature object that takes over the head's place and pose
(the head becomes its child with an identity transform, so posing the armature object or its
``head`` bone turns the head about the neck); the skin weights (``engine.rig.rig_weights``, designed
in UV space, so they fit the triangle and the quad mesh alike) become vertex groups read by an
Armature modifier. The landmark empties are re-parented to their nearest vertices, so they follow
the deformation. Optional eyeballs are spheres on the eye bones. Everything made is tagged with the
head's photo (:mod:`.replace`), so running the photo again removes the rig with the head.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import bmesh
import bpy
import numpy as np
from mathutils import Matrix, Vector

from . import replace
from .datablocks import remove_datablocks, track
from .engine_link import engine_module
from .frames import engine_to_blender, frontal_landmarks
from .result import FaceResult

RIG = engine_module("rig")  # numpy only: runs in Blender's Python
RIG_INPUTS = "prnet_rig_inputs"  # custom property of a head: JSON of what the rig is built from
RIG_OF = "prnet_rig_of"  # custom property of a rig armature: the name of the head it deforms
MODIFIER_NAME = "Face Rig"
WEIGHT_LEVELS = 255  # vertex weights are written in steps of 1/255 (one vertex-group call per level)
EYEBALL_SEGMENTS = (24, 16)  # UV sphere (segments, rings): smooth at a face's scale


@dataclass
class BuiltRig:
    armature: bpy.types.Object
    eyeballs: list[bpy.types.Object]


def store_rig_inputs(obj: bpy.types.Object, face: FaceResult) -> None:
    """Keep on the head what :func:`build_rig` needs, so a rig can be built later without the engine."""
    lm = frontal_landmarks(face.landmarks_3d, face.rotation, face.translation, face.scale)
    obj[RIG_INPUTS] = json.dumps({
        "landmarks_mm": np.round(lm, 4).tolist(), "head_pivot_mm": np.round(face.head_pivot, 4).tolist(),
        "keypoints_uv": np.round(face.keypoints_uv, 4).tolist(), "layout_size": int(face.layout_size),
    })  # fmt: skip


def is_head(obj) -> bool:
    """Whether ``obj`` is a reconstructed head a rig can be built for."""
    return obj is not None and obj.type == "MESH" and RIG_INPUTS in obj


def rig_of(head: bpy.types.Object) -> bpy.types.Object | None:
    """The face rig armature deforming ``head``, if it has one."""
    parent = head.parent
    return parent if parent is not None and parent.get(RIG_OF) == head.name else None


def vertex_uv(mesh: bpy.types.Mesh) -> np.ndarray:
    """(V, 2) float64 texture coordinates per vertex (from the active UV layer's loops)."""
    n_loops = len(mesh.loops)
    index = np.empty(n_loops, np.int32)
    mesh.loops.foreach_get("vertex_index", index)
    loop_uv = np.empty(2 * n_loops, np.float32)
    mesh.uv_layers.active.uv.foreach_get("vector", loop_uv)
    uv = np.zeros((len(mesh.vertices), 2))
    uv[index] = loop_uv.reshape(-1, 2)
    return uv


def head_space(points_mm: np.ndarray, pivot_mm: np.ndarray) -> np.ndarray:
    """Canonical mm → the head's mesh space (Blender metres, origin at the head pivot)."""
    return engine_to_blender(np.asarray(points_mm, np.float64) - pivot_mm)


def build_rig(context, head: bpy.types.Object, *, eyeballs: bool = False) -> BuiltRig:
    """Rig ``head`` (see the module's text); all or nothing."""
    if not is_head(head):
        raise ValueError(f"{head.name!r} is not a reconstructed head")
    if rig_of(head) is not None:
        raise ValueError(f"{head.name!r} already has a face rig ({head.parent.name!r}); delete it to build another")
    inputs = json.loads(head[RIG_INPUTS])
    lm, pivot = np.array(inputs["landmarks_mm"]), np.array(inputs["head_pivot_mm"])
    rig = RIG.face_rig(
        lm, pivot, RIG.uv_to_layout_px(vertex_uv(head.data), inputs["layout_size"]), np.array(inputs["keypoints_uv"])
    )
    photo = head.get(replace.PHOTO_TAG, "")
    created: list = []
    try:
        armature = _armature(context, head, rig, pivot, created)
        _skin(head, armature, rig)
        _bind_landmarks(head, lm, pivot)
        balls = _eyeballs(head, armature, rig, pivot, created) if eyeballs else []
        for block in created:
            replace.tag(block, photo)
    except BaseException:
        remove_datablocks(created)
        raise
    return BuiltRig(armature=armature, eyeballs=balls)


def _armature(context, head, rig, pivot, created) -> bpy.types.Object:
    data = track(created, bpy.data.armatures.new(f"{head.name} face rig"))
    arm = track(created, bpy.data.objects.new(f"{head.name} face rig", data))
    for collection in head.users_collection:
        collection.objects.link(arm)
    arm[RIG_OF] = head.name
    arm.rotation_mode = head.rotation_mode
    arm.matrix_world = head.matrix_world.copy()
    arm.show_in_front = True
    view_layer = context.view_layer
    previous = view_layer.objects.active
    view_layer.objects.active = arm
    bpy.ops.object.mode_set(mode="EDIT")
    try:
        for bone in rig.bones:
            eb = data.edit_bones.new(bone.name)
            eb.head, eb.tail = (Vector(p) for p in head_space([bone.head, bone.tail], pivot))
            eb.align_roll(Vector(engine_to_blender(np.array(bone.z_axis), unit=1.0)))
            eb.use_deform = bone.deform
        for bone in rig.bones:
            if bone.parent is not None:
                data.edit_bones[bone.name].parent = data.edit_bones[bone.parent]
    finally:
        bpy.ops.object.mode_set(mode="OBJECT")
        view_layer.objects.active = previous
    # the head becomes the armature's child with no transform of its own: the armature carries the pose
    world = head.matrix_world.copy()
    head.parent = arm
    head.matrix_parent_inverse = Matrix.Identity(4)
    head.matrix_basis = arm.matrix_world.inverted() @ world
    return arm


def _skin(head, armature, rig) -> None:
    for name in rig.weight_bones:
        old = head.vertex_groups.get(name)
        if old is not None:
            head.vertex_groups.remove(old)
    levels = np.rint(rig.weights * WEIGHT_LEVELS).astype(np.int32)
    for k, name in enumerate(rig.weight_bones):
        group = head.vertex_groups.new(name=name)
        column = levels[:, k]
        for level in np.unique(column[column > 0]).tolist():
            group.add(np.flatnonzero(column == level).tolist(), level / WEIGHT_LEVELS, "REPLACE")
    modifier = head.modifiers.new(MODIFIER_NAME, "ARMATURE")
    modifier.object = armature
    modifier.use_vertex_groups = True


def _bind_landmarks(head, lm, pivot) -> None:
    """Parent each landmark empty to its nearest vertex, at its place: it follows the deformation."""
    n = len(head.data.vertices)
    co = np.empty(3 * n, np.float32)
    head.data.vertices.foreach_get("co", co)
    co = co.reshape(-1, 3).astype(np.float64)
    for child in [c for c in head.children if c.type == "EMPTY" and c.parent_type == "OBJECT"]:
        at = np.array(child.location, np.float64)
        k = int(np.argmin(((co - at) ** 2).sum(axis=1)))
        child.parent_type = "VERTEX"
        child.parent_vertices = (k, 0, 0)
        child.location = Vector(at - co[k])


def _eyeballs(head, armature, rig, pivot, created) -> list[bpy.types.Object]:
    out = []
    for bone in (b for b in rig.bones if b.name.startswith("eye.")):
        mesh = track(created, bpy.data.meshes.new(f"{head.name} {bone.name}"))
        bm = bmesh.new()
        u, v = EYEBALL_SEGMENTS
        bmesh.ops.create_uvsphere(bm, u_segments=u, v_segments=v, radius=RIG.EYEBALL_RADIUS_MM * 1e-3)
        bm.to_mesh(mesh)
        bm.free()
        mesh.shade_smooth()
        ball = track(created, bpy.data.objects.new(f"{head.name} {bone.name}", mesh))
        for collection in head.users_collection:
            collection.objects.link(ball)
        centre = armature.matrix_world @ Vector(head_space([bone.head], pivot)[0])
        ball.parent, ball.parent_type, ball.parent_bone = armature, "BONE", bone.name
        bpy.context.view_layer.update()
        ball.matrix_world = Matrix.Translation(centre) @ armature.matrix_world.to_3x3().to_4x4()
        out.append(ball)
    return out
