"""Face detection: the cascade finds the sample face and nothing in noise; registry; roi conversion."""

from __future__ import annotations

import numpy as np
import pytest

from engine import detect
from engine.crop import roi_from_landmarks
from engine.detect import FaceBox, FixedBoxDetector, OpenCVCascadeDetector, get_detector, roi_from_detection
from engine.image_io import load_image, sample_photo_path
from engine.types import BoundingBox
from training.metrics import box_iou

# The astronaut's face, read by eye off the 512×512 sample (px): hairline to chin, ear to ear, and
# the extent of the 68 landmarks (jaw line, brows, chin) that defines the protocol's crop roi.
FACE_REGION = BoundingBox(175, 60, 275, 175)
LANDMARK_REGION = BoundingBox(182, 95, 275, 175)
CENTRE_TOL = 25  # px: cascade boxes wander this much around the face centre
SIZE_RANGE = (70, 150)  # px: plausible side of a cascade box for that face
MIN_ROI_IOU = 0.6  # converted roi vs the roi of LANDMARK_REGION (dev-set mean for frontal faces: 0.80)


@pytest.fixture(scope="module")
def detector() -> OpenCVCascadeDetector:
    return OpenCVCascadeDetector()


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return load_image(sample_photo_path())


def test_sample_photo_has_one_face(detector: OpenCVCascadeDetector, photo: np.ndarray) -> None:
    faces = detector(photo)
    assert len(faces) == 1, faces
    face = faces[0]
    assert face.kind == detect.FRONTAL
    assert np.hypot(*np.subtract(face.center, FACE_REGION.center)) < CENTRE_TOL
    assert SIZE_RANGE[0] < face.width < SIZE_RANGE[1]
    roi = roi_from_detection(face)
    assert roi.width == pytest.approx(roi.height)
    corners = np.array([[LANDMARK_REGION.left, LANDMARK_REGION.top], [LANDMARK_REGION.right, LANDMARK_REGION.bottom]])
    assert box_iou(roi, roi_from_landmarks(corners)) > MIN_ROI_IOU


def test_mirrored_photo_gives_mirrored_box(detector: OpenCVCascadeDetector, photo: np.ndarray) -> None:
    (face,) = detector(photo)
    (mirrored,) = detector(np.ascontiguousarray(photo[:, ::-1]))
    assert abs((photo.shape[1] - mirrored.center[0]) - face.center[0]) < CENTRE_TOL / 2
    assert abs(mirrored.center[1] - face.center[1]) < CENTRE_TOL / 2


@pytest.mark.parametrize("seed", [0, 1])
def test_no_face_gives_empty_list(detector: OpenCVCascadeDetector, seed: int) -> None:
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    assert detector(noise) == []
    assert detector(np.full((300, 200, 3), 128, np.uint8)) == []


def test_rejects_non_rgb(detector: OpenCVCascadeDetector) -> None:
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8.*\(10, 10\)"):
        detector(np.zeros((10, 10), np.uint8))


def test_fixed_box_detector_returns_given_boxes() -> None:
    small, large = BoundingBox(0, 0, 10, 10, 0.5), BoundingBox(5, 5, 50, 60)
    found = FixedBoxDetector([small, large])(np.zeros((64, 64, 3), np.uint8))
    assert [b.as_list() for b in found] == [large.as_list(), small.as_list()]  # largest first
    assert found[1].score == 0.5 and all(b.kind == detect.ROI for b in found)
    assert roi_from_detection(found[1]).as_list() == small.as_list()  # roi boxes pass through


def test_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(detect, "_REGISTRY", dict(detect._REGISTRY))  # registrations end with the test
    assert {"opencv", "fixed"} <= set(detect.available_detectors())
    box = BoundingBox(1, 2, 3, 4)
    assert get_detector("fixed", boxes=[box])(np.zeros((8, 8, 3), np.uint8))[0].as_list() == box.as_list()
    with pytest.raises(ValueError, match="unknown detector 'nope'"):
        get_detector("nope")
    detect.register_detector("empty", lambda: lambda image: [])
    assert get_detector("empty")(np.zeros((8, 8, 3), np.uint8)) == []


def test_roi_conversion_rules() -> None:
    left = FaceBox(100, 100, 200, 200, 5.0, detect.PROFILE_LEFT)
    right = FaceBox(100, 100, 200, 200, 5.0, detect.PROFILE_RIGHT)
    a, b = roi_from_detection(left), roi_from_detection(right)
    assert a.center[0] - 150 == pytest.approx(150 - b.center[0])  # profile offsets mirror
    assert a.center[1] == pytest.approx(b.center[1]) and a.width == pytest.approx(b.width)
    frontal = roi_from_detection(BoundingBox(100, 100, 200, 200), detect.FRONTAL)
    assert frontal.width == pytest.approx(100 * detect.ROI_FRONTAL_SCALE)
    with pytest.raises(ValueError, match="unknown detection kind None"):
        roi_from_detection(BoundingBox(0, 0, 1, 1))  # a plain box needs its kind
    with pytest.raises(ValueError, match="unknown detection kind 'side'"):
        FaceBox(0, 0, 1, 1, 1.0, "side")


def test_keep_distinct_keeps_the_first_of_each_overlapping_group():
    """Order is rank: a later box inside a kept one goes (overlap of the smaller box), touching boxes stay."""
    from engine.detect import NMS_OVERLAP, keep_distinct

    big = BoundingBox(0, 0, 100, 100)
    inside = BoundingBox(10, 10, 50, 50)  # wholly inside big: overlap 1 of the smaller
    apart = BoundingBox(200, 0, 260, 60)
    grazing = BoundingBox(95, 0, 155, 60)  # 5 × 60 of its 60 × 60: overlap 1/12
    assert 1 / 12 <= NMS_OVERLAP
    assert keep_distinct([big, inside, apart, grazing]) == [0, 2, 3]
    assert keep_distinct([inside, big, apart]) == [0, 2]  # the first one wins, whatever its size
    assert keep_distinct([]) == []
