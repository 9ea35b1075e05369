"""Check the label pipeline on the dev set: the teacher alone, and the teacher refined to the 21 points.

``python -m training.teacher_eval [DEV_DIR] [--no-teacher-flip]`` prints the teacher's balanced
NMEs (alone and flip-averaged) and the refined labels' (refined from the start the labels use:
flip-averaged unless ``--no-teacher-flip``, the labels of runs 1-28). The crop follows the
3DDFA protocol exactly (integer-rounded roi, zero padding, anisotropic resize to 120², back-mapping
with separate x/y scales), so the teacher's figures are comparable with the published ones.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import scipy.io as sio

from .bfm import load_basis, load_topology
from .labels import human_points_crop
from .metrics import binned, nme_per_image
from .paths import shared_data_dir
from .refine import refine_params
from .teacher import TEACHER_INPUT, Teacher, load_param_stats, vertices_crop_px
from .teacher_mirror import ParamMirror, flip_averaged


def crop_3ddfa(image: np.ndarray, roi: np.ndarray) -> np.ndarray:
    """(H, W, 3) → (120, 120, 3): the integer-rounded roi, zero-padded outside the image, resized."""
    h, w = image.shape[:2]
    sx, sy, ex, ey = (int(round(v)) for v in roi)
    out = np.zeros((ey - sy, ex - sx, 3), np.uint8)
    x0, y0, x1, y1 = max(sx, 0), max(sy, 0), min(ex, w), min(ey, h)
    out[y0 - sy : y1 - sy, x0 - sx : x1 - sx] = image[y0:y1, x0:x1]
    return cv2.resize(out, (TEACHER_INPUT, TEACHER_INPUT), interpolation=cv2.INTER_LINEAR)


def to_image(points_crop: np.ndarray, roi: np.ndarray) -> np.ndarray:
    """(N, K, 3) 120-crop px → image px with the roi's own x and y scales (z by their mean)."""
    sx = (roi[:, 2] - roi[:, 0]) / TEACHER_INPUT
    sy = (roi[:, 3] - roi[:, 1]) / TEACHER_INPUT
    p = points_crop.astype(np.float64).copy()
    p[..., 0] = p[..., 0] * sx[:, None] + roi[:, None, 0]
    p[..., 1] = p[..., 1] * sy[:, None] + roi[:, None, 1]
    p[..., 2] *= ((sx + sy) / 2)[:, None]
    return p


def dev_points21(folder: Path, names: list[str]) -> np.ndarray:
    """(N, 2, 21) human points from the .mat files (negative = missing; files with other counts: all missing)."""
    out = []
    for n in names:
        p = sio.loadmat(folder / (Path(n).stem + ".mat"))["pt2d"].astype(np.float64)
        out.append(p if p.shape == (2, 21) else np.full((2, 21), -1.0))
    return np.stack(out)


def evaluate_labels(
    folder: Path, teacher_dir: Path | None = None, *, teacher_flip: bool = True
) -> dict[str, dict[str, float]]:
    """Binned NMEs of ``"teacher"`` (one pass, the published protocol), ``"teacher_flip"`` (flip-averaged)
    and ``"refined"`` (refined from the flip-averaged fit, or from the one-pass fit without ``teacher_flip``)."""
    names = (folder / "list.txt").read_text().split()
    rois = np.load(folder / "roi_box.npy")
    gt = np.load(folder / "pts68.npy").transpose(0, 2, 1)
    yaw = np.abs(np.load(folder / "yaw.npy"))
    teacher = Teacher(teacher_dir)
    crops = np.stack([crop_3ddfa(cv2.imread(str(folder / n)), r) for n, r in zip(names, rois)])
    params = teacher(crops)
    basis, topo = load_basis(), load_topology(teacher_dir)

    def score(p: np.ndarray) -> dict[str, float]:
        return binned(nme_per_image(to_image(vertices_crop_px(p, basis, topo.keypoints), rois), gt), yaw)

    averaged = flip_averaged(teacher, crops, ParamMirror.build(basis, topo.mirror), plain=params)
    out = {"teacher": score(params), "teacher_flip": score(averaged)}
    std = load_param_stats(teacher_dir)[1]
    # the human points map into the crop with the x scale only, as for the (square) training rois
    pts = human_points_crop(dev_points21(folder, names), rois)
    out["refined"] = score(refine_params(averaged if teacher_flip else params, pts, basis, topo.keypoints, std))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path, nargs="?", default=shared_data_dir() / "aflw2000_dev")
    ap.add_argument(
        "--no-teacher-flip", action="store_true", help="refine the one-pass teacher fit (the labels of runs 1-28)"
    )
    args = ap.parse_args(argv)
    for name, r in evaluate_labels(args.folder, teacher_flip=not args.no_teacher_flip).items():
        bins = f"{r['0-30']:.2f} / {r['30-60']:.2f} / {r['60-90']:.2f}"
        print(f"{name:12s} balanced NME 2D {r['balanced']:.2f} % ({bins})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
