"""The UV layout published with PRNet (its ``Data/uv-data`` folder), read into our :class:`UVLayout`.

The official weights predict maps in this layout, so an imported model must carry it (ours differs:
see ``training.layout_builder``). Files read, never copied into the repo:

* ``uv_kpt_ind.txt`` — 2×68 integer (u, v) map pixels of the 68 landmarks (row 0 = u = column);
* ``face_ind.txt`` — the flat row-major indices of the face pixels (``uv_face_mask.png`` if absent);
* ``canonical_vertices.npy`` — PRNet's mean face at those pixels, the target of its pose fit;
* ``uv_weight_mask.png`` — the paper's loss weights as grey levels 255 / 64 / 48 / 0.

Canonical frame: PRNet's array is already x right, y down, z toward the camera (the nose tip has the
largest z; the forehead the smallest y), but not centred and not in millimetres. We scale it by
:data:`CANONICAL_MM_PER_UNIT`, measured once against the BFM mean face of our own layout, and centre
it at the origin. Triangles: PRNet ships none beyond its own ``triangles.txt``, which is two per grid
cell over the mask — :func:`engine.layout.grid_triangles`. Mirror map: the published mask is
left/right symmetric to 99.9 % IoU, so we *assume* exact symmetry about the central column,
``u' = S − 1 − u``, ``v' = v``.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import LayoutError
from ..layout import N_LANDMARKS, UVLayout, grid_triangles

LAYOUT_ID = "prnet-official-256"
LAYOUT_SIZE = 256  # PRNet's position maps are 256×256
# Least-squares isotropic scale from PRNet's canonical vertices onto our BFM mean face (mm) at the
# 42,537 UV pixels both masks share: 0.8335 mm per unit (≈ 1 / 1.2), mean residual 0.44 mm.
CANONICAL_MM_PER_UNIT = 0.8335
# Grey level of uv_weight_mask.png → loss weight (PRNet Fig. 4: 16 : 4 : 3 : 0). Any other non-zero
# level (anti-aliased borders: 53, 58, 117, 122, 128; ≈ 900 pixels) counts as plain face.
WEIGHT_LEVELS = {255: 16.0, 64: 4.0, 48: 3.0}
W_OTHER_FACE = 3.0


def _read_gray(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise LayoutError(f"cannot read image {path}")
    if image.shape != (LAYOUT_SIZE, LAYOUT_SIZE):
        raise LayoutError(f"{path}: expected a {LAYOUT_SIZE}×{LAYOUT_SIZE} image, got {image.shape}")
    return image


def _face_mask(uv_dir: Path) -> np.ndarray:
    ind_path = uv_dir / "face_ind.txt"
    if ind_path.is_file():
        flat = np.loadtxt(ind_path).astype(np.int64).ravel()
        if flat.min() < 0 or flat.max() >= LAYOUT_SIZE**2 or np.any(np.diff(flat) <= 0):
            raise LayoutError(f"{ind_path}: face indices must be increasing and inside the {LAYOUT_SIZE}² map")
        mask = np.zeros(LAYOUT_SIZE**2, dtype=bool)
        mask[flat] = True
        return mask.reshape(LAYOUT_SIZE, LAYOUT_SIZE)
    mask_path = uv_dir / "uv_face_mask.png"
    if not mask_path.is_file():
        raise LayoutError(f"{uv_dir}: neither face_ind.txt nor uv_face_mask.png found")
    return _read_gray(mask_path) > 0


def weights_from_png(levels: np.ndarray, face_mask: np.ndarray) -> np.ndarray:
    """(S, S) grey levels → (S, S) float32 loss weights, 0 outside ``face_mask``."""
    weights = np.where(levels > 0, W_OTHER_FACE, 0.0).astype(np.float32)
    for level, weight in WEIGHT_LEVELS.items():
        weights[levels == level] = weight
    weights[~face_mask] = 0.0
    return weights


def load_prnet_layout(uv_dir: str | Path) -> UVLayout:
    """Build the official layout from a PRNet ``uv-data`` folder."""
    uv_dir = Path(uv_dir)
    if not uv_dir.is_dir():
        raise LayoutError(f"PRNet uv-data folder not found: {uv_dir}")
    face_mask = _face_mask(uv_dir)
    n = int(face_mask.sum())

    kpt_path = uv_dir / "uv_kpt_ind.txt"
    try:
        keypoints = np.loadtxt(kpt_path, dtype=np.float64)
    except OSError as exc:
        raise LayoutError(f"cannot read {kpt_path}: {exc}") from exc
    if keypoints.shape != (2, N_LANDMARKS):
        raise LayoutError(f"{kpt_path}: expected 2×{N_LANDMARKS} (u, v) rows, got {keypoints.shape}")

    canon_path = uv_dir / "canonical_vertices.npy"
    try:
        canonical = np.load(canon_path, allow_pickle=False).astype(np.float64)
    except (OSError, ValueError) as exc:
        raise LayoutError(f"cannot read {canon_path}: {exc}") from exc
    if canonical.shape != (n, 3):
        raise LayoutError(f"{canon_path}: expected ({n}, 3) for {n} face pixels, got {canonical.shape}")
    canonical = (canonical - canonical.mean(axis=0)) * CANONICAL_MM_PER_UNIT

    weight_path = uv_dir / "uv_weight_mask.png"
    if not weight_path.is_file():
        raise LayoutError(f"PRNet weight mask not found: {weight_path}")
    weight_mask = weights_from_png(_read_gray(weight_path), face_mask)

    rows, cols = np.divmod(np.flatnonzero(face_mask.ravel()), LAYOUT_SIZE)
    mirror_uv = np.stack([(LAYOUT_SIZE - 1) - cols, rows], axis=1)
    return UVLayout(
        layout_id=LAYOUT_ID,
        face_mask=face_mask,
        keypoints_uv=keypoints.T.astype(np.float32),
        triangles=grid_triangles(face_mask),
        weight_mask=weight_mask,
        canonical_vertices=canonical.astype(np.float32),
        mirror_uv=mirror_uv.astype(np.float32),
    )
