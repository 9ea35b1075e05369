"""Generate training labels for aflw_train: teacher fit → refined toward the 21 human points.

One command (``python -m training.labels``) writes into the cache folder (outside git):

* ``crops_bgr.npy``   (N, 120, 120, 3) uint8, the decoded training crops (BGR, as OpenCV reads)
* ``params_teacher.npy`` (N, 62) float32, the teacher's de-normalised parameters, flip-averaged
  (training.teacher_mirror; ``--no-teacher-flip``: one pass, the labels of runs 1-28)
* ``params_refined.npy`` (N, 62) float32, after :func:`training.refine.refine_params`
* ``keep.npy`` (N,) bool, the crops whose labels are trusted (see MAX_REFINE_SHIFT_PX)
* ``labels.json`` how they were made (teacher flip, ear points, prior weights, crops left out); the
  training script copies it into the bundle's metadata (caches written before 2026-12-06 lack it)

Position maps are not stored: the dataset rasterises them on the fly from the parameters, a fixed
sparse linear map (see training.uv_raster), so regenerating labels takes minutes.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from .bfm import BASIS_WHEEL, load_basis, load_topology
from .paths import default_cache_dir, shared_data_dir
from .refine import EAR_SIGMA_PX, EXPRESSION_PRIOR_WEIGHT, SHAPE_PRIOR_WEIGHT, refine_params
from .teacher import TEACHER_INPUT, TEACHER_WEIGHTS, Teacher, load_param_stats, vertices_crop_px
from .teacher_mirror import ParamMirror, flip_averaged

TEACHER_BATCH = 256
REFINE_BATCH = 1024
# Crops whose refined fit moves the 68 landmarks by more than this (mean, 120-crop px ≈ 12 % of the
# crop) are left out of training: there the human points and the teacher disagree grossly (wrong
# annotation or a failed teacher fit), 73-77 of 19,080 crops as the label options vary; either way
# the label is not trustworthy.
MAX_REFINE_SHIFT_PX = 15.0
LABEL_RECORD = "labels.json"


def write_label_record(cache: Path, record: dict) -> None:
    """Write how the labels in ``cache`` were made (:data:`LABEL_RECORD`, JSON)."""
    (cache / LABEL_RECORD).write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")


def read_label_record(cache: Path) -> dict | None:
    """How the labels in ``cache`` were made, or None for a cache written before the record existed."""
    path = cache / LABEL_RECORD
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    if not isinstance(record, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(record).__name__}")
    return record


def human_points_crop(pts21: np.ndarray, roi: np.ndarray) -> np.ndarray:
    """(N, 2, 21) original-image px (negative = missing) → (N, 21, 2) 120-crop px, NaN = missing."""
    p = np.transpose(pts21, (0, 2, 1)).astype(np.float64)
    missing = (p < 0).any(axis=2)
    scale = TEACHER_INPUT / (roi[:, 2] - roi[:, 0])
    out = (p - roi[:, None, :2]) * scale[:, None, None]
    out[missing] = np.nan
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=shared_data_dir() / "aflw_train")
    ap.add_argument("--teacher", type=Path, default=shared_data_dir() / "teacher")
    ap.add_argument("--cache", type=Path, default=default_cache_dir() / "labels")
    ap.add_argument(
        "--no-ears", action="store_true", help="refine without the AFLW ear points (the labels of runs 1-16)"
    )
    ap.add_argument(
        "--prior-weights",
        type=float,
        nargs=2,
        default=(SHAPE_PRIOR_WEIGHT, EXPRESSION_PRIOR_WEIGHT),
        metavar=("SHAPE", "EXPRESSION"),
        help="refinement prior weights (default %(default)s; the labels of runs 1-19: 4 4)",
    )
    ap.add_argument(
        "--no-teacher-flip", action="store_true", help="one teacher pass per crop (the labels of runs 1-28)"
    )
    args = ap.parse_args(argv)
    args.cache.mkdir(parents=True, exist_ok=True)
    (args.cache / LABEL_RECORD).unlink(missing_ok=True)  # the old record goes before the old labels do
    names = (args.data / "list.txt").read_text().split()
    t0 = time.time()
    crops = np.stack([cv2.imread(str(args.data / "crops" / n)) for n in names])
    np.save(args.cache / "crops_bgr.npy", crops)
    print(f"decoded {len(names)} crops in {time.time() - t0:.0f} s", flush=True)
    teacher = Teacher(args.teacher)
    basis, topo = load_basis(), load_topology(args.teacher)
    mirror = None if args.no_teacher_flip else ParamMirror.build(basis, topo.mirror)

    def fit(batch: np.ndarray) -> np.ndarray:
        return teacher(batch) if mirror is None else flip_averaged(teacher, batch, mirror)

    params = np.concatenate([fit(crops[i : i + TEACHER_BATCH]) for i in range(0, len(crops), TEACHER_BATCH)])
    np.save(args.cache / "params_teacher.npy", params)
    print(f"teacher done at {time.time() - t0:.0f} s", flush=True)
    std = load_param_stats(args.teacher)[1]
    pts = human_points_crop(np.load(args.data / "pts21.npy"), np.load(args.data / "roi_box.npy"))
    refined = np.concatenate(
        [
            refine_params(
                params[i : i + REFINE_BATCH],
                pts[i : i + REFINE_BATCH],
                basis,
                topo.keypoints,
                std,
                ear_sigma=None if args.no_ears else EAR_SIGMA_PX,
                shape_prior_weight=args.prior_weights[0],
                expression_prior_weight=args.prior_weights[1],
            )
            for i in range(0, len(params), REFINE_BATCH)
        ]
    )
    np.save(args.cache / "params_refined.npy", refined)
    shift = np.linalg.norm(
        vertices_crop_px(refined, basis, topo.keypoints)[..., :2]
        - vertices_crop_px(params, basis, topo.keypoints)[..., :2],
        axis=2,
    ).mean(axis=1)
    keep = shift <= MAX_REFINE_SHIFT_PX
    left_out = int((~keep).sum())
    np.save(args.cache / "keep.npy", keep)
    write_label_record(
        args.cache,
        {
            "made_by": "training.labels",
            "teacher": f"3DDFA_V2 MobileNet-0.5 (teacher/{TEACHER_WEIGHTS}), BFM basis of {BASIS_WHEEL}",
            "teacher_flip": not args.no_teacher_flip,
            "ear_points": not args.no_ears,
            "prior_weights": {"shape": args.prior_weights[0], "expression": args.prior_weights[1]},
            "crops": len(names),
            "left_out": left_out,
            "max_refine_shift_px": MAX_REFINE_SHIFT_PX,
        },
    )
    print(f"{left_out} crops left out (refined landmarks moved > {MAX_REFINE_SHIFT_PX} px)", flush=True)
    print(f"refined labels written to {args.cache} at {time.time() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
