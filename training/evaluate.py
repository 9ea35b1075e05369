"""AFLW2000-3D style evaluation of a position-map network on roi crops (used by training and the CLI).

A dev folder is laid out like ``../shared/data/aflw2000_dev``: ``list.txt`` (image names),
``pts68.npy`` (N, 3, 68) ground truth, ``roi_box.npy`` (N, 4) crop boxes, ``yaw.npy`` (N,) |yaw|.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from engine.crop import CropTransform, crop_image
from engine.device import autocast_dtype
from engine.layout import UVLayout
from engine.model import predict_position_maps
from engine.readout import Readout
from engine.types import BoundingBox

from .dev_split import DevAnnotations
from .metrics import binned, nme_per_image

EVAL_BATCH = 32


@dataclass(frozen=True, slots=True, eq=False)
class DevSet:
    names: list[str]
    crops: np.ndarray  # (N, S, S, 3) uint8 RGB
    transforms: list[CropTransform]
    gt: np.ndarray  # (N, 68, 3) image px
    yaw: np.ndarray  # (N,) |yaw| degrees

    @classmethod
    def load(cls, folder: str | Path, size: int, zoom: float = 1.0, half: str = "tuning") -> DevSet:
        """Crops of the roi boxes at ``size``, tightened by ``zoom`` as the engine does (engine.crop), of
        ``half`` of the folder (training.dev_split; the tuning half unless asked otherwise)."""
        folder = Path(folder)
        dev = DevAnnotations.load(folder, half)
        crops, transforms = [], []
        for name, r in zip(dev.names, dev.rois):
            bgr = cv2.imread(str(folder / name))
            crop, t = crop_image(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), BoundingBox(*map(float, r)), size, zoom)
            crops.append(crop)
            transforms.append(t)
        return cls(dev.names, np.stack(crops), transforms, dev.gt, dev.abs_yaw)


def readout_points(
    model: torch.nn.Module, images: np.ndarray, layout: UVLayout, *, flip_average: bool = False
) -> np.ndarray:
    """(N, S, S, 3) uint8 RGB crops → (N, 68, 3) read-out landmarks in crop px, in the engine's
    precision for the model's device (engine.device.autocast_dtype: bf16 where the CPU has it natively)."""
    amp = autocast_dtype(next(model.parameters()).device)
    maps = predict_position_maps(model, images, amp_dtype=amp, batch=EVAL_BATCH, flip_average=flip_average)
    readout = Readout.build(layout, maps.shape[1])
    return np.stack([readout.keypoints(m) for m in maps])


def evaluate_model(
    model: torch.nn.Module, dev: DevSet, layout: UVLayout, *, flip_average: bool = False
) -> dict[str, dict[str, float]]:
    """NME 2D / 3D per yaw bin of one pass on the roi crops (:func:`readout_points`), optionally flip-averaged."""
    points = readout_points(model, dev.crops, layout, flip_average=flip_average)
    pred = np.stack([t.to_image(p) for p, t in zip(points, dev.transforms)])
    return {
        "nme_2d": binned(nme_per_image(pred, dev.gt, dims=2), dev.yaw),
        "nme_3d": binned(nme_per_image(pred, dev.gt, dims=3), dev.yaw),
    }
