"""Build Face Rig under bpy 5.0.1: the shipped model's head of the sample photo, rigged and posed.

The head comes from the engine worker run in this process (the shipped model, as the add-on would
get it); the rig is built by prnet_blender.rig_build and posed through its pose bones. World
positions are read from the evaluated (deformed) mesh.
"""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest
from addon_env import NO_BPY_REASON

bpy = pytest.importorskip("bpy", reason=NO_BPY_REASON)

from prnet_blender import rig_build, scene_build  # noqa: E402
from prnet_blender.result import FaceResult  # noqa: E402

REST_DRIFT_M = 1e-6  # building the rig leaves every vertex where it was
JAW_OPEN_DEG = -15.0  # about the jaw bone's X axis: negative turns it down, opening the mouth
CHIN_MOVES_M = 0.003
FOREHEAD_STILL_M = 0.0002
UPPER_LIP_STILL_M = 0.001
BROW_RAISE_M = 0.005  # the brow bone's location Z (up)
BROW_FOLLOWS = 0.7  # share of the bone's move at the brow landmark's vertex (its weight there ≈ 0.8)
EYE_STILL_M = 0.0005
LID_CLOSE_DEG = -22.0  # the upper lid bone about its X axis: negative turns it down over the eye
LOWER_LID_RAISE_DEG = 8.0  # the lower lid bone about its X axis: positive turns it up
LID_CLOSED_FRACTION = 0.3  # the gap between the lids' middles shrinks below this share
HEAD_TURN_DEG = 30.0
METARIG_SNAP_M = 0.002  # a snapped metarig joint vs its landmark empty (the chains' ends are landmarks exactly)


@pytest.fixture(scope="module")
def face(tmp_path_factory):
    from engine.bundle import default_bundle_path
    from engine.image_io import sample_photo_path
    from engine.worker import Worker

    if not (default_bundle_path() / "bundle.json").is_file():
        pytest.skip("no default model bundle in weights/default")
    out = io.StringIO()
    worker = Worker(tmp_path_factory.mktemp("work"), out)
    photo = str(sample_photo_path())
    worker.handle({"id": 1, "cmd": "reconstruct", "photo": photo, "options": {"texture_size": 256}})
    reply = json.loads(out.getvalue().splitlines()[-1])
    return FaceResult.from_reply(reply["faces"][0], photo=photo, landmark_names=reply["landmark_names"])


@pytest.fixture()
def rigged(face):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    built = scene_build.build_photo(bpy.context, [face])
    head = built.faces[0]
    before = _world(head)
    rig = rig_build.build_rig(bpy.context, head, eyeballs=True)
    bpy.context.view_layer.update()
    empties = {e.name: e for e in built.collection.children[0].objects}
    yield head, rig, before, empties
    bpy.ops.wm.read_factory_settings(use_empty=True)


def _world(obj) -> np.ndarray:
    depsgraph = bpy.context.evaluated_depsgraph_get()
    evaluated = obj.evaluated_get(depsgraph)
    mesh = evaluated.to_mesh()
    co = np.empty(3 * len(mesh.vertices), np.float32)
    mesh.vertices.foreach_get("co", co)
    evaluated.to_mesh_clear()
    m = np.array(obj.matrix_world)
    return co.reshape(-1, 3).astype(np.float64) @ m[:3, :3].T + m[:3, 3]


def _posed(head, rig, bone, *, rotate_x_deg=0.0, rotate_y_deg=0.0, location=(0.0, 0.0, 0.0)) -> np.ndarray:
    pb = rig.armature.pose.bones[bone]
    pb.rotation_mode = "XYZ"
    pb.rotation_euler = (math.radians(rotate_x_deg), math.radians(rotate_y_deg), 0.0)
    pb.location = location
    bpy.context.view_layer.update()
    return _world(head)


def _at(empties, name) -> np.ndarray:
    return np.array(empties[name].matrix_world.translation)


def _nearest(points: np.ndarray, at: np.ndarray) -> int:
    return int(np.linalg.norm(points - at, axis=1).argmin())


def test_the_rig_leaves_the_head_where_it_was_and_deforms_it(rigged):
    head, rig, before, _ = rigged
    assert np.abs(_world(head) - before).max() < REST_DRIFT_M
    assert head.parent is rig.armature and head.modifiers[rig_build.MODIFIER_NAME].object is rig.armature
    bones = rig.armature.data.bones
    assert {"neck", "head", "jaw", "eye.R", "eye.L", "lid.T.R", "lid.B.L", "brow.L.mid", "lip.corner.R"} <= set(
        bones.keys()
    )
    assert {g.name for g in head.vertex_groups} == {b.name for b in bones if b.use_deform}
    with pytest.raises(ValueError, match="already has a face rig"):
        rig_build.build_rig(bpy.context, head)


def test_turning_the_jaw_opens_the_mouth_and_the_landmarks_follow(rigged):
    head, rig, rest, empties = rigged
    chin_empty, lip_gap = (
        _at(empties, "jaw_08"),
        np.linalg.norm(rest[_lip(empties, rest, 51)] - rest[_lip(empties, rest, 57)]),
    )
    posed = _posed(head, rig, "jaw", rotate_x_deg=JAW_OPEN_DEG)
    moved = np.linalg.norm(posed - rest, axis=1)
    assert moved[_nearest(rest, chin_empty)] >= CHIN_MOVES_M
    forehead = rest[:, 2] > rest[:, 2].max() - 0.02  # the top 2 cm of the face
    assert moved[forehead].max() <= FOREHEAD_STILL_M
    assert moved[_lip(empties, rest, 51)] <= UPPER_LIP_STILL_M
    assert np.linalg.norm(posed[_lip(empties, rest, 51)] - posed[_lip(empties, rest, 57)]) > lip_gap + CHIN_MOVES_M
    assert np.linalg.norm(_at(empties, "jaw_08") - chin_empty) >= CHIN_MOVES_M  # the chin's empty went with it


def _lip(empties, rest, landmark: int) -> int:
    names = {51: "mouth_03", 57: "mouth_09"}  # iBUG 52 and 58 (0-based 51, 57): the lips' middles
    return _nearest(rest, _at(empties, names[landmark]))


def test_raising_a_brow_moves_the_brow_not_the_eye(rigged):
    head, rig, rest, empties = rigged
    posed = _posed(head, rig, "brow.R.mid", location=(0.0, 0.0, BROW_RAISE_M))
    moved = posed - rest
    brow = _nearest(rest, _at(empties, "brow_R_2"))
    assert moved[brow, 2] > BROW_FOLLOWS * BROW_RAISE_M
    eye = [_nearest(rest, _at(empties, f"eye_R_{k}")) for k in range(6)]
    assert np.linalg.norm(moved[eye], axis=1).max() <= EYE_STILL_M


def test_closing_the_lids_covers_the_eyes(rigged):
    head, rig, rest, empties = rigged
    for side in ("R", "L"):
        upper = _nearest(rest, (_at(empties, f"eye_{side}_1") + _at(empties, f"eye_{side}_2")) / 2)
        lower = _nearest(rest, (_at(empties, f"eye_{side}_4") + _at(empties, f"eye_{side}_5")) / 2)
        midline = np.mean([_at(empties, f"eye_{side}_{k}")[2] for k in range(6)])
        _posed(head, rig, f"lid.B.{side}", rotate_x_deg=LOWER_LID_RAISE_DEG)
        posed = _posed(head, rig, f"lid.T.{side}", rotate_x_deg=LID_CLOSE_DEG)
        gap = np.linalg.norm(posed[upper] - posed[lower])
        assert gap < LID_CLOSED_FRACTION * np.linalg.norm(rest[upper] - rest[lower])
        assert posed[upper, 2] < midline  # the upper lid came down over the middle of the eye
        _posed(head, rig, f"lid.T.{side}")
        _posed(head, rig, f"lid.B.{side}")


def test_turning_the_head_bone_turns_the_whole_head_about_the_neck_pivot(rigged):
    head, rig, rest, _ = rigged
    pivot = np.array(rig.armature.matrix_world @ rig.armature.data.bones["head"].head_local)
    posed = _posed(head, rig, "head", rotate_y_deg=HEAD_TURN_DEG)
    moved = np.linalg.norm(posed - rest, axis=1)
    assert moved.min() > 0.001  # every vertex turns with the head
    np.testing.assert_allclose(np.linalg.norm(posed - pivot, axis=1), np.linalg.norm(rest - pivot, axis=1), atol=1e-6)


def test_eyeballs_sit_on_the_eye_bones(rigged):
    head, rig, *_ = rigged
    assert len(rig.eyeballs) == 2
    for ball in rig.eyeballs:
        assert ball.parent is rig.armature and ball.parent_type == "BONE" and ball.parent_bone.startswith("eye.")
        centre = rig.armature.matrix_world @ rig.armature.data.bones[ball.parent_bone].head_local
        assert (ball.matrix_world.translation - centre).length < 1e-5


def test_the_rigify_metarig_fits_the_face_and_generates(rigged):
    from prnet_blender import metarig

    head, rig, _, empties = rigged
    meta = metarig.build_metarig(bpy.context, head, rig.armature)
    assert meta.users_collection == head.users_collection
    assert np.allclose(np.array(meta.matrix_world), np.array(rig.armature.matrix_world), atol=1e-6)
    bones = meta.data.bones
    assert metarig.KEEP_FROM in bones and "hand.L" not in bones and bones[metarig.KEEP_FROM].parent is None
    world = meta.matrix_world
    for bone, landmark in (
        ("lid.T.L", "eye_L_3"),
        ("brow.T.R", "brow_R_0"),
        ("nose.002", "nose_3"),
        ("chin", "jaw_08"),
    ):
        at = np.array(world @ bones[bone].head_local)
        assert np.linalg.norm(at - _at(empties, landmark)) < METARIG_SNAP_M, bone
    assert np.allclose(
        world @ bones["spine.006"].head_local, rig.armature.matrix_world @ rig.armature.data.bones["head"].head_local
    )
    bpy.ops.object.select_all(action="DESELECT")
    meta.select_set(True)
    bpy.context.view_layer.objects.active = meta
    assert bpy.ops.pose.rigify_generate() == {"FINISHED"}
    generated = meta.data.rigify_target_rig
    assert generated is not None and "jaw_master" in generated.data.bones and "lips.L" in generated.data.bones


def test_the_operator_rigs_the_active_head(face):
    import prnet_blender

    bpy.ops.wm.read_factory_settings(use_empty=True)
    prnet_blender.register()
    try:
        built = scene_build.build_photo(bpy.context, [face])
        assert bpy.ops.prnet.build_rig(eyeballs=False, rigify_metarig=False) == {"FINISHED"}
        assert rig_build.rig_of(built.faces[0]) is not None
        assert bpy.ops.prnet.build_rig.poll()  # the armature is active now: it leads back to the head
        with pytest.raises(RuntimeError, match="already has a face rig"):
            bpy.ops.prnet.build_rig(eyeballs=False, rigify_metarig=False)
    finally:
        prnet_blender.unregister()
        bpy.ops.wm.read_factory_settings(use_empty=True)
