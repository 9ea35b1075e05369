"""Learn the 68-landmark shape model from the training labels; choose its prior weight on training crops.

``python -m engine.training.landmark_model [--bundle B] [--write]``

1. The 68 points of every kept training label (teacher fits refined toward the human points), with
   a mirrored copy of each (x → −x, points renumbered by ``LANDMARK_MIRROR``), are aligned by
   generalised Procrustes (similarity to their mean, :data:`PROCRUSTES_ROUNDS` rounds) and reduced
   to :data:`MODES` principal components (engine.shape_model). A fixed sample of
   :data:`HOLD_OUT` crops (the crop_zoom tool's) is left out of this.
2. The bundle runs on the held-out crops (un-augmented, flip-averaged, as the engine runs it); its
   read-out landmarks are fitted with each prior weight in :data:`PRIOR_WEIGHTS` and scored against
   the crops' **human** points (the 19 AFLW points with a 68-point counterpart,
   ``refine.AFLW_TO_68``), not against the labels the model was learned from. The benchmark is not
   looked at. The network has trained on these crops, which it still underfits (weights/README).
3. ``--write`` adds the model with the best weight to the bundle (``bundle.attach_landmark_model``).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ..bundle import LANDMARK_MODEL_FILE, ModelBundle, attach_landmark_model, default_bundle_path, load_bundle
from ..landmarks import LANDMARK_MIRROR
from ..model import predict_position_maps
from ..pose import fit_similarity
from ..readout import Readout
from ..shape_model import LandmarkShapeModel
from .bfm import default_cache_dir, load_basis, load_topology, shared_data_dir
from .crop_zoom import SAMPLE as HOLD_OUT
from .crop_zoom import SAMPLE_SEED, zoomed
from .dataset import build_label_basis, label_vertices
from .labels import human_points_crop
from .metrics import binned, landmark_box_size
from .refine import combination_matrix
from .teacher import TEACHER_INPUT, vertices_crop_px

MODES = 40  # share of the aligned labels' variance: 20 modes 99.85 %, 40 modes 99.993 %, 60 modes 99.999 %
PROCRUSTES_ROUNDS = 3  # the mean shape changes by < 1e-6 of its size after the second
PRIOR_WEIGHTS = (0.0, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)


def mirrored(points: np.ndarray) -> np.ndarray:
    """(N, 68, 3) → the mirror images (x → −x), renumbered so that each point keeps its meaning."""
    out = points[:, list(LANDMARK_MIRROR)].copy()
    out[..., 0] *= -1.0
    return out


def learn_shape_model(points: np.ndarray, *, modes: int = MODES, prior_weight: float = 0.0) -> LandmarkShapeModel:
    """(N, 68, 3) landmark sets (one frame, x right / y down / z toward the camera) → the model of
    their shape: Procrustes-aligned to unit RMS size, mirrored copies included, ``modes`` components."""
    pts = np.concatenate([points, mirrored(points)]).astype(np.float64)
    ref = pts[0] - pts[0].mean(axis=0)
    for _ in range(PROCRUSTES_ROUNDS):
        ref /= np.sqrt((ref**2).sum(axis=1).mean())
        aligned = np.empty_like(pts)
        for i, p in enumerate(pts):
            s, r, t = fit_similarity(p, ref)
            aligned[i] = s * p @ r.T + t
        ref = aligned.mean(axis=0)
        ref -= ref.mean(axis=0)
    flat = aligned.reshape(len(aligned), -1)
    mean = flat.mean(axis=0)
    _, sv, vt = np.linalg.svd(flat - mean, full_matrices=False)
    return LandmarkShapeModel(
        mean=mean.reshape(68, 3),
        modes=vt[:modes].reshape(modes, 68, 3),
        std=sv[:modes] / np.sqrt(len(flat)),
        prior_weight=prior_weight,
    )


def human_point_nme(pred68: np.ndarray, human21: np.ndarray, label68: np.ndarray) -> np.ndarray:
    """(N,) NME (%) of the predicted points' AFLW counterparts against the visible human points;
    normalised like the benchmark, by √(w·h) of the label's 68-point box."""
    comb = combination_matrix(ears=False)
    used = comb.sum(axis=1) > 0
    pred21 = np.einsum("km,nmc->nkc", comb, pred68[..., :2])[:, used]
    err = np.linalg.norm(pred21 - human21[:, used], axis=2)  # NaN where the point is not annotated
    size = landmark_box_size(label68)
    return np.nanmean(err, axis=1) / size * 100.0


def held_out_scores(
    bundle: ModelBundle, model: LandmarkShapeModel, labels: Path, train_data: Path, held: np.ndarray
) -> dict[float | None, dict[str, float]]:
    """Binned NME vs the human points of the ``held`` training crops: the read-out (key None) and its
    fit with each prior weight of :data:`PRIOR_WEIGHTS`."""
    size = bundle.input_size
    crops = np.ascontiguousarray(np.load(labels / "crops_bgr.npy", mmap_mode="r")[held][..., ::-1])
    lb = build_label_basis(load_topology(), load_basis(), bundle.layout, size)
    images, label_maps = zoomed(crops, label_vertices(lb, np.load(labels / "params_refined.npy")[held]), lb, size, 1.0)
    with torch.no_grad():
        maps = predict_position_maps(bundle.build_model("cpu"), images, batch=32, flip_average=True)
    readout = Readout.build(bundle.layout, size)
    raw = np.stack([readout.keypoints(m) for m in maps]).astype(np.float64)
    label68 = np.stack([readout.keypoints(m) for m in label_maps])
    k = size / TEACHER_INPUT  # 120-crop px → network crop px, pixel centres kept (crop_zoom.zoomed)
    human = human_points_crop(np.load(train_data / "pts21.npy")[held], np.load(train_data / "roi_box.npy")[held])
    human = human * k + ((size - 1) / 2 - k * (TEACHER_INPUT - 1) / 2)
    yaw = np.abs(np.load(train_data / "yaw.npy"))[held]
    scores = {}
    for w in (None, *PRIOR_WEIGHTS):
        pred = raw if w is None else np.stack([replace(model, prior_weight=w).fit(p) for p in raw])
        scores[w] = binned(human_point_nme(pred, human, label68), yaw)
    return scores


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path, default=default_bundle_path())
    ap.add_argument("--labels", type=Path, default=default_cache_dir() / "labels")
    ap.add_argument("--train-data", type=Path, default=shared_data_dir() / "aflw_train")
    ap.add_argument("--write", action="store_true", help="add the model with the best prior weight to the bundle")
    args = ap.parse_args(argv)
    bundle = load_bundle(args.bundle)
    keep = np.flatnonzero(np.load(args.labels / "keep.npy"))
    held = np.sort(np.random.default_rng(SAMPLE_SEED).choice(keep, min(HOLD_OUT, len(keep)), replace=False))
    learn = np.setdiff1d(keep, held)
    params = np.load(args.labels / "params_refined.npy")[learn]
    model = learn_shape_model(vertices_crop_px(params, load_basis(), load_topology().keypoints))
    print(f"shape model: {model.n_modes} modes from {len(learn)} labels and their mirror images", flush=True)
    scores = held_out_scores(bundle, model, args.labels, args.train_data, held)
    for w, r in scores.items():
        name = "read-out (no model)" if w is None else f"prior weight {w:g}"
        print(
            f"{name:>22}: NME vs human points {r['0-30']:.3f} / {r['30-60']:.3f} / {r['60-90']:.3f}  "
            f"balanced {r['balanced']:.3f} %"
        )
    best = min(PRIOR_WEIGHTS, key=lambda w: scores[w]["balanced"])
    print(f"best prior weight {best:g} ({scores[best]['balanced']:.3f} %)")
    if args.write:
        provenance = {
            "made_by": "engine.training.landmark_model",
            "modes": model.n_modes,
            "prior_weight": best,
            "learned_from": f"68 points of {len(learn)} refined training labels and their mirror images",
            "prior_weight_chosen_on": f"{len(held)} held-out training crops, NME (%) vs their human points",
            "held_out_nme_vs_human_points": {"read_out": scores[None], "fitted": scores[best]},
        }
        out = attach_landmark_model(args.bundle, replace(model, prior_weight=best), provenance)
        print(f"wrote {out.path / LANDMARK_MODEL_FILE} into {out.bundle_id}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
