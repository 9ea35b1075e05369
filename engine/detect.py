"""Face detection: a ``FaceDetector`` protocol, a small registry, and offline backends.

A detector takes an upright RGB uint8 photo and returns every face it finds as a :class:`FaceBox`
(a :class:`~engine.types.BoundingBox` that also says which model found it), largest first; no face
gives ``[]``, never ``None``. Detector boxes are tight face boxes, not the network's crop box:
:func:`roi_from_detection` maps one to the square 3DDFA-protocol roi the training crops were cut
with, using offsets calibrated on AFLW2000-3D (``training/calibrate_detector.py``).

The default backend runs OpenCV's bundled Viola–Jones cascades (Viola & Jones, CVPR 2001): the
frontal cascade, and the profile cascade on the photo and on its mirror image (the cascade only
knows one profile direction); overlapping boxes are merged by non-maximum suppression. The same
cascades with :data:`FALLBACK_MIN_NEIGHBOURS` are the engine's fallback when these find nothing; the
network then checks the fallback's boxes (engine.verify).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from .errors import NoWeightsError
from .types import BoundingBox

FRONTAL, PROFILE_LEFT, PROFILE_RIGHT, ROI = "frontal", "profile_left", "profile_right", "roi"
KINDS = (FRONTAL, PROFILE_LEFT, PROFILE_RIGHT, ROI)  # profile_left: the nose points to image left

# Cascade settings and box → roi offsets were calibrated on AFLW2000-3D (docs/decisions.md, "Detector
# calibration"; `python -m training.calibrate_detector`): the comments give each one's reason.
FRONTAL_CASCADE = "haarcascade_frontalface_default.xml"  # finds more AFLW faces alone than alt2 (68 vs 60 %)
PROFILE_CASCADE = "haarcascade_profileface.xml"  # OpenCV's only profile cascade (nose toward image left)
DETECT_MAX_SIDE = 200  # px of the detection copy's long side: as many faces as 320 px at 0.4× the time
MIN_FACE_PX = 24  # smallest face in the detection copy (the frontal cascade's window): 12 % of the long side
SCALE_FACTOR = 1.1  # pyramid step; 1.15 is 1.5× faster but finds 5 points fewer faces
MIN_NEIGHBOURS_FRONTAL = 4  # merged windows a frontal box needs: fewer boxes off the face for 0.8 point of faces
MIN_NEIGHBOURS_PROFILE = 3  # same for profiles (4 loses 1.2 points of faces)
NMS_OVERLAP = 0.5  # intersection / smaller area above which two boxes are one face
# the fallback's cascades (frontal, profile): boxes of a single raw window, which the network then checks
FALLBACK_MIN_NEIGHBOURS = (1, 1)
# the fallback's close-ups: centred squares of these fractions of the shorter side (0.5: half-frame heads)
CLOSE_UP_FRACTIONS = (1.0, 0.7, 0.5)

# Detector box → 3DDFA roi (square, side √2 × the 68-landmark box): offsets are fractions of the
# detector box side (x right, y down; for profiles +x is where the nose points), scale = roi side /
# box side; medians over the detections on the annotated faces of AFLW2000-3D.
ROI_FRONTAL_OFFSET = (0.0004, 0.1303)  # the roi centre sits 13 % of a frontal box lower
ROI_FRONTAL_SCALE = 1.1983
ROI_PROFILE_OFFSET = (0.0106, 0.1314)  # both directions, x mirrored
ROI_PROFILE_SCALE = 1.0092  # profile boxes are larger than frontal ones for the same face


@dataclass(frozen=True, slots=True)
class FaceBox(BoundingBox):
    """A detected face box; ``kind`` (one of :data:`KINDS`) says which model found it.

    ``score`` is the number of raw cascade windows merged into the box (higher = surer).
    """

    kind: str = ROI

    def __post_init__(self) -> None:
        BoundingBox.__post_init__(self)
        if self.kind not in KINDS:
            raise ValueError(f"unknown detection kind {self.kind!r}; expected one of {KINDS}")


class FaceDetector(Protocol):
    """Anything that maps an (H, W, 3) uint8 RGB photo to its face boxes, largest first."""

    def __call__(self, image: np.ndarray) -> list[BoundingBox]: ...


def _check_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or 0 in image.shape:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")
    return image


def _load_cascade(file_name: str) -> cv2.CascadeClassifier:
    path = Path(cv2.data.haarcascades) / file_name
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise NoWeightsError(f"OpenCV cascade missing or unreadable: {path}")
    return cascade


class OpenCVCascadeDetector:
    """Viola–Jones cascades shipped with OpenCV: frontal + profile (both directions), NMS-merged.

    Runs on a grey copy shrunk to ``max_side``, so faces narrower than ``min_face / max_side`` of the
    photo's long side (12 % by default) are not found: raise ``max_side`` for group photos (the time
    grows with its square). ``profile=False`` skips the two profile passes (≈ 3× faster, but only
    12 % of the faces turned more than 60° are then found).
    """

    def __init__(
        self,
        *,
        max_side: int = DETECT_MAX_SIDE,
        min_face: int = MIN_FACE_PX,
        scale_factor: float = SCALE_FACTOR,
        min_neighbours: tuple[int, int] = (MIN_NEIGHBOURS_FRONTAL, MIN_NEIGHBOURS_PROFILE),
        profile: bool = True,
    ) -> None:
        if max_side < min_face or min_face < 1 or scale_factor <= 1.0:
            raise ValueError(
                f"bad cascade settings: max_side={max_side}, min_face={min_face}, scale_factor={scale_factor}"
            )
        self.max_side, self.min_face = int(max_side), int(min_face)
        self.scale_factor, self.min_neighbours = float(scale_factor), tuple(int(n) for n in min_neighbours)
        self._frontal = _load_cascade(FRONTAL_CASCADE)
        self._profile = _load_cascade(PROFILE_CASCADE) if profile else None

    def detect_all(self, image: np.ndarray) -> list[FaceBox]:
        """Every cascade hit, before NMS (image px); used by the calibration script."""
        image = _check_image(image)
        h, w = image.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)  # before resizing: 1 channel to shrink, not 3
        if scale < 1.0:
            gray = cv2.resize(gray, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        gray = cv2.equalizeHist(gray)
        n_frontal, n_profile = self.min_neighbours
        passes = [(self._frontal, gray, FRONTAL, False, n_frontal)]
        if self._profile is not None:
            mirrored = np.ascontiguousarray(gray[:, ::-1])
            passes += [
                (self._profile, gray, PROFILE_LEFT, False, n_profile),
                (self._profile, mirrored, PROFILE_RIGHT, True, n_profile),
            ]
        found = []
        gw = gray.shape[1]
        for cascade, img, kind, flipped, neighbours in passes:
            rects, counts = cascade.detectMultiScale2(
                img, scaleFactor=self.scale_factor, minNeighbors=neighbours, minSize=(self.min_face,) * 2
            )
            for (x, y, bw, bh), n in zip(np.reshape(rects, (-1, 4)), np.ravel(counts), strict=True):
                x0 = gw - x - bw if flipped else x
                found.append(FaceBox(x0 / scale, y / scale, (x0 + bw) / scale, (y + bh) / scale, float(n), kind))
        return found

    def __call__(self, image: np.ndarray) -> list[FaceBox]:
        return non_max_suppression(self.detect_all(image))


class CloseUpBoxes:
    """Square rois centred on the photo, :data:`CLOSE_UP_FRACTIONS` of its shorter side: the guess
    that the photo is a close-up of one face (a portrait cropped to the head). Only a proposal for
    the fallback, whose boxes the network checks (engine.verify); ``kind`` is ROI, so the boxes are
    crop rois as they are."""

    def __init__(self, fractions: Iterable[float] = CLOSE_UP_FRACTIONS) -> None:
        self.fractions = tuple(float(f) for f in fractions)
        if not self.fractions or not all(0.0 < f <= 1.0 for f in self.fractions):
            raise ValueError(f"close-up fractions must be in (0, 1], got {self.fractions}")

    def __call__(self, image: np.ndarray) -> list[FaceBox]:
        h, w = _check_image(image).shape[:2]
        cx, cy, short = w / 2, h / 2, min(h, w)
        halves = sorted((f * short / 2 for f in self.fractions), reverse=True)
        return [FaceBox(cx - r, cy - r, cx + r, cy + r) for r in halves]


class AllOf:
    """Every box of several detectors, largest first, without merging (the fallback's proposals:
    boxes that converge on one face are merged after the network's refinement)."""

    def __init__(self, *detectors: FaceDetector) -> None:
        self.detectors = detectors

    def __call__(self, image: np.ndarray) -> list[BoundingBox]:
        return sorted((b for d in self.detectors for b in d(image)), key=lambda b: -b.area)


def default_fallback_detector() -> FaceDetector:
    """The engine's default fallback: the relaxed cascades and the close-up boxes."""
    return AllOf(OpenCVCascadeDetector(min_neighbours=FALLBACK_MIN_NEIGHBOURS), CloseUpBoxes())


class FixedBoxDetector:
    """Returns the same boxes for every photo (known crops, tests); ``kind`` tells how to convert them."""

    def __init__(self, boxes: Iterable[BoundingBox], *, kind: str = ROI) -> None:
        self._boxes = tuple(FaceBox(b.left, b.top, b.right, b.bottom, b.score, kind) for b in boxes)

    def __call__(self, image: np.ndarray) -> list[FaceBox]:
        _check_image(image)
        return sorted(self._boxes, key=lambda b: -b.area)


def non_max_suppression(boxes: Iterable[FaceBox], *, overlap: float = NMS_OVERLAP) -> list[FaceBox]:
    """Keep one box per overlapping group, largest first.

    Frontal boxes win over profile ones (where both cascades found an AFLW2000 face, the converted
    frontal roi had IoU 0.77 with the true roi, the profile one 0.71), then the higher score wins.
    """
    rank = {FRONTAL: 0, PROFILE_LEFT: 1, PROFILE_RIGHT: 1, ROI: 2}
    ordered = sorted(boxes, key=lambda b: (rank[b.kind], -b.score, -b.area))
    return sorted((ordered[i] for i in keep_distinct(ordered, overlap=overlap)), key=lambda b: -b.area)


def keep_distinct(boxes_in_order: Sequence[BoundingBox], *, overlap: float = NMS_OVERLAP) -> list[int]:
    """Greedy suppression: indices of the boxes kept when each in turn is kept unless it overlaps an
    already kept one by more than ``overlap`` (:func:`overlap_of_smaller`). Best boxes first."""
    kept: list[int] = []
    for i, b in enumerate(boxes_in_order):
        if all(overlap_of_smaller(b, boxes_in_order[k]) <= overlap for k in kept):
            kept.append(i)
    return kept


def overlap_of_smaller(a: BoundingBox, b: BoundingBox) -> float:
    """Intersection area / the smaller box's area (0 when they do not touch)."""
    iw = min(a.right, b.right) - max(a.left, b.left)
    ih = min(a.bottom, b.bottom) - max(a.top, b.top)
    return 0.0 if iw <= 0 or ih <= 0 else iw * ih / min(a.area, b.area)


def roi_from_detection(box: BoundingBox, kind: str | None = None) -> BoundingBox:
    """The square crop roi for a detector box; ``kind`` defaults to ``box.kind`` for a :class:`FaceBox`."""
    kind = kind if kind is not None else getattr(box, "kind", None)
    if kind not in KINDS:
        raise ValueError(f"unknown detection kind {kind!r}; expected one of {KINDS}")
    side = max(box.width, box.height)
    cx, cy = box.center
    if kind == ROI:
        return BoundingBox(cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2, box.score)
    (dx, dy), s = (
        (ROI_FRONTAL_OFFSET, ROI_FRONTAL_SCALE) if kind == FRONTAL else (ROI_PROFILE_OFFSET, ROI_PROFILE_SCALE)
    )
    if kind == PROFILE_RIGHT:
        dx = -dx
    cx, cy, half = cx + dx * side, cy + dy * side, side * s / 2
    return BoundingBox(cx - half, cy - half, cx + half, cy + half, box.score)


_REGISTRY: dict[str, Callable[..., FaceDetector]] = {"opencv": OpenCVCascadeDetector, "fixed": FixedBoxDetector}


def register_detector(name: str, factory: Callable[..., FaceDetector]) -> None:
    """Make ``get_detector(name, **options)`` build detectors with ``factory(**options)``."""
    _REGISTRY[name] = factory


def available_detectors() -> tuple[str, ...]:
    return tuple(sorted(_REGISTRY))


def get_detector(name: str = "opencv", **options: object) -> FaceDetector:
    """Build a registered detector; e.g. ``get_detector("fixed", boxes=[box])``."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown detector {name!r}; available: {available_detectors()}")
    return _REGISTRY[name](**options)
