"""The Reconstructor facade end to end, with the deterministic mean-face bundle (tests/conftest.py)."""

from __future__ import annotations

import numpy as np
import pytest
from arrays import assert_close
from mean_face import MEAN_FACE_INPUT, MEAN_FACE_PX_PER_MM, mean_face_crop, mean_face_keypoints
from synthetic import gradient_photo

from engine.api import Reconstructor
from engine.crop import CropTransform, roi_from_landmarks
from engine.detect import FixedBoxDetector, roi_from_detection
from engine.types import BoundingBox

POSITION_PX = 1e-2  # float32 round-off through crop → read-out → image frame
FRONTAL_DEG = 0.05  # the mean face is exactly frontal in its crop
FRONTAL_MM = 1e-2


@pytest.fixture(scope="module")
def rec(mean_face_bundle):
    return Reconstructor.from_bundle(mean_face_bundle, device="cpu")


def _expected(box: BoundingBox) -> np.ndarray:
    v = CropTransform.from_roi(box, MEAN_FACE_INPUT).to_image(mean_face_crop())
    v[:, 2] -= v[:, 2].min()
    return v


def test_reconstruction_matches_closed_form(rec):
    photo = gradient_photo()
    faces = rec(photo, boxes=[BoundingBox(220, 140, 420, 340)], texture_size=512)
    assert len(faces) == 1
    f = faces[0]
    n = rec.layout.n_vertices
    assert f.vertices.shape == (n, 3) and f.uv.shape == (n, 2) and f.triangles.shape[1] == 3
    assert_close(f.vertices, _expected(f.box), POSITION_PX, "vertices vs the mean face in the final roi")
    assert abs(f.pose.yaw) < FRONTAL_DEG and abs(f.pose.pitch) < FRONTAL_DEG and abs(f.pose.roll) < FRONTAL_DEG
    px_per_mm = MEAN_FACE_PX_PER_MM / CropTransform.from_roi(f.box, MEAN_FACE_INPUT).scale
    assert f.pose.scale == pytest.approx(px_per_mm, rel=1e-4)
    assert_close(f.frontal_vertices, rec.layout.canonical_vertices, FRONTAL_MM, "frontalised vs canonical (mm)")
    assert f.texture.shape == (512, 512, 3) and f.texture.dtype == np.uint8 and f.texture_mask.mean() > 0.5
    assert f.vertex_visibility.mean() > 0.95
    assert f.landmarks_2d.shape == (68, 2) and f.landmark_visibility.shape == (68,)
    assert ((f.uv >= 0) & (f.uv <= 1)).all()
    assert f.image_size == photo.shape[:2]


def test_refinement_recrops_on_the_first_pass_landmarks(rec):
    """The final roi is √2 × the first pass's landmark box, around its centre."""
    box = BoundingBox(200, 120, 440, 360)
    f = rec(gradient_photo(), boxes=[box])[0]
    kp_crop = mean_face_keypoints(rec.layout)
    first = CropTransform.from_roi(roi_from_detection(box, "frontal"), MEAN_FACE_INPUT).to_image(kp_crop)
    expected = roi_from_landmarks(first[:, :2])
    assert_close(f.box.as_list(), expected.as_list(), 1e-2, "final roi vs first-pass landmark roi")


def test_no_face_is_an_empty_list(mean_face_bundle):
    r = Reconstructor.from_bundle(mean_face_bundle, detector=FixedBoxDetector([]))
    assert r(np.zeros((64, 64, 3), np.uint8)) == []


def test_all_faces_and_largest_only(rec):
    boxes = [BoundingBox(20, 20, 220, 220), BoundingBox(300, 100, 600, 400)]
    assert len(rec(gradient_photo(), boxes=boxes)) == 2
    assert len(rec(gradient_photo(), boxes=boxes, all_faces=False)) == 1


def test_tiny_face_still_gives_a_mesh(rec):
    f = rec(gradient_photo(), boxes=[BoundingBox(300, 200, 316, 216)])
    assert len(f) == 1 and np.isfinite(f[0].vertices).all()


def test_texture_size_bounds(rec):
    with pytest.raises(ValueError, match="256"):
        rec(gradient_photo(), boxes=[BoundingBox(220, 140, 420, 340)], texture_size=128)
