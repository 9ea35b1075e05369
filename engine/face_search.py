"""Finding the faces of a photo: detect → settle each crop → restart doubtful ones → quarter turns.

:meth:`FaceSearch.find` returns the faces of an RGB photo as :class:`FoundFaces` (each face's final
position map, its crop and roi), largest detection first:

1. **Detect** (or take the caller's boxes) and turn each box into the network's square roi
   (engine.detect.roi_from_detection); rois under :data:`MIN_ROI_PX` are dropped.
2. **Settle** each crop on its own landmarks (engine.passes.NetworkPasses.refine).
3. **Restart** a face whose settled crop is doubtful — its landmarks disagree with its mirror
   image's by more than :data:`RESTART_DISAGREEMENT` percent (engine.verify): a detector box on part
   of a face. Refinement starts again from squares :data:`RESTART_SCALES` × the box, and the start
   that agrees best with its mirror replaces the first crop by :func:`restart_wins`.
4. **Fallback**: when the detector finds nothing, the fallback detector's boxes (at most
   :data:`FALLBACK_MAX_BOXES`) count only where the network confirms them (settled, and within
   engine.verify's :data:`~engine.verify.MAX_FLIP_DISAGREEMENT`).
5. **Quarter turns** (engine.turns): a photo without a face upright, or with a face still doubtful,
   is searched again turned a quarter turn each way; a face found turned comes back in the photo's
   own frame (:class:`~engine.turns.TurnedCrop`).
6. **Shift averaging** of every kept face's map (engine.passes).

Why each constant has its value, with the measurements: docs/decisions.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .crop import CropTransform, scaled_roi
from .detect import NMS_OVERLAP, FaceDetector, keep_distinct, overlap_of_smaller, roi_from_detection
from .errors import InvalidOptionError
from .options import DEFAULT_BOX_KIND, check_box_kind
from .passes import NetworkPasses
from .turns import QUARTER_TURNS, TurnedCrop, box_from_turned, turn_image
from .types import BoundingBox
from .verify import MAX_FLIP_DISAGREEMENT

MIN_ROI_PX = 16  # a roi smaller than this (photo px) holds too little face to reconstruct
RESTART_DISAGREEMENT = 3.0  # % mirror disagreement above which a settled crop is doubtful (real faces: p90 2.6)
RESTART_RATIO = 2.0  # a restart under the no-face bar wins when the first crop disagrees this many times more
RESTART_SCALES = (1.5, 2.2)  # restart squares, × the detector's roi side, same centre
MAX_BOX_TO_PHOTO = 2.0  # a given box may reach past the photo (a face cut by its edge), not be twice its size
FALLBACK_MAX_BOXES = 8  # fallback boxes (relaxed cascades, close-ups) checked per photo, largest first


def doubtful_faces(disagreement: np.ndarray) -> list[int]:
    """Indices of the faces whose settled crops disagree with their mirror images (percent, (F,)) by
    more than :data:`RESTART_DISAGREEMENT`: those restarted, then searched turned."""
    return [i for i, d in enumerate(disagreement) if d > RESTART_DISAGREEMENT]


def restart_wins(new: float, first: float) -> bool:
    """Does another crop of a doubtful face (a restart, or the face found in the photo turned) that
    disagrees with its mirror by ``new`` percent replace the settled crop at ``first`` percent? When
    it is confident (under :data:`RESTART_DISAGREEMENT`), not merely less doubtful; or when it passes
    engine.verify's no-face bar (:data:`MAX_FLIP_DISAGREEMENT`) and the first crop was far off
    (:data:`RESTART_RATIO` times its disagreement)."""
    return new < RESTART_DISAGREEMENT or (new < MAX_FLIP_DISAGREEMENT and RESTART_RATIO * new < first)


def check_boxes(boxes: list[BoundingBox], height: int, width: int) -> None:
    """InvalidOptionError naming the first of ``boxes`` (photo px) that lies off a ``width`` × ``height``
    photo or is more than :data:`MAX_BOX_TO_PHOTO` × the photo's larger side."""
    for box in boxes:
        corners = [box.left, box.top, box.right, box.bottom]
        overlap_x = min(box.right, width) - max(box.left, 0.0)
        overlap_y = min(box.bottom, height) - max(box.top, 0.0)
        if overlap_x <= 0 or overlap_y <= 0:
            raise InvalidOptionError(f"box {corners} lies outside the {width}×{height} photo")
        if max(box.right - box.left, box.bottom - box.top) > MAX_BOX_TO_PHOTO * max(width, height):
            raise InvalidOptionError(
                f"box {corners} is more than {MAX_BOX_TO_PHOTO:g}× the {width}×{height} photo: no face of it fits"
            )


@dataclass(frozen=True, slots=True, eq=False)
class FoundFaces:
    """F faces of a photo: ``maps`` (F, S, S, 3) float32 position maps in crop px, ``transforms`` (F)
    their crops (:class:`~engine.turns.TurnedCrop` for a face found in the turned photo), ``rois`` (F)
    final rois in the photo's px, ``disagreement`` (F,) percent mirror disagreement at the final
    crop, or None where nothing was checked (no refinement, or boxes given by the caller)."""

    maps: np.ndarray
    transforms: list[CropTransform | TurnedCrop]
    rois: list[BoundingBox]
    disagreement: np.ndarray | None = None

    @classmethod
    def none(cls, input_size: int) -> FoundFaces:
        return cls(np.zeros((0, input_size, input_size, 3), np.float32), [], [], np.zeros(0))

    def __len__(self) -> int:
        return len(self.rois)

    def take(self, keep: list[int] | np.ndarray) -> FoundFaces:
        """The faces at indices ``keep``, in that order."""
        d = None if self.disagreement is None else self.disagreement[keep]
        return FoundFaces(self.maps[keep], [self.transforms[i] for i in keep], [self.rois[i] for i in keep], d)

    def replaced(self, i: int, other: FoundFaces, j: int) -> FoundFaces:
        """A copy with face ``i`` replaced by face ``j`` of ``other``."""
        maps, transforms, rois = self.maps.copy(), list(self.transforms), list(self.rois)
        maps[i], transforms[i], rois[i] = other.maps[j], other.transforms[j], other.rois[j]
        d = None
        if self.disagreement is not None:
            d = self.disagreement.copy()
            d[i] = other.disagreement[j]
        return FoundFaces(maps, transforms, rois, d)


class FaceSearch:
    """The search of the module's text over one network (``passes``). ``detector`` finds face boxes in
    an upright RGB photo; ``fallback_detector`` (or None) is asked when it finds none; ``turn_search``
    enables the quarter turns. Detection time goes to ``passes.clock`` under ``"detect"``."""

    def __init__(
        self,
        passes: NetworkPasses,
        detector: FaceDetector,
        fallback_detector: FaceDetector | None,
        *,
        turn_search: bool,
    ) -> None:
        self.passes, self.detector, self.fallback_detector = passes, detector, fallback_detector
        self.turn_search = turn_search

    def find(
        self,
        rgb: np.ndarray,
        *,
        boxes: list[BoundingBox] | None = None,
        box_kind: str = DEFAULT_BOX_KIND,
        all_faces: bool = True,
    ) -> FoundFaces:
        """The faces of an RGB photo (steps 1–6 of the module's text). ``boxes`` (photo px) replace
        detection, and no fallback or turn is tried: ``box_kind`` ``"face"`` boxes are taken as a
        detector's (converted to a roi, then settled), ``"roi"`` boxes are the crops themselves, run
        once as the benchmark protocol does (no settling, no restart; shift averaging as set).
        ``all_faces=False`` keeps the largest. A given box must overlap the photo and be at most
        :data:`MAX_BOX_TO_PHOTO` × its larger side, else InvalidOptionError (it cannot hold a face of
        this photo)."""
        if boxes is not None:
            check_boxes(boxes, rgb.shape[0], rgb.shape[1])
            if check_box_kind(box_kind) == "roi":
                return self._given_rois(rgb, boxes if all_faces else [max(boxes, key=lambda b: b.area)])
        found = self._upright(rgb, boxes=boxes, all_faces=all_faces)
        if boxes is not None or not self.turn_search:
            return found
        return self._with_turns(rgb, found, all_faces=all_faces)

    def _upright(self, rgb: np.ndarray, *, boxes: list[BoundingBox] | None, all_faces: bool) -> FoundFaces:
        """:meth:`find` in the photo as it is, without quarter turns."""
        with self.passes.clock.measure("detect"):
            if boxes is not None:
                rois = [roi_from_detection(b, "frontal") for b in boxes]
            else:
                rois = [roi_from_detection(b) for b in self.detector(rgb)]
            rois = [r for r in rois if max(r.width, r.height) >= MIN_ROI_PX]
        if rois:
            return self._settle_restarting(rgb, rois[:1] if not all_faces else rois)
        if boxes is None and self.fallback_detector is not None:
            return self._fallback(rgb, all_faces=all_faces)
        return FoundFaces.none(self.passes.input_size)

    def _given_rois(self, rgb: np.ndarray, rois: list[BoundingBox]) -> FoundFaces:
        """Each given roi cropped and run once (``find``'s ``box_kind="roi"``)."""
        maps, transforms = self.passes.run_network(rgb, list(rois))
        return self._shift_averaged(rgb, FoundFaces(maps, list(transforms), list(rois)))

    def _settle_restarting(self, rgb: np.ndarray, starts: list[BoundingBox]) -> FoundFaces:
        """Steps 2, 3 and 6 for detector rois; faces that converged onto one face count once (the
        larger detection's)."""
        refined = self.passes.refine(rgb, starts)
        found = FoundFaces(refined.maps, list(refined.transforms), refined.rois)
        if self.passes.refine_crops:
            found = self._restart_doubtful(rgb, starts, found)
            found = found.take(keep_distinct(found.rois))
        return self._shift_averaged(rgb, found)

    def _restart_doubtful(self, rgb: np.ndarray, starts: list[BoundingBox], found: FoundFaces) -> FoundFaces:
        """``found`` (settled from ``starts``) with its mirror disagreements, each doubtful face replaced
        by its best restart where :func:`restart_wins`."""
        found = FoundFaces(found.maps, found.transforms, found.rois, self.passes.mirror_disagreement(rgb, found.rois))
        doubtful = doubtful_faces(found.disagreement)
        if not doubtful:
            return found
        n = len(RESTART_SCALES)
        again = self.passes.refine(rgb, [scaled_roi(starts[i], factor) for i in doubtful for factor in RESTART_SCALES])
        restarts = FoundFaces(
            again.maps, again.transforms, again.rois, self.passes.mirror_disagreement(rgb, again.rois)
        )
        for j, i in enumerate(doubtful):
            best = j * n + int(np.argmin(restarts.disagreement[j * n : (j + 1) * n]))
            if restart_wins(float(restarts.disagreement[best]), float(found.disagreement[i])):
                found = found.replaced(i, restarts, best)
        return found

    def _fallback(self, rgb: np.ndarray, *, all_faces: bool) -> FoundFaces:
        """Step 4: the fallback detector's faces that the network confirms; boxes that converged onto
        the same face count once."""
        with self.passes.clock.measure("detect"):
            rois = [roi_from_detection(b) for b in self.fallback_detector(rgb)]
            rois = [r for r in rois if max(r.width, r.height) >= MIN_ROI_PX][:FALLBACK_MAX_BOXES]
        if not rois:
            return FoundFaces.none(self.passes.input_size)
        refined = self.passes.refine(rgb, rois)
        candidates = [i for i in range(len(rois)) if refined.settled[i]]  # a drifting crop is no face
        if not candidates:
            return FoundFaces.none(self.passes.input_size)
        all_found = FoundFaces(refined.maps, list(refined.transforms), refined.rois, np.full(len(rois), np.inf))
        all_found.disagreement[candidates] = self.passes.mirror_disagreement(rgb, [refined.rois[i] for i in candidates])
        d = all_found.disagreement
        confirmed = sorted((i for i in candidates if d[i] < MAX_FLIP_DISAGREEMENT), key=lambda i: d[i])
        keep = [confirmed[j] for j in keep_distinct([refined.rois[i] for i in confirmed])]
        keep.sort(key=lambda i: -refined.rois[i].area)
        keep = keep[:1] if not all_faces else keep
        if not keep:
            return FoundFaces.none(self.passes.input_size)
        return self._shift_averaged(rgb, all_found.take(keep))

    def _shift_averaged(self, rgb: np.ndarray, found: FoundFaces) -> FoundFaces:
        maps = self.passes.average_shifted_crops(rgb, found.maps, found.transforms)
        return FoundFaces(maps, found.transforms, found.rois, found.disagreement)

    def _with_turns(self, rgb: np.ndarray, upright: FoundFaces, *, all_faces: bool) -> FoundFaces:
        """Step 5. No face upright: of the turns whose faces the network confirms (within
        :data:`MAX_FLIP_DISAGREEMENT`), the turn whose best face agrees best with its mirror. A face
        still doubtful upright: a face found turned on the same spot (overlap over
        engine.detect.NMS_OVERLAP) replaces it by :func:`restart_wins`."""
        doubtful = [] if upright.disagreement is None else doubtful_faces(upright.disagreement)
        if len(upright) and not doubtful:
            return upright
        hw = (int(rgb.shape[0]), int(rgb.shape[1]))
        turns = []  # per turn: its faces in the photo's own frame
        for k in QUARTER_TURNS:
            turned = turn_image(rgb, k)
            t = self._upright(turned, boxes=None, all_faces=all_faces)
            d = t.disagreement
            if len(t) and d is None:  # no refinement: the mirror check alone
                d = self.passes.mirror_disagreement(turned, t.rois)
            transforms = [TurnedCrop(tr, k, hw) for tr in t.transforms]
            turns.append(FoundFaces(t.maps, transforms, [box_from_turned(r, k, hw) for r in t.rois], d))
        if not len(upright):
            confirmed = [t for t in turns if len(t)]
            if not confirmed or min(t.disagreement.min() for t in confirmed) >= MAX_FLIP_DISAGREEMENT:
                return upright
            best = min(confirmed, key=lambda t: t.disagreement.min())
            return best.take(np.flatnonzero(best.disagreement < MAX_FLIP_DISAGREEMENT))
        found = upright
        for i in doubtful:
            same_spot = [
                (float(t.disagreement[j]), t, j)
                for t in turns
                for j in range(len(t))
                if overlap_of_smaller(t.rois[j], found.rois[i]) > NMS_OVERLAP
            ]
            if same_spot:
                d, t, j = min(same_spot, key=lambda c: c[0])
                if restart_wins(d, float(found.disagreement[i])):
                    found = found.replaced(i, t, j)
        return found.take(keep_distinct(found.rois))  # two doubtful boxes of one face lying down found it once
