"""A Rigify face metarig fitted to a reconstructed head, so Generate Rig makes a face rig that fits.

Rigify (a core add-on of Blender 4.2+) is enabled when needed. Its *Human (Meta-Rig)* is added and
cut down to the neck, head and face (``spine.004`` and below, made its own root); the face bones
Rigify knows by name are snapped to the landmarks (:func:`landmark_joints`: lids, brows, nose, lips,
chin, jaw line, eyes), and every other joint of the metarig (ears, forehead, temples, cheeks,
teeth, tongue, the neck) is carried along by a smooth warp fitted to those: an affine map plus
Gaussian radial basis functions (:func:`fit_warp`). The metarig takes the head's pose and sits in
the head's collection.
"""

from __future__ import annotations

import json

import addon_utils
import bpy
import numpy as np
from mathutils import Vector

from . import replace
from .rig_build import RIG, RIG_INPUTS, head_space

KEEP_FROM = "spine.004"  # the metarig's neck: it and the bones below it are kept (the face hangs from spine.006)
WARP_SIGMA_M = 0.03  # reach of the warp's radial functions (a face is ≈ 0.15 m wide)
WARP_RIDGE = 1e-6  # keeps the radial fit well posed where joints nearly coincide
JAW_BACK_MM = 55.0  # the metarig's jaw bone starts under the jaw, this far behind the chin
TIP_UNDER = 0.5  # nose.003 starts halfway from the nose tip (31) to its base (34)
PHILTRUM = 0.35  # nose.004 ends this share of the way from the nose base to the upper lip
EYE_BONE_MM = np.array([0.0, 0.0, 12.0])  # the metarig's eye bones point out of the face, an eyeball's radius long


def _chain(points: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    return list(zip(points[:-1], points[1:]))


def landmark_joints(lm: np.ndarray, eye_centres: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Metarig bone name → (head, tail) in canonical mm from the frontal (68, 3) landmarks (iBUG, 0-based;
    Rigify's .L is the subject's left: landmarks 22–26, 42–47, 54 and 9–16) and the eyes' centres."""
    e = np.asarray(lm, np.float64)

    def mid(a: int, b: int) -> np.ndarray:
        return (e[a] + e[b]) / 2

    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def chain(base: str, points: list[np.ndarray]) -> None:
        for k, pair in enumerate(_chain(points)):
            out[base if k == 0 else f"{base}.{k:03d}"] = pair

    for s, outer, t1, t2, inner, b1, b2, brow in (  # lower lid: inner corner, b1, b2, outer corner
        ("L", 45, 44, 43, 42, 47, 46, (26, 25, 24, 23, 22)),
        ("R", 36, 37, 38, 39, 40, 41, (17, 18, 19, 20, 21)),
    ):
        top = [e[outer], e[t1], mid(t1, t2), e[t2], e[inner]]
        chain(f"lid.T.{s}", top)
        chain(f"lid.B.{s}", [e[inner], e[b1], mid(b1, b2), e[b2], e[outer]])
        brow_points = [e[k] for k in brow]
        chain(f"brow.T.{s}", brow_points)
        chain(f"brow.B.{s}", [(b + t) / 2 for b, t in zip(brow_points, top)])
        out[f"eye.{s}"] = (eye_centres[s], eye_centres[s] + EYE_BONE_MM)
    under = e[33] + TIP_UNDER * (e[30] - e[33])
    chain("nose", [e[27], e[29], e[30], under, e[33], e[33] + PHILTRUM * (e[51] - e[33])])
    chain("lip.T.L", [e[51], e[52], e[54]])
    chain("lip.T.R", [e[51], e[50], e[48]])
    chain("lip.B.L", [e[57], e[56], e[54]])
    chain("lip.B.R", [e[57], e[58], e[48]])
    chin_front = e[8] + 0.5 * (e[57] - e[8])
    out["jaw"] = (e[8] + np.array([0.0, 5.0, -JAW_BACK_MM]), e[8])
    out["chin"] = (e[8], chin_front)
    out["chin.001"] = (chin_front, e[57] + 0.3 * (e[8] - e[57]))
    chain("jaw.L", [e[16], e[13], e[10]])
    chain("jaw.R", [e[0], e[3], e[6]])
    return out


def fit_warp(source: np.ndarray, target: np.ndarray):
    """A smooth map with f(source_i) ≈ target_i: least-squares affine plus Gaussian RBFs on the rest."""
    src, dst = np.asarray(source, np.float64), np.asarray(target, np.float64)
    homogeneous = np.hstack([src, np.ones((len(src), 1))])
    affine, *_ = np.linalg.lstsq(homogeneous, dst, rcond=None)
    residual = dst - homogeneous @ affine

    def kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        d2 = ((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=2)
        return np.exp(-0.5 * d2 / WARP_SIGMA_M**2)

    coef = np.linalg.solve(kernel(src, src) + WARP_RIDGE * np.eye(len(src)), residual)

    def warp(points: np.ndarray) -> np.ndarray:
        p = np.asarray(points, np.float64)
        return np.hstack([p, np.ones((len(p), 1))]) @ affine + kernel(p, src) @ coef

    return warp


def _enable_rigify() -> None:
    try:
        module = addon_utils.enable("rigify", default_set=True, persistent=True)
    except Exception as exc:  # noqa: BLE001 - Blender raises many kinds here
        raise RuntimeError(f"Rigify could not be enabled: {exc}") from exc
    if module is None or not hasattr(bpy.ops.object, "armature_human_metarig_add"):
        raise RuntimeError("Rigify is not available in this Blender (it ships as a core add-on from 4.2)")


def build_metarig(context, head: bpy.types.Object, armature: bpy.types.Object) -> bpy.types.Object:
    """Add a Rigify face metarig fitted to ``head`` (rigged by ``armature``, whose pose it takes)."""
    _enable_rigify()
    inputs = json.loads(head[RIG_INPUTS])
    lm, pivot = np.array(inputs["landmarks_mm"]), np.array(inputs["head_pivot_mm"])
    eyes = {b.name[-1]: np.array(b.head) for b in RIG.rig_bones(lm, pivot) if b.name.startswith("eye.")}
    view_layer = context.view_layer
    previous = view_layer.objects.active
    if context.mode != "OBJECT":
        bpy.ops.object.mode_set(mode="OBJECT")
    bpy.ops.object.armature_human_metarig_add()
    meta = context.view_layer.objects.active
    try:
        meta.name = meta.data.name = f"{head.name} metarig"
        for collection in list(meta.users_collection):
            collection.objects.unlink(meta)
        for collection in head.users_collection:
            collection.objects.link(meta)
        meta.matrix_world = armature.matrix_world.copy()
        view_layer.objects.active = meta
        bpy.ops.object.mode_set(mode="EDIT")
        try:
            _fit(meta.data.edit_bones, lm, pivot, eyes)
        finally:
            bpy.ops.object.mode_set(mode="OBJECT")
        root = meta.pose.bones[KEEP_FROM]
        root.rigify_type = "spines.super_head"
        root.rigify_parameters.connect_chain = False
        photo = head.get(replace.PHOTO_TAG, "")
        replace.tag(meta, photo)
        replace.tag(meta.data, photo)
    except BaseException:
        bpy.data.objects.remove(meta)
        raise
    finally:
        view_layer.objects.active = previous
    return meta


def _fit(edit_bones, lm: np.ndarray, pivot: np.ndarray, eyes_mm: dict[str, np.ndarray]) -> None:
    """Cut the metarig to the head and snap it (edit mode): landmark joints exactly, the rest warped."""
    keep = set()
    stack = [edit_bones[KEEP_FROM]]
    while stack:
        bone = stack.pop()
        keep.add(bone.name)
        stack.extend(bone.children)
    for bone in [b for b in edit_bones if b.name not in keep]:
        edit_bones.remove(bone)
    edit_bones[KEEP_FROM].parent = None
    joints = {
        name: tuple(head_space([h, t], pivot))
        for name, (h, t) in landmark_joints(lm, eyes_mm).items()
        if name in edit_bones
    }
    up = np.array([0.0, 0.0, 1.0])
    joints["spine.006"] = (np.zeros(3), 0.12 * up)  # the head turns about the pivot
    joints["spine.005"] = (-0.035 * up, np.zeros(3))
    joints[KEEP_FROM] = (-0.07 * up, -0.035 * up)
    source = np.array([p for n in joints for p in (edit_bones[n].head, edit_bones[n].tail)])
    target = np.array([p for n in joints for p in joints[n]])
    warp = fit_warp(source, target)
    others = [b for b in edit_bones if b.name not in joints]
    moved = warp(np.array([p for b in others for p in (b.head, b.tail)]))
    for k, bone in enumerate(others):
        bone.head, bone.tail = Vector(moved[2 * k]), Vector(moved[2 * k + 1])
    for name, (h, t) in joints.items():
        bone = edit_bones[name]
        bone.head, bone.tail = Vector(h), Vector(t)
