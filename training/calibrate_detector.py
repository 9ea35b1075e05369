"""Calibrate :func:`engine.detect.roi_from_detection` on AFLW2000-3D and report detection quality.

Runs the OpenCV cascade detector on every image of the dev set, matches each image's detections to
its face (detection centre inside the 68-landmark box, side within a factor 2 of it), and fits per
detection kind the offset from the detector box centre to the 3DDFA roi centre (fraction of the
box side, x mirrored for right-facing profiles) and the ratio roi side / box side, as medians. The
ground-truth roi is ``roi_from_landmarks`` of the 68 points (the protocol's box; ``roi_box.npy``
equals it except where it was clipped to the image). Then it reports the detection rate and the IoU
of the converted roi with that roi, per |yaw| bin, using the constants in ``engine.detect`` (or the
freshly fitted ones with ``--use-fit``). Prints only; copy the numbers into ``engine/detect.py``.

    python -m training.calibrate_detector --data ../shared/data/aflw2000_dev
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from engine import detect
from engine.crop import roi_from_landmarks
from engine.image_io import load_image
from engine.types import BoundingBox
from training.metrics import YAW_BINS, box_iou, yaw_bin_mask

from .paths import shared_data_dir

MATCH_SIZE_RATIO = 2.0  # a detection this much larger/smaller than the landmark box is another face


def match(detections: list[detect.FaceBox], pts: np.ndarray) -> detect.FaceBox | None:
    """The detection of the annotated face: centre inside its landmark box, similar size; largest wins."""
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    size = max(hi - lo)
    for d in detections:  # largest first
        cx, cy = d.center
        side = max(d.width, d.height)
        if lo[0] <= cx <= hi[0] and lo[1] <= cy <= hi[1] and 1 / MATCH_SIZE_RATIO < side / size < MATCH_SIZE_RATIO:
            return d
    return None


def fit(pairs: list[tuple[detect.FaceBox, BoundingBox]]) -> tuple[float, float, float]:
    """Median (dx, dy, scale) mapping detector boxes to rois; dx mirrored for right-facing profiles."""
    rows = []
    for d, roi in pairs:
        side = max(d.width, d.height)
        dx = (roi.center[0] - d.center[0]) / side
        rows.append(
            (-dx if d.kind == detect.PROFILE_RIGHT else dx, (roi.center[1] - d.center[1]) / side, roi.width / side)
        )
    return tuple(float(v) for v in np.median(np.array(rows), axis=0))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=shared_data_dir() / "aflw2000_dev")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N images (0 = all)")
    parser.add_argument("--max-side", type=int, default=detect.DETECT_MAX_SIDE)
    parser.add_argument("--scale-factor", type=float, default=detect.SCALE_FACTOR)
    parser.add_argument(
        "--min-neighbours",
        type=int,
        nargs=2,
        default=(detect.MIN_NEIGHBOURS_FRONTAL, detect.MIN_NEIGHBOURS_PROFILE),
        metavar=("FRONTAL", "PROFILE"),
    )
    parser.add_argument("--use-fit", action="store_true", help="report IoU with the fitted constants")
    args = parser.parse_args(argv)

    names = (args.data / "list.txt").read_text().split()
    pts68 = np.load(args.data / "pts68.npy")[:, :2].transpose(0, 2, 1)  # (N, 68, 2)
    clipped = np.load(args.data / "roi_box.npy")
    yaw = np.load(args.data / "yaw.npy")
    n = args.limit or len(names)
    detector = detect.OpenCVCascadeDetector(
        max_side=args.max_side, scale_factor=args.scale_factor, min_neighbours=args.min_neighbours
    )
    matched: list[detect.FaceBox | None] = []
    gts = [roi_from_landmarks(pts68[i]) for i in range(n)]
    seconds = 0.0
    for i in range(n):
        image = load_image(args.data / names[i])
        start = time.perf_counter()
        found = detector(image)
        seconds += time.perf_counter() - start
        matched.append(match(found, pts68[i]))

    print(f"{n} images, {1000 * seconds / n:.1f} ms per image, settings {vars(args)}")
    constants = {}
    for kinds, label in (((detect.FRONTAL,), "frontal"), ((detect.PROFILE_LEFT, detect.PROFILE_RIGHT), "profile")):
        pairs = [(d, gts[i]) for i, d in enumerate(matched) if d is not None and d.kind in kinds]
        dx, dy, s = fit(pairs)
        constants[label] = ((dx, dy), s)
        print(f"{label:8s} n={len(pairs):4d}  offset=({dx:+.4f}, {dy:+.4f})  scale={s:.4f}")
    if args.use_fit:
        detect.ROI_FRONTAL_OFFSET, detect.ROI_FRONTAL_SCALE = constants["frontal"]
        detect.ROI_PROFILE_OFFSET, detect.ROI_PROFILE_SCALE = constants["profile"]

    ious = np.full(n, np.nan)
    ious_clipped = np.full(n, np.nan)
    for i, d in enumerate(matched):
        if d is not None:
            roi = detect.roi_from_detection(d)
            ious[i] = box_iou(roi, gts[i])
            ious_clipped[i] = box_iou(roi, BoundingBox(*clipped[i]))
    kinds = np.array([d.kind if d is not None else "" for d in matched])
    for _, lo, hi in YAW_BINS:
        sel = yaw_bin_mask(yaw[:n], lo, hi)
        found = sel & ~np.isnan(ious)
        print(
            f"|yaw| ({lo:2.0f},{hi:2.0f}]: {sel.sum():4d} images, detected {found.sum() / max(sel.sum(), 1):6.1%}"
            f" (frontal {np.mean(kinds[sel] == detect.FRONTAL):.1%}), IoU median {np.nanmedian(ious[found]):.3f}"
            f" mean {np.nanmean(ious[found]):.3f}, IoU>0.5 {np.mean(ious[found] > 0.5):.1%}"
            f"; vs roi_box.npy mean {np.nanmean(ious_clipped[found]):.3f}"
        )
    det = ~np.isnan(ious)
    print(f"all: detected {det.mean():.1%}, IoU mean {np.nanmean(ious):.3f}, median {np.nanmedian(ious):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
