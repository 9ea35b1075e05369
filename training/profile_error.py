"""Where a model's landmark error lies: per face region, and the signed width error of profiles.

``python -m training.profile_error [--bundle B]`` runs the bundle's read-out (flip-averaged,
bf16, as training logs it) on the dev set's roi crops and on a fixed sample of training crops, and
prints per |yaw| bin: the NME of each face region, the median ratio of the predicted landmark box
width to the reference's, and the mean signed x error of the jaw points in a *nose-right* frame
(every face mirrored so that its nose points to image +x; + means toward the nose). The dev set is
scored against its ground truth, the training crops against their own labels, so a bias that only
the dev set shows is one the network has not learned to read from new faces.

Jaw points 0–16 run from the subject's right ear to the left one; in the nose-right frame points
0–7 are on the side that faces the camera and 9–16 on the side that turns away (hidden behind the
nose in a profile).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from engine.bundle import default_bundle_path, load_bundle
from engine.landmarks import LANDMARK_MIRROR
from engine.layout import default_layout
from engine.readout import Readout

from .bfm import load_basis, load_topology
from .dataset import build_label_basis, make_batch
from .evaluate import DevSet, readout_points
from .metrics import YAW_BINS, landmark_box_size, yaw_bin_mask
from .paths import default_cache_dir, shared_data_dir

REGIONS = {
    "jaw": range(0, 17),
    "brows": range(17, 27),
    "nose": range(27, 36),
    "eyes": range(36, 48),
    "mouth": range(48, 68),
}
NOSE_TIP = 30
JAW_NEAR = range(0, 8)  # nose-right frame: the jaw side toward the camera
JAW_FAR = range(9, 17)  # ... and the side turned away
TRAIN_SAMPLE = 1500  # training crops, drawn once with TRAIN_SEED (bins of ≥ 280 crops)
TRAIN_SEED = 0


def facing_sign(ref: np.ndarray) -> np.ndarray:
    """(N, 68, 2+) reference points → (N,) +1 where the nose tip lies right of the landmark box centre."""
    lo, hi = ref[:, :, 0].min(axis=1), ref[:, :, 0].max(axis=1)
    return np.where(ref[:, NOSE_TIP, 0] >= (lo + hi) / 2, 1.0, -1.0)


def nose_right_errors(pred: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """(N, 68, 2+) → (N, 68, 2) x, y errors in % of √(w·h) of the reference box, in the nose-right
    frame: faces looking to −x are mirrored (x negated, points renumbered by ``LANDMARK_MIRROR``)."""
    pred, ref = np.asarray(pred, np.float64), np.asarray(ref, np.float64)
    err = (pred[:, :, :2] - ref[:, :, :2]) / landmark_box_size(ref)[:, None, None] * 100.0
    f = facing_sign(ref)
    err[:, :, 0] *= f[:, None]
    return np.where((f < 0)[:, None, None], err[:, list(LANDMARK_MIRROR)], err)


def width_ratio(pred: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """(N,) predicted landmark box width / the reference's."""
    return np.ptp(pred[:, :, 0], axis=1) / np.ptp(ref[:, :, 0], axis=1)


def error_report(pred: np.ndarray, ref: np.ndarray, yaw_abs_deg: np.ndarray) -> dict[str, dict[str, float]]:
    """Per |yaw| bin: n, NME per region, median width ratio, mean signed x error (nose-right frame)
    of the near and far jaw halves and of the nose tip (all in %)."""
    err = nose_right_errors(pred, ref)
    dist = np.linalg.norm(err, axis=2)
    ratio = width_ratio(pred, ref)
    out = {}
    for name, lo, hi in YAW_BINS:
        sel = yaw_bin_mask(yaw_abs_deg, lo, hi)
        if not sel.any():
            continue
        row = {"n": float(sel.sum()), "nme": float(dist[sel].mean())}
        row |= {region: float(dist[sel][:, list(idx)].mean()) for region, idx in REGIONS.items()}
        row["width_ratio"] = float(np.median(ratio[sel]))
        row["dx_jaw_near"] = float(err[sel][:, list(JAW_NEAR), 0].mean())
        row["dx_jaw_far"] = float(err[sel][:, list(JAW_FAR), 0].mean())
        row["dx_nose_tip"] = float(err[sel][:, NOSE_TIP, 0].mean())
        out[name] = row
    return out


def _print(title: str, report: dict[str, dict[str, float]]) -> None:
    print(title)
    cols = ["n", "nme", *REGIONS, "width_ratio", "dx_jaw_near", "dx_jaw_far", "dx_nose_tip"]
    print("  bin    " + " ".join(f"{c:>11s}" for c in cols))
    for name, row in report.items():
        print(f"  {name:6s} " + " ".join(f"{row[c]:11.3f}" for c in cols))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path, default=None, help="model bundle (default: weights/default)")
    ap.add_argument("--dev", type=Path, default=shared_data_dir() / "aflw2000_dev")
    ap.add_argument("--labels", type=Path, default=default_cache_dir() / "labels")
    ap.add_argument("--train-data", type=Path, default=shared_data_dir() / "aflw_train", help="for yaw.npy")
    args = ap.parse_args(argv)
    model = load_bundle(args.bundle or default_bundle_path()).build_model("cpu").eval()
    layout = default_layout()

    dev = DevSet.load(args.dev, model.input_size)
    points = readout_points(model, dev.crops, layout, flip_average=True)
    pred = np.stack([t.to_image(p) for p, t in zip(points, dev.transforms)])
    _print("dev set vs ground truth", error_report(pred, dev.gt, dev.yaw))

    keep = np.flatnonzero(np.load(args.labels / "keep.npy"))
    pick = np.sort(np.random.default_rng(TRAIN_SEED).choice(keep, TRAIN_SAMPLE, replace=False))
    crops = np.ascontiguousarray(np.load(args.labels / "crops_bgr.npy", mmap_mode="r")[pick][..., ::-1])
    params = np.load(args.labels / "params_refined.npy")[pick]
    lb = build_label_basis(load_topology(), load_basis(), layout, model.input_size)
    images, targets = make_batch(crops, params, lb, np.random.default_rng(TRAIN_SEED), augment=None)
    readout = Readout.build(layout, model.input_size)
    labels = np.stack([readout.keypoints(t) for t in targets])
    yaw = np.abs(np.load(args.train_data / "yaw.npy")[pick])
    train_pred = readout_points(model, images, layout, flip_average=True)
    _print(f"{TRAIN_SAMPLE} training crops vs their labels", error_report(train_pred, labels, yaw))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
