"""Restarts of refinement from larger crops (engine.face_search) and the square boxes
they start from (engine.crop.scaled_roi). Refinement and the mirror check are stubbed here, so the
tests decide which crops look doubtful; the shipped model on a real partial-face box is tested in
test_e2e_default_model.py."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic import gradient_photo, locate

from engine.api import Reconstructor
from engine.crop import scaled_roi
from engine.detect import FixedBoxDetector
from engine.face_search import RESTART_DISAGREEMENT, RESTART_RATIO, RESTART_SCALES
from engine.options import ReconstructOptions
from engine.passes import Refined
from engine.types import BoundingBox
from engine.verify import MAX_FLIP_DISAGREEMENT

PART = BoundingBox(300, 200, 340, 240)  # a detector box on part of a face (square: roi boxes stay as given)
OTHER = BoundingBox(40, 40, 140, 140)  # a second, unrelated face


def _side(roi: BoundingBox) -> float:
    return max(roi.width, roi.height)


def _rec(bundle, monkeypatch, boxes, disagreement, settle=lambda roi: roi):
    """A reconstructor whose detector finds ``boxes``; refinement moves each crop to ``settle(roi)``
    and fills its map with the settled roi's side (so a map tells which crop it came from); the mirror
    check reports ``disagreement(roi)``. The crops refined and checked are recorded."""
    options = ReconstructOptions(turn_search=False, shift_average=False)
    rec = Reconstructor.from_bundle(bundle, options, detector=FixedBoxDetector(boxes), fallback_detector=None)
    size = rec.bundle.input_size
    rec.refined, rec.checked = [], []

    def refine(image, rois):
        rec.refined.append(list(rois))
        final = [settle(r) for r in rois]
        maps = np.stack([np.full((size, size, 3), _side(r), np.float32) for r in final])
        return Refined(maps, [f"transform of {r}" for r in final], final, [True] * len(rois))

    def mirror(image, rois):
        rec.checked.append(list(rois))
        return np.asarray([disagreement(r) for r in rois], np.float64)

    monkeypatch.setattr(rec.passes, "refine", refine)
    monkeypatch.setattr(rec.passes, "mirror_disagreement", mirror)
    return rec


def test_scaled_roi_is_a_square_about_the_same_centre():
    r = scaled_roi(PART, 2.0)
    assert r.center == pytest.approx(PART.center)
    assert r.width == pytest.approx(80) and r.height == pytest.approx(80)
    tall = scaled_roi(BoundingBox(0, 0, 10, 30), 1.5)
    assert (tall.width, tall.height, *tall.center) == pytest.approx((45, 45, 5, 15))  # 1.5 × the longer side
    with pytest.raises(ValueError, match="positive"):
        scaled_roi(PART, 0)


def test_a_doubtful_crop_restarts_from_larger_crops_and_the_most_self_consistent_wins(mean_face_bundle, monkeypatch):
    largest = scaled_roi(PART, max(RESTART_SCALES))
    rec = _rec(
        mean_face_bundle,
        monkeypatch,
        [PART],
        lambda r: RESTART_DISAGREEMENT - 1 if r == largest else RESTART_DISAGREEMENT + 2,
    )
    maps, transforms, rois = locate(rec, gradient_photo())
    assert rec.refined == [[PART], [scaled_roi(PART, f) for f in RESTART_SCALES]]
    assert rois == [largest] and transforms == [f"transform of {largest}"]
    assert maps.shape[0] == 1 and (maps[0] == _side(largest)).all()  # the map of the winning crop


def test_a_self_consistent_crop_is_not_restarted(mean_face_bundle, monkeypatch):
    rec = _rec(mean_face_bundle, monkeypatch, [PART], lambda r: RESTART_DISAGREEMENT - 0.5)
    _, _, rois = locate(rec, gradient_photo())
    assert rec.refined == [[PART]] and rois == [PART]


def test_restarts_that_agree_no_better_leave_the_first_crop(mean_face_bundle, monkeypatch):
    rec = _rec(mean_face_bundle, monkeypatch, [PART], lambda r: RESTART_DISAGREEMENT + _side(r))
    maps, _, rois = locate(rec, gradient_photo())
    assert len(rec.refined) == 2 and rois == [PART] and (maps[0] == _side(PART)).all()


def test_a_restart_still_doubtful_leaves_the_first_crop_even_when_it_agrees_better(mean_face_bundle, monkeypatch):
    """A less doubtful restart is not a confident one: the detector's own crop stays."""
    rec = _rec(mean_face_bundle, monkeypatch, [PART], lambda r: RESTART_DISAGREEMENT + 10 / _side(r))
    maps, _, rois = locate(rec, gradient_photo())
    assert len(rec.refined) == 2 and rois == [PART] and (maps[0] == _side(PART)).all()


@pytest.mark.parametrize(
    ("first", "restart", "wins"),
    [
        (30.0, 3.1, True),  # image03860: a first crop far off its mirror, a restart just above the threshold
        (MAX_FLIP_DISAGREEMENT + 1, 3.1, False),  # not RESTART_RATIO times better: the first crop stays
        (30.0, MAX_FLIP_DISAGREEMENT + 0.1, False),  # beyond the no-face bar: never taken on the ratio
    ],
)
def test_a_restart_far_better_than_a_far_off_first_crop_wins(mean_face_bundle, monkeypatch, first, restart, wins):
    assert RESTART_DISAGREEMENT < 3.1 < MAX_FLIP_DISAGREEMENT and RESTART_RATIO * 3.1 < 30.0
    largest = scaled_roi(PART, max(RESTART_SCALES))
    rec = _rec(mean_face_bundle, monkeypatch, [PART], lambda r: first if r == PART else restart + (r != largest))
    maps, _, rois = locate(rec, gradient_photo())
    assert rois == ([largest] if wins else [PART])
    assert (maps[0] == _side(rois[0])).all()


def test_only_doubtful_faces_restart(mean_face_bundle, monkeypatch):
    rec = _rec(
        mean_face_bundle,
        monkeypatch,
        [PART, OTHER],
        lambda r: RESTART_DISAGREEMENT - 1 if r == PART or _side(r) > _side(OTHER) else RESTART_DISAGREEMENT + 2,
    )
    _, _, rois = locate(rec, gradient_photo())
    assert rec.refined == [[OTHER, PART], [scaled_roi(OTHER, f) for f in RESTART_SCALES]]  # largest first
    assert rois == [scaled_roi(OTHER, RESTART_SCALES[0]), PART]  # ties: the smaller restart


def test_detections_that_converge_on_one_face_count_once(mean_face_bundle, monkeypatch):
    face = BoundingBox(280, 160, 380, 260)
    rec = _rec(mean_face_bundle, monkeypatch, [PART, face], lambda r: 1.0, settle=lambda r: face)
    maps, transforms, rois = locate(rec, gradient_photo())
    assert rois == [face] and len(transforms) == 1 and maps.shape[0] == 1


def test_without_refinement_nothing_is_checked_or_restarted(mean_face_bundle, monkeypatch):
    rec = _rec(mean_face_bundle, monkeypatch, [PART], lambda r: RESTART_DISAGREEMENT + 5)
    rec.passes.refine_crops = False
    _, _, rois = locate(rec, gradient_photo())
    assert rec.refined == [[PART]] and rec.checked == [] and rois == [PART]
