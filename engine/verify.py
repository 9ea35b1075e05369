"""Is a detection a face? The network's own check, for boxes from the relaxed fallback cascade.

When the strict cascades (engine.detect) find nothing, the engine asks a relaxed cascade, whose
boxes are often not faces. A real face passes two checks that a false box fails: its landmark
refinement settles (the next crop would move less than ``engine.passes.REFINE_TOLERANCE``; a network shown
background drifts from crop to crop), and the landmarks predicted for its crop and for the mirrored
crop, mirrored back, agree (:func:`flip_disagreement`). On AFLW2000-3D, real faces disagree by
1.6–1.9 % (median) and false boxes by about 22 %: :data:`MAX_FLIP_DISAGREEMENT` lies between them
(the table of measurements: docs/decisions.md, "The network's check").
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .model import predict_position_maps, unmirror_maps
from .readout import Readout

MAX_FLIP_DISAGREEMENT = 5.0  # % of the landmark box size: above every real face's p90 (4.2), below every false box


@torch.no_grad()
def flip_disagreement(
    model: nn.Module, crops: np.ndarray, readout: Readout, *, amp_dtype: torch.dtype | None = None
) -> np.ndarray:
    """(F, S, S, 3) uint8 RGB crops → (F,) mean distance between the 68 landmarks predicted for each
    crop and those predicted for its mirror image (mirrored back through the layout), x, y only, in
    percent of √(w·h) of the direct landmarks' box (the NME's normaliser)."""
    crops = np.asarray(crops)
    if crops.ndim != 4 or crops.shape[-1] != 3 or len(crops) == 0:
        raise ValueError(f"expected (F, S, S, 3) crops with F > 0, got {crops.shape}")
    maps = predict_position_maps(model, np.concatenate([crops, crops[:, :, ::-1]]), amp_dtype=amp_dtype)
    f = len(crops)
    mirrored = unmirror_map_arrays(maps[f:])
    return np.array([pair_disagreement(maps[i], mirrored[i], readout) for i in range(f)])


def unmirror_map_arrays(maps: np.ndarray) -> np.ndarray:
    """(B, S, S, 3) maps (crop px) predicted for mirrored crops → those of the original crops
    (engine.model.unmirror_maps on numpy arrays)."""
    size = maps.shape[1]
    return unmirror_maps(torch.from_numpy(maps).permute(0, 3, 1, 2), size).permute(0, 2, 3, 1).numpy()


def pair_disagreement(direct: np.ndarray, back: np.ndarray, readout: Readout) -> float:
    """Mean distance (x, y) between the 68 landmarks of a crop's (S, S, 3) map and of its mirror
    image's map mirrored back, in percent of √(w·h) of the direct landmarks' box."""
    a, b = readout.keypoints(direct)[:, :2], readout.keypoints(back)[:, :2]
    box = np.sqrt(np.prod(np.maximum(a.max(axis=0) - a.min(axis=0), 1e-6)))
    return float(np.linalg.norm(a - b, axis=1).mean() / box * 100.0)
