"""Learn the landmark shape model from the training labels; choose its weights on training crops.

``python -m training.landmark_model [--bundle B] [--map-points D] [--write]``

1. The 68 points of every kept training label (teacher fits refined toward the human points) and
   the label's positions at D fixed pixels of the output map (:func:`map_point_pixels`: a
   left/right symmetric sample of the weighted face pixels), with a mirrored copy of each label
   (x → −x, points renumbered by ``LANDMARK_MIRROR`` and the pixels' mirror twins), are aligned by
   generalised Procrustes (similarity to their mean, :data:`PROCRUSTES_ROUNDS` rounds) and reduced
   to :data:`MODES` principal components (engine.shape_model). A fixed sample of
   :data:`HOLD_OUT` crops (the crop_zoom tool's) is left out of this.
2. The bundle runs on the held-out crops (un-augmented, flip-averaged, as the engine runs it); its
   read-out landmarks (and map points) are fitted with each map weight in :data:`MAP_WEIGHTS` and
   each prior weight in :data:`PRIOR_WEIGHTS`, and scored against the crops' **human** points (the
   19 AFLW points with a 68-point counterpart, ``refine.AFLW_TO_68``), not against the labels the
   model was learned from. The benchmark is not looked at. The network has trained on these crops,
   which it still underfits (docs/training-journal.md).
3. ``--write`` adds the model with the best weights to the bundle (``bundle.attach_landmark_model``).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from engine.bundle import LANDMARK_MODEL_FILE, ModelBundle, attach_landmark_model, default_bundle_path, load_bundle
from engine.landmarks import LANDMARK_MIRROR
from engine.model import predict_position_maps
from engine.pose import fit_similarity
from engine.readout import Readout
from engine.shape_model import LandmarkShapeModel

from .bfm import load_basis, load_topology
from .crop_zoom import SAMPLE as HOLD_OUT
from .crop_zoom import SAMPLE_SEED, zoomed
from .dataset import LabelBasis, build_label_basis, label_vertices
from .labels import human_points_crop
from .metrics import binned, landmark_box_size
from .paths import default_cache_dir, shared_data_dir
from .refine import combination_matrix
from .teacher import TEACHER_INPUT, vertices_crop_px

MODES = 40  # share of the aligned labels' variance: 20 modes 99.85 %, 40 modes 99.993 %, 60 modes 99.999 %
# with map points: the labels span 40 shape + 10 expression directions; aligned, the 68 landmarks and
# 600 map points keep 99.964 / 99.987 / 99.995 % of their variance in 40 / 50 / 60 modes
MODES_WITH_MAP_POINTS = 60
MAP_POINTS = 600  # for --map-points: about every 15th weighted face pixel of a 128² map
MAP_POINTS_SEED = 0
MAP_WEIGHTS = (0.0, 2.0, 8.0, 32.0)  # the map points' total weight, in landmarks
PRIOR_WEIGHTS = (0.0, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
PROCRUSTES_ROUNDS = 3  # the mean shape changes by < 1e-6 of its size after the second


def map_point_pixels(lb: LabelBasis, count: int, seed: int = MAP_POINTS_SEED) -> tuple[np.ndarray, np.ndarray]:
    """``count`` (even) labelled pixels of weight > 0 in mirror pairs → (rows into ``lb.pixels``,
    (count,) index of each pixel's mirror twin among them). The layout mirrors by columns, and the
    label weights are left/right symmetric, so every weighted pixel's twin is weighted too."""
    s = lb.size
    weighted = np.flatnonzero(lb.weights.ravel()[lb.pixels] > 0)
    col = lb.pixels[weighted] % s
    left = weighted[col < s - 1 - col]
    if count % 2 or count // 2 > len(left):
        raise ValueError(f"map points come in mirror pairs: an even count ≤ {2 * len(left)}, got {count}")
    row_of = {int(p): i for i, p in enumerate(lb.pixels)}
    first = np.sort(np.random.default_rng(seed).choice(left, count // 2, replace=False))
    twins = np.array([row_of[int(p // s * s + (s - 1 - p % s))] for p in lb.pixels[first]], np.int64)
    half = count // 2
    rows = np.concatenate([first, twins])
    mirror = np.concatenate([np.arange(half, count), np.arange(half)])
    return rows, mirror


def mirrored(points: np.ndarray, mirror: np.ndarray | None = None) -> np.ndarray:
    """(N, P, 3) → the mirror images (x → −x), renumbered by ``mirror`` (P,) (default: the 68
    landmarks' ``LANDMARK_MIRROR``) so that each point keeps its meaning."""
    out = points[:, list(LANDMARK_MIRROR) if mirror is None else mirror].copy()
    out[..., 0] *= -1.0
    return out


def learn_shape_model(
    points: np.ndarray,
    *,
    mirror: np.ndarray | None = None,
    modes: int = MODES,
    map_pixels: np.ndarray | None = None,
    map_size: int = 0,
) -> LandmarkShapeModel:
    """(N, 68 + D, 3) point sets (one frame, x right / y down / z toward the camera; the 68 landmarks
    first, then D map points at ``map_pixels`` of a ``map_size``² map) → the model of their shape:
    Procrustes-aligned to unit RMS size, mirrored copies (``mirror``, see :func:`mirrored`) included,
    ``modes`` components; prior and map weights 0 (the caller chooses them)."""
    pts = np.concatenate([points, mirrored(points, mirror)]).astype(np.float64)
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
    n = points.shape[1]
    return LandmarkShapeModel(
        mean=mean.reshape(n, 3),
        modes=vt[:modes].reshape(modes, n, 3),
        std=sv[:modes] / np.sqrt(len(flat)),
        prior_weight=0.0,
        map_pixels=np.zeros(0, np.int64) if map_pixels is None else np.asarray(map_pixels, np.int64),
        map_size=map_size,
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
) -> dict[tuple[float, float] | None, dict[str, float]]:
    """Binned NME vs the human points of the ``held`` training crops: the read-out (key None) and its
    fit with each (map weight, prior weight) of :data:`MAP_WEIGHTS` × :data:`PRIOR_WEIGHTS` (map
    weights other than 0 only when the model has map points)."""
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
    scores: dict[tuple[float, float] | None, dict[str, float]] = {
        None: binned(human_point_nme(raw, human, label68), yaw)
    }
    for mw in MAP_WEIGHTS if model.n_map_points else (0.0,):
        for pw in PRIOR_WEIGHTS:
            fitted = replace(model, map_weight=mw, prior_weight=pw)
            pred = np.stack([fitted.fit(p, m) for p, m in zip(raw, maps)])
            scores[mw, pw] = binned(human_point_nme(pred, human, label68), yaw)
    return scores


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path, default=default_bundle_path())
    ap.add_argument("--labels", type=Path, default=default_cache_dir() / "labels")
    ap.add_argument("--train-data", type=Path, default=shared_data_dir() / "aflw_train")
    ap.add_argument(
        "--map-points",
        type=int,
        default=0,
        help=f"output-map pixels fitted with the 68 landmarks (even; e.g. {MAP_POINTS}; default 0: the "
        "landmarks alone, as in the shipped bundle)",
    )
    ap.add_argument("--write", action="store_true", help="add the model with the best weights to the bundle")
    args = ap.parse_args(argv)
    bundle = load_bundle(args.bundle)
    keep = np.flatnonzero(np.load(args.labels / "keep.npy"))
    held = np.sort(np.random.default_rng(SAMPLE_SEED).choice(keep, min(HOLD_OUT, len(keep)), replace=False))
    learn = np.setdiff1d(keep, held)
    params = np.load(args.labels / "params_refined.npy")[learn]
    basis, topology = load_basis(), load_topology()
    points = vertices_crop_px(params, basis, topology.keypoints)
    mirror, pixels = None, None
    if args.map_points:
        lb = build_label_basis(topology, basis, bundle.layout, bundle.input_size)
        rows, twins = map_point_pixels(lb, args.map_points)
        points = np.concatenate([points, label_vertices(lb, params, rows)], axis=1)
        mirror = np.concatenate([np.asarray(LANDMARK_MIRROR), len(LANDMARK_MIRROR) + twins])
        pixels = lb.pixels[rows]
    map_size = bundle.input_size if pixels is not None else 0
    modes = MODES_WITH_MAP_POINTS if args.map_points else MODES
    model = learn_shape_model(points, mirror=mirror, modes=modes, map_pixels=pixels, map_size=map_size)
    print(
        f"shape model: {model.n_modes} modes of the 68 landmarks and {model.n_map_points} map points, from "
        f"{len(learn)} labels and their mirror images",
        flush=True,
    )
    scores = held_out_scores(bundle, model, args.labels, args.train_data, held)
    for key, r in scores.items():
        name = "read-out (no model)" if key is None else f"map weight {key[0]:g}, prior weight {key[1]:g}"
        print(
            f"{name:>36}: NME vs human points {r['0-30']:.3f} / {r['30-60']:.3f} / {r['60-90']:.3f}  "
            f"balanced {r['balanced']:.3f} %"
        )
    best = min((k for k in scores if k is not None), key=lambda k: scores[k]["balanced"])
    print(f"best: map weight {best[0]:g}, prior weight {best[1]:g} ({scores[best]['balanced']:.3f} %)")
    if args.write:
        provenance = {
            "made_by": "training.landmark_model",
            "modes": model.n_modes,
            "map_points": model.n_map_points,
            "map_weight": best[0],
            "prior_weight": best[1],
            "learned_from": f"68 points and {model.n_map_points} map points of {len(learn)} refined training "
            "labels and their mirror images",
            "weights_chosen_on": f"{len(held)} held-out training crops, NME (%) vs their human points",
            "held_out_nme_vs_human_points": {"read_out": scores[None], "fitted": scores[best]},
        }
        out = attach_landmark_model(args.bundle, replace(model, map_weight=best[0], prior_weight=best[1]), provenance)
        print(f"wrote {out.path / LANDMARK_MODEL_FILE} into {out.bundle_id}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
