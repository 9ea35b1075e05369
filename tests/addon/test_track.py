"""Track Video end to end under bpy: a clip of the sample photo rolled by a known angle → the registered
operator (blocking, as in background mode) → a head keyed per frame over the footage.

A real engine worker with the shipped model tracks the clip. Checked: one key per frame; the head's
roll channel follows the clip's roll; every landmark empty, seen by the matched camera, lies on the
landmark the engine tracked in that frame; the camera shows the video as a movie clip; the scene's
frame rate and range are the video's; the Mesh Cache modifier plays the worker's PC2 (the evaluated
mesh at a frame is that frame's sample).
"""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
from addon_env import NO_BPY_REASON, REPO, SAMPLE_PHOTO

bpy = pytest.importorskip("bpy", reason=NO_BPY_REASON)
sys.path.insert(0, str(REPO / "tests"))

from video_clips import CLIP_FPS, motion, moving_clip  # noqa: E402

from engine.image_io import load_image  # noqa: E402
from engine.point_cache import read_pc2  # noqa: E402
from prnet_blender import client, preferences, properties, track_build, track_operators  # noqa: E402
from prnet_blender.keyframes import object_fcurves  # noqa: E402
from prnet_blender.result import TrackResult  # noqa: E402

N_FRAMES = 12
FACE_CENTRE = (224.0, 126.0)  # photo px: the middle of the sample photo's landmarks (the clip turns about it)
ROLL_DEG = 15.0
ROLL_TOLERANCE_DEG = 3.0  # per frame: the engine's roll error on a rolled photo, plus smoothing lag
LANDMARK_TOLERANCE_M = 1e-5  # the empties are placed by the same maps as the keys: float32 rounding only
CACHE_TOLERANCE_M = 1e-6  # float32 positions read back from the PC2


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    folder = tmp_path_factory.mktemp("track")
    photo = load_image(SAMPLE_PHOTO)
    clip_path = folder / "roll.avi"
    moves = motion(N_FRAMES, roll_deg=ROLL_DEG, shift_px=10.0, zoom=0.05)
    clip = moving_clip(clip_path, photo, FACE_CENTRE, moves)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.utils.register_class(properties.PRNET_PG_settings)
    properties.register_settings()
    bpy.utils.register_class(track_operators.PRNET_OT_track_video)
    engine = client.EngineClient(sys.executable, root=REPO, timeout_s=track_operators.TRACK_STALL_S)
    replies = []
    original_finish = track_operators.PRNET_OT_track_video._finish

    def keep_reply(self, context, req):  # the reply's arrays, read before the client deletes them
        if req.reply is not None:
            replies.append((req.reply, TrackResult.from_reply(req.reply, video=str(clip_path))))
        return original_finish(self, context, req)

    patches = pytest.MonkeyPatch()
    patches.setattr(preferences, "engine_client", lambda context: engine)
    patches.setattr(preferences, "bundle_override", lambda context: None)
    patches.setattr(track_operators.PRNET_OT_track_video, "_finish", keep_reply)
    bpy.context.scene.prnet.texture_size = "512"
    result = bpy.ops.prnet.track_video(filepath=str(clip_path), track_mesh_cache=True)
    yield {"result": result, "clip": clip, "reply": replies[0][0], "track": replies[0][1], "path": clip_path}
    patches.undo()
    engine.stop()
    bpy.utils.unregister_class(track_operators.PRNET_OT_track_video)
    properties.unregister_settings()
    bpy.utils.unregister_class(properties.PRNET_PG_settings)
    bpy.ops.wm.read_factory_settings(use_empty=True)


def _head():
    return next(o for o in bpy.data.collections["roll"].objects if o.type == "MESH")


def test_every_frame_is_found_and_keyed_once(tracked):
    assert tracked["result"] == {"FINISHED"}
    assert tracked["track"].found.all()
    fcurves = object_fcurves(_head(), "unused")
    rot = [fc for fc in fcurves if fc.data_path == "rotation_euler"]
    assert len(rot) == 3
    frames = [kp.co[0] for kp in rot[0].keyframe_points]
    assert frames == [float(i + 1) for i in range(N_FRAMES)]


def test_the_heads_roll_follows_the_clip(tracked):
    head, scene = _head(), bpy.context.scene
    rolls = []
    for i in range(N_FRAMES):
        scene.frame_set(i + 1)
        rolls.append(math.degrees(head.rotation_euler[1]))  # Euler XZY: Y is the engine's roll
    change = np.array(rolls) - rolls[0]
    expected = tracked["clip"].roll - tracked["clip"].roll[0]
    assert np.abs(change - expected).max() < ROLL_TOLERANCE_DEG


def test_landmark_empties_sit_on_the_tracked_landmarks_seen_by_the_camera(tracked):
    track, scene = tracked["track"], bpy.context.scene
    head = _head()
    empties = {int(c["prnet_landmark"]): c for c in head.children if "prnet_landmark" in c}
    assert len(empties) == 68
    k = 0.001 / track.scale[0]
    for i in (0, N_FRAMES // 2, N_FRAMES - 1):
        scene.frame_set(i + 1)
        bpy.context.view_layer.update()
        world = np.array([empties[j].matrix_world.translation[:] for j in range(68)])
        lm = track.landmarks_3d[i]
        expected_x = k * (lm[:, 0] - track.translation[0][0])
        expected_z = -k * (lm[:, 1] - track.translation[0][1])
        np.testing.assert_allclose(world[:, 0], expected_x, atol=LANDMARK_TOLERANCE_M)
        np.testing.assert_allclose(world[:, 2], expected_z, atol=LANDMARK_TOLERANCE_M)


def test_camera_shows_the_video_and_the_scene_takes_its_rate_and_range(tracked):
    scene = bpy.context.scene
    cam = scene.camera
    bg = cam.data.background_images[0]
    assert bg.source == "MOVIE_CLIP" and bg.clip.filepath == str(tracked["path"])
    assert scene.render.fps / scene.render.fps_base == pytest.approx(CLIP_FPS)
    assert (scene.frame_start, scene.frame_end) == (1, N_FRAMES)
    assert (scene.render.resolution_x, scene.render.resolution_y) == (640, 480)


def test_the_mesh_cache_plays_the_workers_samples(tracked):
    head, scene = _head(), bpy.context.scene
    mod = head.modifiers[track_build.MESH_CACHE_MODIFIER]
    samples, _, _ = read_pc2(bpy.path.abspath(mod.filepath))
    assert samples.shape == (N_FRAMES, len(head.data.vertices), 3)
    for i in (0, N_FRAMES - 1):
        scene.frame_set(i + 1)
        evaluated = head.evaluated_get(bpy.context.evaluated_depsgraph_get()).to_mesh()
        co = np.empty(len(evaluated.vertices) * 3, np.float32)
        evaluated.vertices.foreach_get("co", co)
        np.testing.assert_allclose(co.reshape(-1, 3), samples[i], atol=CACHE_TOLERANCE_M)
    assert np.abs(samples[-1] - samples[0]).max() > CACHE_TOLERANCE_M  # the expression moves the mesh
    first, every = 3, 2  # the same samples read as a track of every 2nd frame from video frame 3
    mod.frame_start, mod.frame_scale = track_build.mesh_cache_timing(first, every)
    for k in (0, 2):
        scene.frame_set(track_build.blender_frame(first + k * every))
        evaluated = head.evaluated_get(bpy.context.evaluated_depsgraph_get()).to_mesh()
        co = np.empty(len(evaluated.vertices) * 3, np.float32)
        evaluated.vertices.foreach_get("co", co)
        np.testing.assert_allclose(co.reshape(-1, 3), samples[k], atol=CACHE_TOLERANCE_M)
