"""Network passes over crops of one photo: crop → network → position maps, and what is built from them.

* :meth:`NetworkPasses.run_network` — one pass: each roi cut to the network's input (tightened by
  the crop zoom, engine.crop) and predicted, averaged with the mirrored crop's map when flip
  averaging is on;
* :meth:`NetworkPasses.refine` — the refinement: each face re-cropped on its own 68 landmarks (the
  training crops were cut that way, so a detector box is framed differently) until the next crop
  would move by less than :data:`REFINE_TOLERANCE` of its side, at most :data:`REFINE_MAX_PASSES`
  passes; a face still drifting then keeps its steadiest crop;
* :meth:`NetworkPasses.average_shifted_crops` — shift averaging: a settled face's map averaged, in
  image px, with those of its crop moved by ±:data:`SHIFT_FRACTION` of its side in x and in y;
* :meth:`NetworkPasses.mirror_disagreement` — how far a crop's landmarks are from its mirror
  image's (engine.verify): the network's own check that a crop holds a whole face.

Why each constant has its value, with the measurements: docs/decisions.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .crop import CropTransform, crop_image, roi_change, roi_from_landmarks
from .model import PositionMapNet, predict_position_maps
from .readout import Readout
from .shape_model import LandmarkShapeModel
from .stage_times import StageClock
from .turns import TurnedCrop
from .types import BoundingBox
from .verify import flip_disagreement, pair_disagreement, unmirror_map_arrays

REFINE_MAX_PASSES = 6  # network passes per face at most: a face framed badly by a detector settles within 6
REFINE_TOLERANCE = 0.02  # settled: the next crop would move by less than this fraction of the roi side
SHIFT_FRACTION = 0.03  # shift averaging's offset, fraction of the crop side (left, right, up, down)
SHIFTS = ((SHIFT_FRACTION, 0.0), (-SHIFT_FRACTION, 0.0), (0.0, SHIFT_FRACTION), (0.0, -SHIFT_FRACTION))


@dataclass(frozen=True, slots=True, eq=False)
class Refined:
    """The refinement's result for F start rois: ``maps`` (F, S, S, 3) float32 in crop px,
    ``transforms`` (F) their crops, ``rois`` (F) the final rois in image px, ``settled`` (F) whether
    each crop settled (always False without refinement, which cannot tell)."""

    maps: np.ndarray
    transforms: list[CropTransform]
    rois: list[BoundingBox]
    settled: list[bool]


class NetworkPasses:
    """The network with its inference settings, run over crops of a photo (see the module's text).

    ``clock`` (optional) receives the seconds spent cutting crops under the stage ``"crop"``.
    """

    def __init__(
        self,
        model: PositionMapNet,
        readout: Readout,
        *,
        input_size: int,
        amp_dtype: torch.dtype | None,
        refine: bool,
        flip_average: bool,
        shift_average: bool,
        crop_zoom: float,
        landmark_model: LandmarkShapeModel | None,
        clock: StageClock | None = None,
    ) -> None:
        self.model, self.readout, self.input_size, self.amp_dtype = model, readout, input_size, amp_dtype
        self.refine_crops, self.flip_average, self.shift_average = refine, flip_average, shift_average
        self.crop_zoom, self.landmark_model = crop_zoom, landmark_model
        self.clock = clock if clock is not None else StageClock()
        self.images = 0  # crops (mirror images included) run through the network since the last reset
        self._seen_image: np.ndarray | None = None  # the image whose crops' mirror disagreements are remembered
        self._seen: dict[tuple[float, ...], float] = {}

    # -- one pass ---------------------------------------------------------------------------------
    def predict_maps(self, crops: np.ndarray) -> np.ndarray:
        """(B, S, S, 3) uint8 RGB crops → (B, S, S, 3) float32 position maps in crop px (averaged with
        the mirrored crops' when ``flip_average``)."""
        self.images += len(crops) * (2 if self.flip_average else 1)
        return predict_position_maps(self.model, crops, amp_dtype=self.amp_dtype, flip_average=self.flip_average)

    def crops(self, image: np.ndarray, rois: list[BoundingBox]) -> tuple[np.ndarray, list[CropTransform]]:
        """(F, S, S, 3) uint8 crops of ``rois`` (image px, tightened by the crop zoom) and their transforms."""
        with self.clock.measure("crop"):
            crops, transforms = zip(*(crop_image(image, roi, self.input_size, self.crop_zoom) for roi in rois))
            return np.stack(crops), list(transforms)

    def run_network(self, image: np.ndarray, rois: list[BoundingBox]) -> tuple[np.ndarray, list[CropTransform]]:
        """One pass over the rois of the RGB ``image``: (F, S, S, 3) maps in crop px and their crops.
        With flip averaging, the mirror disagreement of each crop is remembered (the pass computed
        both halves), so :meth:`mirror_disagreement` of the same image and rois runs no network."""
        if not self.flip_average:
            crops, transforms = self.crops(image, rois)
            return self.predict_maps(crops), transforms
        direct, back, _, transforms = self.mirror_pair(image, rois)
        return 0.5 * (direct + back), transforms

    def mirror_pair(
        self, image: np.ndarray, rois: list[BoundingBox]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[CropTransform]]:
        """Each roi's crop and its mirror image in one batch: (F, S, S, 3) direct maps, (F, S, S, 3) the
        mirror images' maps mirrored back (both crop px), (F,) their disagreement (percent,
        engine.verify; remembered for :meth:`mirror_disagreement`), and the crops."""
        crops, transforms = self.crops(image, rois)
        f = len(crops)
        self.images += 2 * f
        both = predict_position_maps(self.model, np.concatenate([crops, crops[:, :, ::-1]]), amp_dtype=self.amp_dtype)
        back = unmirror_map_arrays(both[f:])
        disagreement = [pair_disagreement(both[i], back[i], self.readout) for i in range(f)]
        self._remember(image, rois, disagreement)
        return both[:f], back, np.array(disagreement), transforms

    def mirror_disagreement(self, image: np.ndarray, rois: list[BoundingBox]) -> np.ndarray:
        """(F,) :func:`engine.verify.flip_disagreement` (percent) of the crops of ``rois`` (image px):
        remembered from a flip-averaged pass over the same image and roi, else computed."""
        keys = [tuple(r.as_list()) for r in rois]
        if self._seen_image is image and all(k in self._seen for k in keys):
            return np.array([self._seen[k] for k in keys])
        crops, _ = self.crops(image, rois)
        self.images += 2 * len(crops)
        return flip_disagreement(self.model, crops, self.readout, amp_dtype=self.amp_dtype)

    def _remember(self, image: np.ndarray, rois: list[BoundingBox], disagreement: list[float]) -> None:
        if self._seen_image is not image:  # a new image: what was seen of the last one no longer applies
            self._seen_image, self._seen = image, {}
        self._seen.update({tuple(r.as_list()): d for r, d in zip(rois, disagreement)})

    def forget(self) -> None:
        """Drop what :meth:`run_network` remembered (and the image it holds)."""
        self._seen_image, self._seen = None, {}

    def landmarks(self, out_map: np.ndarray, transform: CropTransform | TurnedCrop) -> np.ndarray:
        """(68, 3) float64 landmarks in image px of a (S, S, 3) map in crop px: the read-out, fitted to
        the landmark shape model when there is one (in crop px, with the map points it reads from the
        same map), then moved to the image."""
        points = self.readout.keypoints(out_map)
        if self.landmark_model is not None:
            points = self.landmark_model.fit(points, out_map)
        return transform.to_image(points)

    # -- refinement -------------------------------------------------------------------------------
    def refine(self, image: np.ndarray, rois: list[BoundingBox]) -> Refined:
        """Passes over ``rois`` until every face's crop settled (see the module's text): a face's next
        roi is the box of the landmarks the engine reports for it (fitted to the shape model), faces
        that settled are not run again, and a face still drifting after :data:`REFINE_MAX_PASSES`
        keeps the crop whose next crop would have moved least. Without refinement: one pass."""
        first_maps, first_transforms = self.run_network(image, rois)
        maps, transforms, rois = list(first_maps), list(first_transforms), list(rois)
        settled = [False] * len(rois)
        pending = list(range(len(rois))) if self.refine_crops else []
        steadiest: dict[int, tuple[float, np.ndarray, CropTransform, BoundingBox]] = {}
        for n_pass in range(2, REFINE_MAX_PASSES + 2):  # the last round only checks the final crops
            nxt = {i: roi_from_landmarks(self.landmarks(maps[i], transforms[i])[:, :2]) for i in pending}
            if n_pass > 2:
                for i in pending:
                    change = roi_change(rois[i], nxt[i])
                    settled[i] = change < REFINE_TOLERANCE
                    if i not in steadiest or change < steadiest[i][0]:
                        steadiest[i] = (change, maps[i], transforms[i], rois[i])
                pending = [i for i in pending if not settled[i]]
            if not pending or n_pass > REFINE_MAX_PASSES:
                break
            new_maps, new_transforms = self.run_network(image, [nxt[i] for i in pending])
            for i, m, t in zip(pending, new_maps, new_transforms):
                maps[i], transforms[i], rois[i] = m, t, nxt[i]
        for i in pending:  # still drifting at the pass limit: its steadiest crop, not the last one
            _, maps[i], transforms[i], rois[i] = steadiest[i]
        return Refined(np.stack(maps), transforms, rois, settled)

    # -- shift averaging --------------------------------------------------------------------------
    def average_shifted_crops(self, image: np.ndarray, maps: np.ndarray, transforms: list[CropTransform]) -> np.ndarray:
        """With ``shift_average``: each (S, S, 3) map (crop px of its transform) averaged in image px
        with the maps of the same crop moved by ±:data:`SHIFT_FRACTION` of its side in x and in y,
        returned in the original crop's px; without, ``maps`` as they are."""
        if not self.shift_average or len(maps) == 0:
            return maps
        views = self.shifted_views(image, maps, transforms)
        return np.stack([t.to_crop(v.mean(axis=0)) for t, v in zip(transforms, views)]).astype(maps.dtype)

    def shifted_views(self, image: np.ndarray, maps: np.ndarray, transforms: list[CropTransform]) -> np.ndarray:
        """(F, 5, S, S, 3) float64 image px: each face's map, then those of its crop moved by each of
        :data:`SHIFTS` (fractions of its side), each in image px."""
        rois = []  # the rois whose crops (roi side / crop_zoom) are each face's crop, moved
        for t in transforms:
            side = t.size / t.scale
            half = side * self.crop_zoom / 2
            cx, cy = t.left + side / 2, t.top + side / 2
            for dx, dy in SHIFTS:
                x, y = cx + dx * side, cy + dy * side
                rois.append(BoundingBox(x - half, y - half, x + half, y + half))
        shifted, moved = self.run_network(image, rois)
        views = []
        for i, t in enumerate(transforms):
            face = [t.to_image(maps[i])]
            face += [moved[j].to_image(shifted[j]) for j in range(i * len(SHIFTS), (i + 1) * len(SHIFTS))]
            views.append(np.stack(face))
        return np.stack(views)
