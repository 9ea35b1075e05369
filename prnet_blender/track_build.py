"""A tracked video → an animated head: the first tracked face built as a photo's is, then keyed per frame.

:func:`build_track` builds the first face with :func:`.scene_build.build_photo` (mesh, texture,
landmark empties, the pivot at the neck; replacing the video's previous result unless asked not
to), then keys, on every frame read:

* the head object's location, rotation (Euler ``XZY``, continuous from frame to frame) and scale —
  the placement :func:`.frames.face_placement` gives each frame's pose against the first frame's;
* each landmark empty's location under the head (its frontal position that frame: the expression);
* the head's ``prnet_tracked`` property, 1 where the face was found and 0 in a gap (a gap holds the
  last pose: nothing is invented);

and adds a matched orthographic camera showing the video as a movie clip, the scene's frame rate
and range (Blender frame = video frame index + 1), and optionally a Mesh Cache modifier that plays
the per-frame mesh (the worker's PC2). All or nothing, as for photos.
"""

from __future__ import annotations

from dataclasses import dataclass

import bpy
import numpy as np
from mathutils import Euler, Matrix

from . import replace
from .datablocks import remove_datablocks, track
from .frames import BLENDER_EULER_ORDER, engine_to_blender, face_placement, frontal_landmarks, matched_camera
from .keyframes import key_channels
from .result import FaceResult, TrackResult
from .scene_build import PROP, BuildOptions, BuiltPhoto, build_photo

MESH_CACHE_MODIFIER = "PRNet Expression"
TRACKED_PROP = PROP + "tracked"  # 1 on frames where the face was found, 0 in a gap


@dataclass(frozen=True, slots=True)
class TrackBuildOptions:
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)  # world point of the first frame's head (3D cursor)
    replace: bool = True  # a new track of a video replaces the video's previous result
    mesh_cache: bool = True  # add the Mesh Cache modifier when the track has a cache


def blender_frame(index: np.ndarray | int):
    """Video frame index (0 = first) → Blender frame (first = 1)."""
    return index + 1


def build_track(context, face: FaceResult, track: TrackResult, options: TrackBuildOptions) -> BuiltPhoto:
    """Build and animate the head of a tracked video in ``context.scene`` (see the module's text)."""
    built = build_photo(
        context, [face],
        BuildOptions(create_landmarks=True, apply_pose=True, add_camera=False, origin=options.origin,
                     pack_photo=False, replace=options.replace),
    )  # fmt: skip
    try:
        head = built.faces[0]
        first = face_placement(
            yaw=face.yaw, pitch=face.pitch, roll=face.roll, rotation=face.rotation, translation=face.translation,
            scale=face.scale, ref_translation=face.translation, ref_scale=face.scale, pivot=face.head_pivot,
        )  # fmt: skip
        # where the first frame's head went: the cursor, or the place of the result it replaced
        origin = tuple(h - p for h, p in zip(head.location, first.location))
        _key_head(head, face, track, origin)
        _key_landmarks(head, face, track)
        if options.mesh_cache and track.mesh_cache:
            _mesh_cache(head, track)
        built.camera = _camera(context, face, track, built, origin)
        _scene_time(context.scene, track)
    except BaseException:
        remove_datablocks(built.created)
        raise
    return built


def _holds(track: TrackResult) -> np.ndarray:
    """(K,) bool per found frame: the next frame read is a gap (the key holds until the face is back)."""
    found = track.found
    nxt = np.append(found[1:], True)
    return nxt[found] == False  # noqa: E712 - element-wise


def _key_head(head, face: FaceResult, track: TrackResult, origin) -> None:
    frames = blender_frame(track.frame[track.found])
    locations, eulers, scales = [], [], []
    previous = Euler(tuple(head.rotation_euler), BLENDER_EULER_ORDER)
    for i in np.flatnonzero(track.found):
        yaw, pitch, roll = track.yaw_pitch_roll[i]
        place = face_placement(
            yaw=yaw, pitch=pitch, roll=roll, rotation=track.rotation[i], translation=track.translation[i],
            scale=track.scale[i], ref_translation=face.translation, ref_scale=face.scale, pivot=face.head_pivot,
        )  # fmt: skip
        euler = Matrix(place.rotation.tolist()).to_euler(BLENDER_EULER_ORDER, previous)
        previous = euler
        locations.append([o + p for o, p in zip(origin, place.location)])
        eulers.append(tuple(euler))
        scales.append([place.scale] * 3)
    hold = _holds(track)
    key_channels(head, "location", frames, np.array(locations), hold_after=hold)
    key_channels(head, "rotation_euler", frames, np.array(eulers), hold_after=hold)
    key_channels(head, "scale", frames, np.array(scales), hold_after=hold)
    head[TRACKED_PROP] = 1
    everything = np.ones(len(track.frame), bool)
    key_channels(head, f'["{TRACKED_PROP}"]', blender_frame(track.frame), track.found[:, None], hold_after=everything)


def _key_landmarks(head, face: FaceResult, track: TrackResult) -> None:
    empties = {int(c[PROP + "landmark"]): c for c in head.children if PROP + "landmark" in c}
    found = np.flatnonzero(track.found)
    local = np.stack([
        engine_to_blender(
            frontal_landmarks(track.landmarks_3d[i], track.rotation[i], track.translation[i], track.scale[i])
            - face.head_pivot
        )
        for i in found
    ])  # fmt: skip
    frames, hold = blender_frame(track.frame[found]), _holds(track)
    for index, empty in empties.items():
        key_channels(empty, "location", frames, local[:, index], hold_after=hold)


def _mesh_cache(head, track: TrackResult) -> None:
    mod = head.modifiers.new(MESH_CACHE_MODIFIER, "MESH_CACHE")
    mod.cache_format = "PC2"
    mod.filepath = _blend_relative(track.mesh_cache)
    mod.time_mode, mod.play_mode = "FRAME", "SCENE"
    mod.frame_start, mod.frame_scale = mesh_cache_timing(track.mesh_cache_first_frame, track.every)
    mod.forward_axis, mod.up_axis = "POS_Y", "POS_Z"  # the cache is written in the mesh's own axes


def mesh_cache_timing(first_index: int, every: int) -> tuple[float, float]:
    """The Mesh Cache modifier's (frame_start, frame_scale) that play sample k at the Blender frame of
    video frame ``first_index + k · every``: the modifier reads sample ``frame · scale − start``."""
    return float(blender_frame(first_index)) / every, 1.0 / every


def _blend_relative(path: str) -> str:
    """``//``-relative when the .blend is saved (the file and its cache travel together), else absolute."""
    if bpy.data.filepath:
        try:
            return bpy.path.relpath(path)
        except ValueError:  # another drive (Windows)
            return path
    return path


def _camera(context, face: FaceResult, track: TrackResult, built: BuiltPhoto, origin) -> bpy.types.Object:
    width, height = track.frame_size
    setup = matched_camera(ref_translation=face.translation, ref_scale=face.scale, image_size=(height, width))
    name = f"{built.collection.name} camera"
    cam = _made(built, face, bpy.data.cameras.new(name))
    cam.type, cam.ortho_scale, cam.sensor_fit = "ORTHO", setup.ortho_scale, "AUTO"
    cam.clip_start, cam.clip_end = setup.clip
    clip = _made(built, face, bpy.data.movieclips.load(track.video, check_existing=False))
    clip.frame_start = 1  # clip frame 1 = the video's first frame = Blender frame 1
    bg = cam.background_images.new()
    bg.source, bg.clip, bg.use_camera_clip = "MOVIE_CLIP", clip, False
    bg.frame_method, bg.display_depth, bg.alpha = "FIT", "BACK", 1.0
    cam.show_background_images = True
    obj = _made(built, face, bpy.data.objects.new(name, cam))
    obj.location = tuple(o + c for o, c in zip(origin, setup.location))
    obj.rotation_euler = setup.rotation_euler
    built.collection.objects.link(obj)
    scene = context.scene
    scene.camera = obj
    scene.render.resolution_x, scene.render.resolution_y = width, height
    scene.render.resolution_percentage = 100
    return obj


def _made(built: BuiltPhoto, face: FaceResult, block):
    """Record ``block`` as made by this build (removed if the build fails), tagged with the video (a
    later track of it replaces the block with the rest of the result)."""
    track(built.created, block)
    replace.tag(block, face.photo)
    return block


def _scene_time(scene, track: TrackResult) -> None:
    """The scene's frame rate (fractional rates through fps_base) and frame range (the frames read)."""
    fps = max(int(round(track.fps)), 1)
    scene.render.fps, scene.render.fps_base = fps, fps / track.fps
    scene.frame_start = int(blender_frame(track.frame[0]))
    scene.frame_end = int(blender_frame(track.frame[-1]))
    scene.frame_set(scene.frame_start)
