"""Video tracking with the shipped model: clips made from real photos moved by a known roll, shift and
zoom (tests/video_clips.py), the CLI's files, and the pieces (video reader, One Euro filter, PC2).

The figures the README quotes come from benchmarks/track_accuracy.py on the same clips.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io as sio

from engine.api import Reconstructor
from engine.cli import main
from engine.errors import InvalidOptionError, InvalidVideoError
from engine.image_io import load_image, sample_photo_path
from engine.one_euro import OneEuroFilter
from engine.point_cache import read_pc2
from engine.tracker import FaceTracker
from engine.video import FrameRange, open_video

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from video_clips import motion, moving_clip, still_clip  # noqa: E402

CLIP_FRAMES = 40
ROLL_DEG = 20.0
ROLL_MEAN_ERROR_DEG = 2.0  # the bar for the recovered roll change
NME_MARGIN = 1.0  # percentage points over the still photo's NME (the bar)
JITTER_MAX = 0.3  # % of the face box, frame to frame, on a still clip (the bar)
DEV_PHOTO = "image00014"  # AFLW2000-3D dev photo, yaw 6°, pitch 3°, roll −2°
DEV_CENTRE = (227.0, 271.0)  # photo px: the middle of its ground-truth landmarks (the clip turns about it)


def nme(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean 2D landmark error in % of √(w·h) of the ground truth's box (the benchmark's normaliser)."""
    box = np.sqrt(np.prod(gt.max(axis=0) - gt.min(axis=0)))
    return float(np.linalg.norm(pred[:, :2] - gt, axis=1).mean() / box * 100)


@pytest.fixture(scope="module")
def rec():
    return Reconstructor.from_bundle()


@pytest.fixture(scope="module", params=["default", "fast"])
def dev_clip(request, shared_data, rec, tmp_path_factory):
    """The rolled clip tracked in one mode, with the still photo's NME at the matching quality (the
    fast mode runs the fast model)."""
    fast = request.param == "fast"
    photo = load_image(shared_data / "aflw2000_dev" / f"{DEV_PHOTO}.jpg")
    gt = sio.loadmat(shared_data / "aflw2000_dev" / f"{DEV_PHOTO}.mat")["pt3d_68"][:2].T
    path = tmp_path_factory.mktemp("clips") / "dev.avi"
    clip = moving_clip(path, photo, DEV_CENTRE, motion(CLIP_FRAMES, roll_deg=ROLL_DEG))
    still_nme = nme(rec(photo, all_faces=False, quality="fast" if fast else "full")[0].landmarks_3d, gt)
    tracker = FaceTracker(rec, fast=fast)
    assert tracker.bundle is rec.bundle_for("fast" if fast else "full")
    with open_video(path) as video:
        frames = list(tracker.track(video.frames()))
    return clip, gt, still_nme, frames


def test_a_rolled_shifted_zoomed_clip_keeps_the_face_and_its_roll(dev_clip):
    clip, _, _, frames = dev_clip
    assert len(frames) == CLIP_FRAMES and all(len(f.faces) == 1 for f in frames)
    rolls = np.array([f.faces[0].pose.roll for f in frames])
    error = np.abs((rolls - rolls[0]) - (clip.roll - clip.roll[0]))
    assert error.mean() < ROLL_MEAN_ERROR_DEG


def test_tracked_landmarks_are_within_a_point_of_the_still_photos_nme(dev_clip):
    clip, gt, still_nme, frames = dev_clip
    errors = [nme(f.faces[0].landmarks_3d, clip.move(f.index, gt)) for f in frames]
    assert np.mean(errors) <= still_nme + NME_MARGIN


@pytest.mark.parametrize("fast", [False, True], ids=["default", "fast"])
def test_a_still_clip_barely_jitters(rec, tmp_path, fast):
    photo = load_image(sample_photo_path())
    path = tmp_path / "still.avi"
    still_clip(path, photo, (224.0, 126.0), 12)
    with open_video(path) as video:
        frames = list(FaceTracker(rec, fast=fast).track(video.frames()))
    lm = np.array([f.faces[0].landmarks_3d[:, :2] for f in frames])
    box = np.sqrt(np.prod(lm[0].max(axis=0) - lm[0].min(axis=0)))
    jitter = np.linalg.norm(np.diff(lm, axis=0), axis=2).mean(axis=1) / box * 100
    assert jitter.max() <= JITTER_MAX
    assert frames[0].faces[0].locked and not any(f.faces[0].locked for f in frames[1:])  # no detector after


def test_frames_without_a_face_are_gaps_and_the_face_is_found_again(rec, tmp_path):
    photo = load_image(sample_photo_path())
    path = tmp_path / "gap.avi"
    still_clip(path, photo, (224.0, 126.0), 6)
    frames = []
    with open_video(path) as video:
        for k, frame in enumerate(video.frames()):
            if k in (2, 3):  # the face leaves: a grey frame
                frame = type(frame)(frame.index, frame.time, np.full_like(frame.rgb, 96))
            frames.append(frame)
    tracked = list(FaceTracker(rec).track(frames))
    assert [len(f.faces) for f in tracked] == [1, 1, 0, 0, 1, 1]
    assert tracked[4].faces[0].locked  # found again by the detector


def test_cli_writes_the_track_a_point_cache_and_the_first_frames_obj(tmp_path):
    photo = load_image(sample_photo_path())
    clip = tmp_path / "talk.avi"
    moving_clip(clip, photo, (224.0, 126.0), motion(6, roll_deg=10.0))
    out = tmp_path / "out"
    assert main(["track", str(clip), "-o", str(out), "--fast", "--every", "2", "--mesh-cache",
                 "--texture-size", "256"]) == 0  # fmt: skip
    track = json.loads((out / "talk.track.json").read_text())
    assert track["fps"] == 25.0 and track["frame_size"] == [640, 480] and not track["interrupted"]
    assert [f["frame"] for f in track["frames"]] == [0, 2, 4]
    face = track["frames"][1]["faces"][0]
    assert len(face["landmarks_3d"]) == 68 and len(face["visibility"]) == 68
    assert set(face["pose"]) == {"yaw", "pitch", "roll", "rotation", "translation", "scale"}
    samples, start, rate = read_pc2(out / "talk.pc2")
    assert samples.shape[0] == 3 and (start, rate) == (0.0, 2.0)
    obj_vertices = [line for line in (out / "talk.obj").read_text().splitlines() if line.startswith("v ")]
    assert len(obj_vertices) == samples.shape[1]
    first = np.array([[float(v) for v in line.split()[1:]] for line in obj_vertices[:50]])
    np.testing.assert_allclose(first, samples[0, :50], atol=1e-3)  # the cache's first sample is the OBJ
    assert not list(out.glob(".*.tmp"))


def test_ctrl_c_writes_the_frames_tracked_so_far_as_complete_files(tmp_path, monkeypatch):
    from engine import tracker as tracker_module

    photo = load_image(sample_photo_path())
    clip = tmp_path / "long.avi"
    still_clip(clip, photo, (224.0, 126.0), 8)
    real_track = tracker_module.FaceTracker.track_frames

    def interrupted_after_three(self, frames):
        for k, pair in enumerate(real_track(self, frames)):
            if k == 3:
                raise KeyboardInterrupt
            yield pair

    monkeypatch.setattr(tracker_module.FaceTracker, "track_frames", interrupted_after_three)
    out = tmp_path / "out"
    assert main(["track", str(clip), "-o", str(out), "--fast", "--mesh-cache", "--texture-size", "256"]) == 130
    track = json.loads((out / "long.track.json").read_text())
    assert track["interrupted"] and len(track["frames"]) == 3
    assert read_pc2(out / "long.pc2")[0].shape[0] == 3
    assert not list(out.glob(".*.tmp"))


def test_bad_videos_and_ranges_are_named(tmp_path):
    (tmp_path / "notes.mp4").write_text("not a video")
    with pytest.raises(InvalidVideoError, match="notes.mp4"):
        open_video(tmp_path / "notes.mp4")
    with pytest.raises(InvalidVideoError, match="no such file"):
        open_video(tmp_path / "missing.mp4")
    for bad in ({"start": -1.0}, {"start": 2.0, "end": 1.0}, {"every": 0}):
        with pytest.raises(InvalidOptionError):
            FrameRange(**bad)
    assert main(["track", str(tmp_path / "notes.mp4"), "-o", str(tmp_path / "o")]) == 1


def test_frame_range_picks_the_frames_of_its_seconds():
    assert list(FrameRange(1.0, 2.0, 5).indices(25.0, 1000)) == [25, 30, 35, 40, 45, 50]
    assert list(FrameRange().indices(10.0, 3)) == [0, 1, 2]


def test_one_euro_damps_a_still_points_jitter_and_follows_a_moving_one():
    rng = np.random.default_rng(0)
    x = 100.0 + rng.normal(0.0, 0.1, 200)  # a still point's jitter: 0.1 % of a 100 px face
    f = OneEuroFilter()
    still = np.array([f(np.array([[v, 0.0]]), t / 25, unit=100.0)[0, 0] for t, v in enumerate(x)])
    assert np.std(np.diff(x[10:])) > 4.0 * np.std(np.diff(still[10:]))
    f.reset()
    ramp = [f(np.array([[10.0 * t, 0.0]]), t / 25, unit=100.0)[0, 0] for t in range(50)]
    assert 10.0 * 49 - ramp[-1] < 10.0  # a face moving 2.5 face sizes a second lags under one frame
