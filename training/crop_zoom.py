"""Choose a model's crop zoom on its training crops, not on the benchmark.

``python -m training.crop_zoom [--bundle B] [--zooms 1.0 1.04 …]`` re-crops a fixed sample of
the training crops about their centre at each zoom (zoom > 1: the face fills more of the input),
runs the bundle (flip-averaged) and prints the landmark NME against the crops' own labels. The best
zoom is then expressed for the engine: the training crops' faces are smaller than the 3DDFA roi's
(longer side of the 68-point box / crop side: ≈0.68 against exactly 1/√2), so the same face size in
an engine crop is reached with ``crop_zoom = training zoom × face fraction / (1/√2)``, which goes
into bundle.json ``inference.crop_zoom`` (engine.crop).

The training crops are centred on well-placed boxes, so the zoom found here holds for boxes drawn
from true landmarks; check it on the detector path (``evaluate --detector --crop-zoom Z``) before
shipping it: for run 8's model 1.05 helped the roi boxes and hurt the detector path
(docs/decisions.md, "Crop zoom"), and the default bundle keeps 1.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import torch

from engine.bundle import default_bundle_path, load_bundle
from engine.crop import LANDMARK_ROI_SCALE
from engine.model import predict_position_maps
from engine.readout import Readout

from .bfm import load_basis, load_topology
from .dataset import build_label_basis, label_vertices
from .metrics import binned, nme_per_image
from .paths import default_cache_dir, shared_data_dir
from .teacher import TEACHER_INPUT

SAMPLE = 1500  # training crops: ≈40 s per zoom on 2 cores, bins of ≥ 280 crops
SAMPLE_SEED = 0
DEFAULT_ZOOMS = (1.0, 1.04, 1.087, 1.13, 1.18)  # the upper end stays inside training's 0.9–1.15 zoom × ≈1.03


def zoomed(crops_rgb: np.ndarray, verts: np.ndarray, lb, size: int, zoom: float) -> tuple[np.ndarray, np.ndarray]:
    """120-px crops and their label vertices (B, P, 3) → crops at ``size`` zoomed about the centre,
    and their (B, size, size, 3) label maps (crop px)."""
    k = size / TEACHER_INPUT * zoom
    shift = (size - 1) / 2 - k * (TEACHER_INPUT - 1) / 2  # pixel centres: the crop centres coincide
    m = np.array([[k, 0.0, shift], [0.0, k, shift]])
    images = np.stack([cv2.warpAffine(c, m, (size, size), flags=cv2.INTER_LINEAR) for c in crops_rgb])
    maps = np.zeros((len(verts), size * size, 3), np.float32)
    maps[:, lb.pixels, :2] = verts[..., :2] * k + shift
    maps[:, lb.pixels, 2] = verts[..., 2] * k
    return images, maps.reshape(-1, size, size, 3)


def face_fraction(landmarks: np.ndarray, side: float) -> float:
    """Median longer side of the (B, 68, 2+) landmark boxes over the crop side."""
    extent = landmarks[:, :, :2].max(axis=1) - landmarks[:, :, :2].min(axis=1)
    return float(np.median(extent.max(axis=1)) / side)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path, default=default_bundle_path())
    ap.add_argument("--labels", type=Path, default=default_cache_dir() / "labels")
    ap.add_argument("--train-data", type=Path, default=shared_data_dir() / "aflw_train", help="for yaw.npy")
    ap.add_argument("--zooms", type=float, nargs="+", default=list(DEFAULT_ZOOMS))
    args = ap.parse_args(argv)
    bundle = load_bundle(args.bundle)
    model, size = bundle.build_model("cpu"), bundle.input_size
    readout = Readout.build(bundle.layout, size)
    keep = np.flatnonzero(np.load(args.labels / "keep.npy"))
    idx = np.sort(np.random.default_rng(SAMPLE_SEED).choice(keep, min(SAMPLE, len(keep)), replace=False))
    crops = np.ascontiguousarray(np.load(args.labels / "crops_bgr.npy", mmap_mode="r")[idx][..., ::-1])
    params = np.load(args.labels / "params_refined.npy")[idx]
    yaw = np.abs(np.load(args.train_data / "yaw.npy"))[idx]
    lb = build_label_basis(load_topology(), load_basis(), bundle.layout, size)
    verts = label_vertices(lb, params)
    fraction = None
    results = []
    for zoom in args.zooms:
        images, maps = zoomed(crops, verts, lb, size, zoom)
        with torch.no_grad():
            pred = predict_position_maps(model, images, batch=32, flip_average=True)
        kp_pred = np.stack([readout.keypoints(p) for p in pred])
        kp_label = np.stack([readout.keypoints(m) for m in maps])
        if fraction is None:
            fraction = face_fraction(kp_label, size) / zoom  # at zoom 1
        r = binned(nme_per_image(kp_pred, kp_label), yaw)
        engine_zoom = zoom * fraction * LANDMARK_ROI_SCALE
        results.append((r["balanced"], zoom, engine_zoom))
        print(
            f"training zoom {zoom:.3f} (engine crop_zoom {engine_zoom:.3f}): NME vs labels "
            f"{r['0-30']:.2f} / {r['30-60']:.2f} / {r['60-90']:.2f}  balanced {r['balanced']:.3f} %",
            flush=True,
        )
    _, best, best_engine = min(results)
    print(f"face fraction of the training crops {fraction:.4f} (roi: {1 / LANDMARK_ROI_SCALE:.4f})")
    print(f"best: training zoom {best:.3f} → crop_zoom {best_engine:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
