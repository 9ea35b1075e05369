"""Running a photo again: the new result takes the place of the photo's previous one.

Every result :func:`.scene_build.build_photo` makes is a collection tagged as the result of its
photo (``prnet_result_of``), and every datablock it makes (objects, meshes, materials, textures,
cameras, child collections) carries the photo's name (``prnet_source_photo``). A new result of a
photo that already has one in the scene moves to where the previous one's first head is (the
artist may have moved it) and the previous result is removed: its collections and objects, then
the tagged meshes, materials, images and cameras nobody else uses. Datablocks the artist made or
linked are never removed, and the operator is one undo step, so Ctrl+Z brings the previous result
back.
"""

from __future__ import annotations

import bpy
from mathutils import Vector

PHOTO_TAG = "prnet_source_photo"  # custom property naming the photo a datablock was built from
RESULT_TAG = "prnet_result_of"  # on a result's own collection only (not its Landmarks child): the photo


def tag(block: bpy.types.ID, photo: str) -> None:
    """Mark ``block`` as built from ``photo``."""
    block[PHOTO_TAG] = photo


def tag_result(collection: bpy.types.Collection, photo: str) -> None:
    """Mark ``collection`` as the result of ``photo`` (the one a new result of the photo replaces)."""
    collection[RESULT_TAG] = photo


def previous_results(scene: bpy.types.Scene, photo: str, *, exclude=None) -> list[bpy.types.Collection]:
    """The result collections of ``photo`` in ``scene`` (any depth), except ``exclude``."""
    found = []
    stack = list(scene.collection.children)
    while stack:
        coll = stack.pop()
        if coll is exclude:
            continue
        if coll.get(RESULT_TAG) == photo:
            found.append(coll)
        else:
            stack.extend(coll.children)
    return found


def first_head(collection: bpy.types.Collection) -> bpy.types.Object | None:
    """The result's first head: its first mesh object tagged with the photo."""
    return next((o for o in collection.objects if o.type == "MESH" and PHOTO_TAG in o), None)


def take_place_of(heads: list[bpy.types.Object], camera, previous: bpy.types.Collection) -> None:
    """Move a new result's heads and camera by one offset so its first head sits where ``previous``'s did."""
    old = first_head(previous)
    if old is None or not heads:
        return
    shift = Vector(old.location) - Vector(heads[0].location)
    for obj in [*heads, *([camera] if camera is not None else [])]:
        obj.location += shift


def remove_result(collection: bpy.types.Collection) -> None:
    """Remove a result collection, everything in it, and the tagged data only it used."""
    collections = [collection, *collection.children_recursive]
    objects = {o for c in collections for o in c.objects}
    data = {o.data for o in objects if o.data is not None and PHOTO_TAG in o.data}
    materials = {m for d in data if isinstance(d, bpy.types.Mesh) for m in d.materials if m and PHOTO_TAG in m}
    images = {
        n.image
        for m in materials
        if m.node_tree
        for n in m.node_tree.nodes
        if n.type == "TEX_IMAGE" and n.image and PHOTO_TAG in n.image
    }
    images |= {
        bg.image
        for d in data
        if isinstance(d, bpy.types.Camera)
        for bg in d.background_images
        if bg.image and PHOTO_TAG in bg.image
    }
    images |= {  # a tracked video's movie clip
        bg.clip
        for d in data
        if isinstance(d, bpy.types.Camera)
        for bg in d.background_images
        if bg.clip and PHOTO_TAG in bg.clip
    }
    bpy.data.batch_remove([*objects, *collections])
    for group in (data, materials, images):  # each level is orphaned once the one above is gone
        orphans = [b for b in group if b.users == 0]
        if orphans:
            bpy.data.batch_remove(orphans)
