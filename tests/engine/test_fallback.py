"""The fallback detector and the network's check of its boxes (engine.face_search,
engine.verify), with the mean-face bundle: which boxes are kept is decided by stubbed checks here;
the shipped model's real checks are tested in test_e2e_default_model.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from arrays import assert_close
from mean_face import mean_face_keypoints
from synthetic import gradient_photo, locate

import engine.passes as passes
from engine.api import Reconstructor
from engine.detect import FALLBACK_MIN_NEIGHBOURS, AllOf, CloseUpBoxes, FixedBoxDetector, OpenCVCascadeDetector
from engine.passes import Refined
from engine.types import BoundingBox
from engine.verify import MAX_FLIP_DISAGREEMENT, flip_disagreement

ASYMMETRY_PCT = 0.02  # the mean face's own small left/right asymmetry in y adds this much to the sum
FACE_A, FACE_A_AGAIN = BoundingBox(100, 100, 200, 200), BoundingBox(104, 102, 204, 202)  # one face, two boxes
FACE_B = BoundingBox(400, 100, 460, 160)


class NeverCalled:
    def __call__(self, image):
        raise AssertionError("the fallback detector must not run here")


def _rec(bundle, monkeypatch, *, boxes, settled, disagreement, primary=()):
    """A reconstructor whose fallback proposes ``boxes``; its refinement leaves the rois as they are
    and reports ``settled``; the mirror check reports ``disagreement``."""
    rec = Reconstructor.from_bundle(
        bundle, detector=FixedBoxDetector(list(primary)), fallback_detector=FixedBoxDetector(boxes)
    )
    size = rec.bundle.input_size

    def refine(image, rois):
        return Refined(np.zeros((len(rois), size, size, 3), np.float32), [None] * len(rois), list(rois), list(settled))

    monkeypatch.setattr(rec.passes, "refine", refine)
    checked = [d for d, ok in zip(disagreement, settled) if ok]  # only settled boxes are checked

    def flip(model, crops, readout, amp_dtype):
        assert len(crops) == len(checked)
        return np.asarray(checked)

    monkeypatch.setattr(passes, "flip_disagreement", flip)
    return rec


def test_fallback_keeps_boxes_that_settled_and_agree_with_their_mirror(mean_face_bundle, monkeypatch):
    rec = _rec(
        mean_face_bundle,
        monkeypatch,
        boxes=[FACE_A, FACE_B, BoundingBox(300, 300, 380, 380)],
        settled=[True, False, True],
        disagreement=[1.0, 1.0, MAX_FLIP_DISAGREEMENT + 1],
    )
    _, _, rois = locate(rec, gradient_photo())
    assert rois == [FACE_A]


def test_fallback_counts_boxes_that_converged_on_one_face_once(mean_face_bundle, monkeypatch):
    rec = _rec(
        mean_face_bundle,
        monkeypatch,
        boxes=[FACE_A, FACE_A_AGAIN, FACE_B],
        settled=[True, True, True],
        disagreement=[2.0, 1.0, 3.0],
    )
    _, _, rois = locate(rec, gradient_photo())
    assert rois == [FACE_A_AGAIN, FACE_B]  # the more self-consistent of the pair; largest first
    _, _, largest = locate(rec, gradient_photo(), all_faces=False)
    assert largest == [FACE_A_AGAIN]


def test_nothing_confirmed_is_no_face(mean_face_bundle, monkeypatch):
    rec = _rec(mean_face_bundle, monkeypatch, boxes=[FACE_A], settled=[False], disagreement=[1.0])
    maps, transforms, rois = locate(rec, gradient_photo())
    assert maps.shape[0] == 0 and transforms == [] and rois == []
    assert rec(gradient_photo()) == []


def test_fallback_runs_only_when_the_detector_finds_nothing(mean_face_bundle):
    rec = Reconstructor.from_bundle(
        mean_face_bundle, detector=FixedBoxDetector([FACE_A]), fallback_detector=NeverCalled()
    )
    assert len(rec(gradient_photo())) == 1
    rec.search.detector = FixedBoxDetector([])
    assert rec(gradient_photo(), boxes=[]) == []  # given boxes replace detection: no fallback either


def test_default_fallback_only_with_the_default_detector(mean_face_bundle):
    default = Reconstructor.from_bundle(mean_face_bundle)
    assert isinstance(default.search.fallback_detector, AllOf)
    cascade, close_up = default.search.fallback_detector.detectors
    assert isinstance(cascade, OpenCVCascadeDetector) and cascade.min_neighbours == FALLBACK_MIN_NEIGHBOURS
    assert isinstance(close_up, CloseUpBoxes)
    assert Reconstructor.from_bundle(mean_face_bundle, detector=FixedBoxDetector([])).search.fallback_detector is None


class _Shifted(torch.nn.Module):
    """The mean-face model with every x moved right by ``dx`` crop px."""

    def __init__(self, inner: torch.nn.Module, dx: float) -> None:
        super().__init__()
        self.inner, self.dx = inner, dx

    def forward(self, x):
        return self.inner(x) + torch.tensor([self.dx, 0.0, 0.0]).view(1, 3, 1, 1)


def test_flip_disagreement_measures_in_percent_of_the_landmark_box(mean_face_bundle):
    """A model that ignores its input and is off by ``dx`` in x disagrees with its mirrored self by
    |2 (dx + e)| px at every landmark, e being the mean face's own offset from the mirror axis (under
    a pixel): the sum for ±dx is 4·dx whatever e is."""
    rec = Reconstructor.from_bundle(mean_face_bundle)
    size = rec.bundle.input_size
    crops = np.zeros((2, size, size, 3), np.uint8)
    kp = mean_face_keypoints(rec.layout)[:, :2]
    box = np.sqrt(np.prod(kp.max(axis=0) - kp.min(axis=0)))
    assert (flip_disagreement(rec.passes.model, crops, rec.passes.readout) < 2 * 1.0 / box * 100).all()  # |e| < 1 px
    dx = 3.0
    both = sum(flip_disagreement(_Shifted(rec.passes.model, d), crops, rec.passes.readout) for d in (dx, -dx))
    assert_close(both, [4 * dx / box * 100] * 2, ASYMMETRY_PCT, "disagreement of ±dx-shifted models")


def test_flip_disagreement_refuses_bad_crops(mean_face_bundle):
    rec = Reconstructor.from_bundle(mean_face_bundle)
    with pytest.raises(ValueError, match="crops"):
        flip_disagreement(rec.passes.model, np.zeros((0, 8, 8, 3), np.uint8), rec.passes.readout)


def test_close_up_boxes_are_centred_squares_of_the_shorter_side():
    boxes = CloseUpBoxes((0.5, 1.0))(np.zeros((300, 500, 3), np.uint8))
    assert [b.as_list() for b in boxes] == [[100, 0, 400, 300], [175, 75, 325, 225]]
    assert all(b.kind == "roi" for b in boxes)
    with pytest.raises(ValueError, match="fractions"):
        CloseUpBoxes((0.0,))


def test_all_of_pools_every_box_largest_first():
    small, large = BoundingBox(0, 0, 10, 10), BoundingBox(0, 0, 50, 50)
    pooled = AllOf(FixedBoxDetector([small]), FixedBoxDetector([large]))(np.zeros((64, 64, 3), np.uint8))
    assert [b.as_list() for b in pooled] == [large.as_list(), small.as_list()]
