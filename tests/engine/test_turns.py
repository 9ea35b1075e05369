"""Quarter-turn search (engine.turns, Reconstructor.locate): the frame maps on synthetic pixels first,
then a face that the detector finds only in the turned photo, with the deterministic mean-face bundle."""

from __future__ import annotations

import numpy as np
import pytest
from arrays import assert_close
from synthetic import gradient_photo

from engine.api import Reconstructor
from engine.crop import CropTransform
from engine.detect import FixedBoxDetector
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


class UprightOnly:
    """Finds ``box`` only in portrait photos: a landscape photo is 'a face lying on its side'."""

    def __init__(self, box: BoundingBox) -> None:
        self.inner, self.calls = FixedBoxDetector([box]), []

    def __call__(self, image):
        self.calls.append(image.shape[:2])
        return self.inner(image) if image.shape[0] > image.shape[1] else []


FACE_IN_TURNED = BoundingBox(60, 150, 260, 350)


def test_a_face_found_only_turned_comes_back_in_the_photo_frame(mean_face_bundle):
    photo = gradient_photo(240, 400)  # landscape: the detector sees a face only after a quarter turn
    h, w = photo.shape[:2]
    detector = UprightOnly(FACE_IN_TURNED)
    (face,) = Reconstructor.from_bundle(mean_face_bundle, detector=detector)(photo, texture_size=256)
    assert detector.calls == [(h, w), (w, h)]  # upright first, then the first quarter turn (k = 1)
    plain = Reconstructor.from_bundle(mean_face_bundle, detector=UprightOnly(FACE_IN_TURNED), turn_search=False)
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
    off = Reconstructor.from_bundle(mean_face_bundle, detector=detector, turn_search=False)
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

    def disagreement(image, rois):  # the first turn (k = 1: the photo's red top-right corner first) is doubtful
        first_turn = image[0, 0, 0] > image[0, 0, 1]
        return np.full(len(rois), MAX_FLIP_DISAGREEMENT + 1.0 if first_turn else 0.0)

    monkeypatch.setattr(rec, "mirror_disagreement", disagreement)
    (face,) = rec(photo, texture_size=256)
    (ref,) = Reconstructor.from_bundle(mean_face_bundle, detector=UprightOnly(FACE_IN_TURNED), turn_search=False)(
        turn_image(photo, 3), texture_size=256
    )
    assert face.box == box_from_turned(ref.box, 3, (h, w))
    assert_close(face.landmarks_3d, from_turned(ref.landmarks_3d, 3, (h, w)), POSITION_PX, "landmarks")
