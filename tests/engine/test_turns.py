"""Quarter-turn search (engine.turns, engine.face_search): the frame maps on synthetic pixels first,
then a face that the detector finds only in the turned photo, with the deterministic mean-face bundle."""

from __future__ import annotations

import numpy as np
import pytest
from arrays import assert_close
from synthetic import gradient_photo

from engine.api import Reconstructor
from engine.crop import CropTransform
from engine.detect import FixedBoxDetector, overlap_of_smaller
from engine.face_search import RESTART_DISAGREEMENT, restart_wins
from engine.options import ReconstructOptions
from engine.passes import Refined
from engine.turns import QUARTER_TURNS, TurnedCrop, box_from_turned, from_turned, to_turned, turn_image
from engine.types import BoundingBox
from engine.verify import MAX_FLIP_DISAGREEMENT

POSITION_PX = 1e-3  # float64 round trips and float32 vertices at photo scale
TEXTURE_LEVELS = 1  # the same photo pixels sampled at the same points; uint8 rounding only
VISIBILITY_AGREEMENT = 0.99  # measured 0.9966 (vertices) and 0.9977 (texels) on this photo
ROLL_DEG = 0.5


@pytest.mark.parametrize("k", QUARTER_TURNS)
def test_points_follow_the_pixels_of_the_turned_photo(k):
    h, w = 30, 50  # not square: H and W must not be mixed up
    rng = np.random.default_rng(k)
    for x, y in rng.integers(0, [w, h], size=(20, 2)):
        photo = np.zeros((h, w), np.uint8)
        photo[y, x] = 255
        turned = turn_image(photo, k)
        ty, tx = np.argwhere(turned == 255)[0]
        assert_close(to_turned(np.array([x, y, 7.0]), k, (h, w)), np.array([tx, ty, 7.0]), 0.0, "pixel")
        assert_close(from_turned(np.array([tx, ty]), k, (h, w)), np.array([x, y]), 0.0, "back")


@pytest.mark.parametrize("k", QUARTER_TURNS)
def test_a_quarter_turn_keeps_the_winding(k):
    tri = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 5.0]])
    turned = to_turned(tri, k, (40, 60))
    signed_area = lambda t: np.cross(t[1] - t[0], t[2] - t[0])  # noqa: E731
    assert np.sign(signed_area(turned)) == np.sign(signed_area(tri))


def test_turned_crop_round_trips_and_boxes_turn_back():
    t = TurnedCrop(CropTransform(left=12.5, top=-3.0, scale=0.8, size=128), k=3, photo_hw=(300, 200))
    p = np.random.default_rng(0).uniform(0, 200, size=(50, 3))
    assert_close(t.to_image(t.to_crop(p)), p, 1e-9, "round trip")
    box = box_from_turned(BoundingBox(10, 20, 110, 120, score=0.7), 1, (300, 200))
    assert box.as_list() == [200 - 1 - 120, 10, 200 - 1 - 20, 110] and box.score == 0.7
    with pytest.raises(ValueError, match="quarter turns"):
        to_turned(p, 2, (300, 200))


def _first_turn(image) -> bool:
    """Is this :func:`gradient_photo` turned k = 1 (counter-clockwise)? Its red top-right corner is then first."""
    return bool(image[0, 0, 0] > image[0, 0, 1])


class UprightOnly:
    """Finds ``box`` only in portrait photos: a landscape photo is 'a face lying on its side'; with
    ``first_turn_only``, only in the landscape :func:`gradient_photo` turned counter-clockwise."""

    def __init__(self, box: BoundingBox, *, first_turn_only: bool = False) -> None:
        self.inner, self.calls, self.first_turn_only = FixedBoxDetector([box]), [], first_turn_only

    def __call__(self, image):
        self.calls.append(image.shape[:2])
        portrait = image.shape[0] > image.shape[1]
        return self.inner(image) if portrait and (_first_turn(image) or not self.first_turn_only) else []


FACE_IN_TURNED = BoundingBox(60, 150, 260, 350)


def test_a_face_found_only_turned_comes_back_in_the_photo_frame(mean_face_bundle):
    photo = gradient_photo(240, 400)  # landscape: the detector sees a face only after a quarter turn
    h, w = photo.shape[:2]
    detector = UprightOnly(FACE_IN_TURNED, first_turn_only=True)
    (face,) = Reconstructor.from_bundle(mean_face_bundle, detector=detector)(photo, texture_size=256)
    assert detector.calls == [(h, w), (w, h), (w, h)]  # upright first, then a quarter turn each way
    plain = Reconstructor.from_bundle(
        mean_face_bundle, detector=UprightOnly(FACE_IN_TURNED), options=ReconstructOptions(turn_search=False)
    )
    (ref,) = plain(turn_image(photo, 1), texture_size=256)  # the same face, reconstructed in the turned photo
    assert face.image_size == (h, w)
    assert face.box == box_from_turned(ref.box, 1, (h, w))
    assert_close(face.vertices, from_turned(ref.vertices, 1, (h, w)), POSITION_PX, "vertices")
    assert_close(face.landmarks_3d, from_turned(ref.landmarks_3d, 1, (h, w)), POSITION_PX, "landmarks")
    assert_close(face.frontal_vertices, ref.frontal_vertices, 1e-3, "frontal vertices (mm)")
    # a face upright in the photo turned counter-clockwise lies turned clockwise in the photo: roll +90°
    assert abs(((face.pose.roll - ref.pose.roll - 90.0) + 180.0) % 360.0 - 180.0) < ROLL_DEG
    # visibility is rasterised on the photo's pixel grid, which the turn changes: a few edge vertices
    # (and the texels they cover) flip; everything both call visible is the same photo pixels
    assert (face.vertex_visibility == ref.vertex_visibility).mean() > VISIBILITY_AGREEMENT
    assert (face.texture_mask == ref.texture_mask).mean() > VISIBILITY_AGREEMENT
    both = face.texture_mask & ref.texture_mask
    differ = np.abs(face.texture.astype(int) - ref.texture.astype(int)).max(axis=-1) > TEXTURE_LEVELS
    assert (differ & both).sum() <= 1e-3 * both.sum()


def test_no_turn_search_when_upright_finds_a_face_or_boxes_are_given_or_it_is_off(mean_face_bundle):
    portrait = gradient_photo(400, 240)
    detector = UprightOnly(FACE_IN_TURNED)
    rec = Reconstructor.from_bundle(mean_face_bundle, detector=detector)
    assert len(rec(portrait, texture_size=256)) == 1 and len(detector.calls) == 1
    landscape = gradient_photo(240, 400)
    detector.calls.clear()
    assert rec(landscape, boxes=[], texture_size=256) == [] and detector.calls == []
    off = Reconstructor.from_bundle(mean_face_bundle, detector=detector, options=ReconstructOptions(turn_search=False))
    assert off(landscape, texture_size=256) == [] and len(detector.calls) == 1


def test_a_photo_without_a_face_is_searched_three_ways_and_stays_empty(mean_face_bundle):
    shapes = []
    rec = Reconstructor.from_bundle(mean_face_bundle, detector=lambda image: shapes.append(image.shape[:2]) or [])
    assert rec(gradient_photo(240, 400)) == []
    assert shapes == [(240, 400), (400, 240), (400, 240)]  # upright, a quarter turn each way


def test_a_turn_whose_face_disagrees_with_its_mirror_is_passed_over(mean_face_bundle, monkeypatch):
    """The detector boxes a 'face' in both turns; the first turn's crop fails the network's mirror
    check (an upside-down face can still draw a cascade box), so the face comes from the second."""
    photo = gradient_photo(240, 400)
    h, w = photo.shape[:2]
    rec = Reconstructor.from_bundle(mean_face_bundle, detector=UprightOnly(FACE_IN_TURNED))

    def disagreement(image, rois):  # the first turn (k = 1) is doubtful
        return np.full(len(rois), MAX_FLIP_DISAGREEMENT + 1.0 if _first_turn(image) else 0.0)

    monkeypatch.setattr(rec.passes, "mirror_disagreement", disagreement)
    (face,) = rec(photo, texture_size=256)
    (ref,) = Reconstructor.from_bundle(
        mean_face_bundle, detector=UprightOnly(FACE_IN_TURNED), options=ReconstructOptions(turn_search=False)
    )(turn_image(photo, 3), texture_size=256)
    assert face.box == box_from_turned(ref.box, 3, (h, w))
    assert_close(face.landmarks_3d, from_turned(ref.landmarks_3d, 3, (h, w)), POSITION_PX, "landmarks")


def test_of_two_turns_that_both_confirm_a_face_the_one_agreeing_better_wins(mean_face_bundle, monkeypatch):
    """Both turns box a face under the no-face bar; the second agrees with its mirror far better
    (AFLW2000-3D image02214: 3.2 % one way, 0.9 % the other), so its face is kept."""
    photo = gradient_photo(240, 400)
    rec = Reconstructor.from_bundle(mean_face_bundle, detector=UprightOnly(FACE_IN_TURNED))
    monkeypatch.setattr(
        rec.passes, "mirror_disagreement", lambda image, rois: np.full(len(rois), 3.2 if _first_turn(image) else 0.9)
    )
    assert [t.k for t in rec.search.find(photo).transforms] == [3]


SQUARE = 400
CENTRE_BOX = BoundingBox(120, 120, 280, 280)  # the same box in the square photo and in both of its quarter turns


def _centre_face_rec(bundle, monkeypatch, upright: float, first_turn: float, second_turn: float):
    """A square photo whose centre box the detector finds upright and in both turns (``rec.calls``
    counts its searches) and refinement leaves in place; the mirror check reports ``upright`` /
    ``first_turn`` (k = 1) / ``second_turn`` (k = 3) percent."""
    calls = []
    inner = FixedBoxDetector([CENTRE_BOX])
    rec = Reconstructor.from_bundle(bundle, detector=lambda image: calls.append(image.shape) or inner(image))
    rec.calls = calls

    def disagreement(image, rois):  # k = 3 puts the photo's green bottom-left corner first
        d = first_turn if _first_turn(image) else (second_turn if image[0, 0, 1] > image[0, 0, 0] else upright)
        return np.full(len(rois), d)

    def refine_in_place(image, rois):  # the mean face would pull every crop elsewhere; keep them where they are
        maps, transforms = rec.passes.run_network(image, rois)
        return Refined(maps, transforms, list(rois), [True] * len(rois))

    monkeypatch.setattr(rec.passes, "mirror_disagreement", disagreement)
    monkeypatch.setattr(rec.passes, "refine", refine_in_place)
    return rec


def test_a_doubtful_face_is_replaced_by_a_face_found_turned_on_the_same_spot(mean_face_bundle, monkeypatch):
    """A face lying on its side can draw a cascade box upright that is not it (image04024: 15.8 %
    upright, 4.2 % turned): the better turned face passes the restarts' rule and replaces it."""
    rec = _centre_face_rec(mean_face_bundle, monkeypatch, upright=15.0, first_turn=4.5, second_turn=4.0)
    found = rec.search.find(gradient_photo(SQUARE, SQUARE))
    transforms, rois = found.transforms, found.rois
    assert len(rec.calls) == 3  # upright, then a quarter turn each way
    assert len(rois) == 1 and isinstance(transforms[0], TurnedCrop) and transforms[0].k == 3
    assert overlap_of_smaller(rois[0], CENTRE_BOX) > 0.5  # in the photo's own frame


@pytest.mark.parametrize(
    ("upright", "turned", "searched", "replaced"),
    [
        (RESTART_DISAGREEMENT - 1.0, 0.5, False, False),  # a confident upright face: no turned search
        (15.0, MAX_FLIP_DISAGREEMENT + 1.0, True, False),  # the turned face fails the no-face bar
        (4.0, RESTART_DISAGREEMENT - 0.5, True, True),  # a confident turned face
        (4.0, 3.5, True, False),  # merely less doubtful: not RESTART_RATIO times better
    ],
)
def test_a_turned_face_replaces_an_upright_one_only_by_the_restart_rule(
    mean_face_bundle, monkeypatch, upright, turned, searched, replaced
):
    assert replaced == (searched and restart_wins(turned, upright))
    rec = _centre_face_rec(mean_face_bundle, monkeypatch, upright=upright, first_turn=turned, second_turn=turned)
    found = rec.search.find(gradient_photo(SQUARE, SQUARE))
    transforms, rois = found.transforms, found.rois
    assert len(rois) == 1 and len(rec.calls) == (3 if searched else 1)
    assert isinstance(transforms[0], TurnedCrop) == replaced


def test_without_refinement_an_upright_face_is_not_checked_or_turned(mean_face_bundle, monkeypatch):
    rec = _centre_face_rec(mean_face_bundle, monkeypatch, upright=15.0, first_turn=0.5, second_turn=0.5)
    rec.passes.refine_crops = False
    found = rec.search.find(gradient_photo(SQUARE, SQUARE))
    transforms, rois = found.transforms, found.rois
    assert len(rois) == 1 and len(rec.calls) == 1 and not isinstance(transforms[0], TurnedCrop)
