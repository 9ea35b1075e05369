"""Benchmark: video tracking on clips made from AFLW2000-3D photos moved by a known roll, shift and zoom.

``PYTHONPATH=. .venv/bin/python benchmarks/track_accuracy.py --dev ../shared/data/aflw2000_dev
[--photos 10] [--frames 60] [--plot docs/track-angles.png]`` builds, per near-frontal dev photo
(|yaw| < 30°, every k-th in name order), a clip of ``--frames`` frames at 25 frames/s (roll 0 →
+20° → −20° → 0, a ±40 px shift and ±15 % zoom; tests/video_clips.py), tracks it in the default
and fast modes, and prints: faces found, the mean error of the recovered roll change, the mean
landmark NME of the tracked frames against the moved ground truth beside the still photo's NME,
the frames per second once locked (the first frame's detection excluded), and the frame-to-frame
jitter on a still clip of the same photo. ``--plot`` draws yaw, pitch and roll over time for the
first photo's clip, with the true roll. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import scipy.io as sio

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

from video_clips import CLIP_FPS, motion, moving_clip, still_clip  # noqa: E402

from engine.api import Reconstructor  # noqa: E402
from engine.image_io import load_image  # noqa: E402
from engine.tracker import FaceTracker  # noqa: E402
from engine.video import open_video  # noqa: E402

FRONTAL_YAW = 30.0  # degrees: the clips turn the photo in its plane, so a near-frontal face keeps its yaw
STILL_FRAMES = 15
PLOT_SIZE = (960, 360)  # width, height px
PLOT_COLOURS = {"yaw": (40, 120, 220), "pitch": (60, 170, 60), "roll": (220, 60, 40), "true roll": (0, 0, 0)}


def nme(pred: np.ndarray, gt: np.ndarray) -> float:
    box = np.sqrt(np.prod(gt.max(axis=0) - gt.min(axis=0)))
    return float(np.linalg.norm(pred[:, :2] - gt, axis=1).mean() / box * 100)


def track(rec, path: Path, fast: bool) -> tuple[list, float]:
    """The tracked frames and the frames per second after the first (locked) frame."""
    with open_video(path) as video:
        frames, stamps = [], []
        for tracked in FaceTracker(rec, fast=fast).track(video.frames()):
            frames.append(tracked)
            stamps.append(time.perf_counter())
    return frames, (len(stamps) - 1) / max(stamps[-1] - stamps[0], 1e-9)


def run_photo(rec, jpg: Path, n_frames: int, tmp: Path) -> dict:
    photo = load_image(jpg)
    gt = sio.loadmat(jpg.with_suffix(".mat"))["pt3d_68"][:2].T
    centre = tuple(gt.mean(axis=0))
    clip = moving_clip(tmp / "clip.avi", photo, centre, motion(n_frames))
    still_clip(tmp / "still.avi", photo, centre, STILL_FRAMES)
    still_nme = nme(rec(photo, all_faces=False)[0].landmarks_3d, gt)
    out = {"still_nme": still_nme}
    for mode, fast in (("default", False), ("fast", True)):
        frames, fps = track(rec, tmp / "clip.avi", fast)
        found = [f for f in frames if f.faces]
        rolls = np.array([f.faces[0].pose.roll if f.faces else np.nan for f in frames])
        roll_error = np.nanmean(np.abs((rolls - rolls[0]) - (clip.roll - clip.roll[0])))
        errors = [nme(f.faces[0].landmarks_3d, clip.move(f.index, gt)) for f in found]
        still, _ = track(rec, tmp / "still.avi", fast)
        lm = np.array([f.faces[0].landmarks_3d[:, :2] for f in still if f.faces])
        box = np.sqrt(np.prod(lm[0].max(axis=0) - lm[0].min(axis=0)))
        jitter = np.linalg.norm(np.diff(lm, axis=0), axis=2).mean(axis=1) / box * 100
        out[mode] = {
            "found": len(found) / len(frames), "roll_error": roll_error, "nme": float(np.mean(errors)),
            "fps": fps, "jitter_mean": float(jitter.mean()), "jitter_max": float(jitter.max()),
            "angles": [(f.time, *(f.faces[0].pose.__getattribute__(a) for a in ("yaw", "pitch", "roll")))
                       if f.faces else (f.time, np.nan, np.nan, np.nan) for f in frames],
            "true_roll": clip.roll,
        }  # fmt: skip
    return out


def plot_angles(path: Path, result: dict, name: str) -> None:
    """Yaw, pitch and roll (default mode) and the true roll over time, as a PNG (OpenCV drawing)."""
    w, h = PLOT_SIZE
    img = np.full((h, w, 3), 255, np.uint8)
    angles = np.array(result["default"]["angles"], np.float64)
    t, true_roll = angles[:, 0], result["default"]["true_roll"]
    margin, top = 60, 40
    lo, hi = -30.0, 30.0

    def xy(ts, v):
        x = margin + (ts - t[0]) / max(t[-1] - t[0], 1e-9) * (w - 2 * margin)
        y = top + (hi - v) / (hi - lo) * (h - top - margin)
        return np.stack([x, y], axis=1).astype(np.int32)

    for v in range(-30, 31, 10):
        y = int(xy(np.array([t[0]]), np.array([v]))[0, 1])
        cv2.line(img, (margin, y), (w - margin, y), (225, 225, 225), 1)
        cv2.putText(img, f"{v:+d}", (10, y + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (90, 90, 90), 1, cv2.LINE_AA)
    series = {"yaw": angles[:, 1], "pitch": angles[:, 2], "roll": angles[:, 3] - angles[0, 3], "true roll": true_roll}
    for k, (label, values) in enumerate(series.items()):
        colour = PLOT_COLOURS[label][::-1]  # RGB → BGR
        cv2.polylines(img, [xy(t, values)], False, colour, 1 if label == "true roll" else 2, cv2.LINE_AA)
        cv2.putText(img, label, (margin + 120 * k, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.55, colour, 1, cv2.LINE_AA)
    caption = f"{name}: degrees over {t[-1] - t[0]:.1f} s (roll as change from the first frame)"
    cv2.putText(img, caption, (margin, h - 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (60, 60, 60), 1, cv2.LINE_AA)
    cv2.imwrite(str(path), img)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dev", type=Path, required=True, help="AFLW2000-3D style folder (jpg + mat)")
    ap.add_argument("--photos", type=int, default=10)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--plot", type=Path, default=None)
    args = ap.parse_args()
    frontal = []
    for jpg in sorted(args.dev.glob("*.jpg")):
        yaw = np.degrees(sio.loadmat(jpg.with_suffix(".mat"))["Pose_Para"][0][1])
        if abs(yaw) < FRONTAL_YAW:
            frontal.append(jpg)
    step = max(len(frontal) // args.photos, 1)
    chosen = frontal[::step][: args.photos]
    rec = Reconstructor.from_bundle()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for jpg in chosen:
            r = run_photo(rec, jpg, args.frames, Path(tmp))
            results.append(r)
            print(jpg.stem, f"still NME {r['still_nme']:.2f}", *(
                f"{m}: found {r[m]['found']:.0%} roll err {r[m]['roll_error']:.2f}° NME {r[m]['nme']:.2f} "
                f"{r[m]['fps']:.1f} f/s jitter {r[m]['jitter_mean']:.3f}/{r[m]['jitter_max']:.3f} %"
                for m in ("default", "fast")
            ), sep="  |  ", flush=True)  # fmt: skip
    print(f"\n{len(results)} photos, {args.frames} frames at {CLIP_FPS:g} frames/s each")
    print(f"still photo NME mean {np.mean([r['still_nme'] for r in results]):.2f} %")
    for m in ("default", "fast"):
        col = {
            k: [r[m][k] for r in results] for k in ("found", "roll_error", "nme", "fps", "jitter_mean", "jitter_max")
        }
        print(
            f"{m:>7}: faces found {np.mean(col['found']):.1%}, roll change error {np.mean(col['roll_error']):.2f}° "
            f"(worst photo {np.max(col['roll_error']):.2f}°), NME {np.mean(col['nme']):.2f} %, "
            f"{np.median(col['fps']):.1f} frames/s, still-clip jitter mean {np.mean(col['jitter_mean']):.3f} % "
            f"(max {np.max(col['jitter_max']):.3f} %)"
        )
    if args.plot is not None:
        plot_angles(args.plot, results[0], chosen[0].stem)
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
