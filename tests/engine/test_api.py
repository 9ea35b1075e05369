"""The Reconstructor facade end to end, with the deterministic mean-face bundle (tests/conftest.py)."""

from __future__ import annotations

import numpy as np
import pytest
from arrays import assert_close
from mean_face import MEAN_FACE_INPUT, MEAN_FACE_PX_PER_MM, mean_face_keypoints, mean_face_surface
from synthetic import gradient_photo

from engine.api import Reconstructor
from engine.crop import CropTransform, roi_from_landmarks
from engine.detect import FixedBoxDetector, roi_from_detection
from engine.errors import InvalidOptionError
from engine.image_io import load_image, sample_photo_path
from engine.mesh import outer_border
from engine.passes import REFINE_MAX_PASSES
from engine.types import BoundingBox

POSITION_PX = 1e-2  # float32 round-off through crop → read-out → image frame
FRONTAL_DEG = 0.05  # the mean face is exactly frontal in its crop
FRONTAL_MM = 0.5  # the layout's outermost rows are extrapolated (engine.surface_readout), which bends the pose fit
BORDER_MM = 2.0  # the outer border's vertices sit on an outline smoothed by up to ≈1.7 layout px


@pytest.fixture(scope="module")
def rec(mean_face_bundle):
    return Reconstructor.from_bundle(mean_face_bundle)


def _expected(box: BoundingBox) -> np.ndarray:
    v = CropTransform.from_roi(box, MEAN_FACE_INPUT).to_image(mean_face_surface())
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
    inside = np.ones(n, bool)
    inside[outer_border(rec.layout)] = False  # the outer border sits on a smoothed outline
    canonical = rec.layout.canonical_vertices
    assert_close(f.frontal_vertices[inside], canonical[inside], FRONTAL_MM, "frontalised vs canonical (mm)")
    assert_close(f.frontal_vertices[~inside], canonical[~inside], BORDER_MM, "frontalised border (mm)")
    assert f.texture.shape == (512, 512, 3) and f.texture.dtype == np.uint8 and f.texture_mask.mean() > 0.3
    assert f.vertex_visibility.mean() > 0.95
    assert f.landmarks_2d.shape == (68, 2) and f.landmark_visibility.shape == (68,)
    assert ((f.uv >= 0) & (f.uv <= 1)).all()
    assert f.image_size == photo.shape[:2]


def test_refinement_recrops_on_the_first_pass_landmarks(spy_rec):
    """The second crop is √2 × the first pass's landmark box, around its centre."""
    box = roi_from_detection(BoundingBox(200, 120, 440, 360), "frontal")
    kp_crop = mean_face_keypoints(spy_rec.layout)
    first = CropTransform.from_roi(box, MEAN_FACE_INPUT).to_image(kp_crop)
    calls = _spy_network(spy_rec, lambda roi, m: m)
    spy_rec.passes.refine(gradient_photo(), [box])
    assert_close(calls[1][0].as_list(), roi_from_landmarks(first[:, :2]).as_list(), 1e-2, "second crop")


def _spy_network(rec, fake_map):
    """Replace ``rec.run_network`` by a fake whose map for a roi is ``fake_map(roi, mean_map)``;
    returns the list of roi lists it was called with."""
    size = rec.bundle.input_size
    mean_map = rec.passes.predict_maps(np.zeros((1, size, size, 3), np.uint8))[0]
    calls = []

    def run_network(image, rois):
        calls.append(list(rois))
        return np.stack([fake_map(r, mean_map) for r in rois]), [CropTransform.from_roi(r, size) for r in rois]

    rec.passes.run_network = run_network
    return calls


@pytest.fixture
def spy_rec(mean_face_bundle):
    return Reconstructor.from_bundle(mean_face_bundle)


def _anchored(spy_rec, anchor: BoundingBox):
    """A face fixed in the photo: the mean face as seen in the crop of ``anchor``, whatever the crop."""
    size = spy_rec.bundle.input_size
    anchor_t = CropTransform.from_roi(anchor, size)
    return lambda roi, m: CropTransform.from_roi(roi, size).to_crop(anchor_t.to_image(m)).astype(np.float32)


def test_refinement_stops_once_the_crop_settles(spy_rec):
    anchor = BoundingBox(220, 140, 420, 340)
    calls = _spy_network(spy_rec, _anchored(spy_rec, anchor))
    refined = spy_rec.passes.refine(gradient_photo(), [BoundingBox(150, 100, 450, 400)])
    settled = calls[1][0]  # the landmark roi of the face, reached by the second pass
    assert len(calls) == 2 and refined.settled == [True]
    assert_close(refined.rois[0].as_list(), settled.as_list(), 1e-6, "final roi")
    assert refined.maps.shape == (1, spy_rec.bundle.input_size, spy_rec.bundle.input_size, 3)


def test_refinement_follows_a_drifting_face_up_to_the_pass_limit(spy_rec):
    size = spy_rec.bundle.input_size
    drift = 0.1 * size  # crop px: the landmarks always sit 10 % of the crop right of where the last crop put them
    calls = _spy_network(spy_rec, lambda roi, m: m + np.array([drift, 0.0, 0.0], np.float32))
    spy_rec.passes.refine(gradient_photo(), [BoundingBox(150, 100, 450, 400)])
    assert len(calls) == REFINE_MAX_PASSES


def test_a_face_still_drifting_at_the_pass_limit_keeps_its_steadiest_crop(spy_rec):
    """A face fixed in the photo whose landmarks the network places further right on every pass
    (offsets of the crop side below); the crop never settles. Each crop's next crop moves by the
    growth of the offset, 0.10 / 0.06 / 0.03 / 0.08 / 0.10 from the second pass on, so the fourth
    pass's crop (0.03, still above REFINE_TOLERANCE) is kept, with its own map, not the last one."""
    size = spy_rec.bundle.input_size
    offsets = [0.0, 0.10, 0.16, 0.19, 0.27, 0.37]
    assert len(offsets) == REFINE_MAX_PASSES
    anchored = _anchored(spy_rec, BoundingBox(220, 140, 420, 340))
    returned = []

    def fake(roi, m):  # one face: called once per pass
        returned.append(anchored(roi, m) + np.array([offsets[len(returned)] * size, 0.0, 0.0], np.float32))
        return returned[-1]

    calls = _spy_network(spy_rec, fake)
    refined = spy_rec.passes.refine(gradient_photo(), [BoundingBox(150, 100, 450, 400)])
    assert len(calls) == REFINE_MAX_PASSES and refined.settled == [False]
    assert refined.rois == calls[3] and refined.transforms[0] == CropTransform.from_roi(calls[3][0], size)
    assert_close(refined.maps[0], returned[3], 0.0, "the fourth pass's map")


def test_settled_faces_are_not_run_again_and_refine_off_is_one_pass(spy_rec):
    anchor = BoundingBox(220, 140, 420, 340)
    anchored = _anchored(spy_rec, anchor)
    size = spy_rec.bundle.input_size
    drifting_box = BoundingBox(0, 0, 100, 100)

    def fake(roi, m):  # the face found near the origin drifts, the other one stays put
        if roi.center[0] < 200:
            return m + np.array([0.1 * size, 0.0, 0.0], np.float32)
        return anchored(roi, m)

    calls = _spy_network(spy_rec, fake)
    spy_rec.passes.refine(gradient_photo(), [BoundingBox(150, 100, 450, 400), drifting_box])
    assert [len(c) for c in calls[:2]] == [2, 2] and all(len(c) == 1 for c in calls[2:])
    assert len(calls) == REFINE_MAX_PASSES
    spy_rec.passes.refine_crops = False
    calls.clear()
    spy_rec.passes.refine(gradient_photo(), [drifting_box])
    assert len(calls) == 1


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
    for size in (128, 8192, 1024.0, True):
        with pytest.raises(InvalidOptionError, match="texture size"):
            rec(gradient_photo(), boxes=[BoundingBox(220, 140, 420, 340)], texture_size=size)


def test_stage_times_measure_every_stage(rec):
    rec(gradient_photo(), boxes=[BoundingBox(220, 140, 420, 340)], texture_size=256)
    times = rec.last_times.as_dict()
    assert list(times) == ["decode", "detect", "crop", "network", "geometry", "texture"]
    assert all(ms > 0 for ms in times.values()), times
    assert rec.last_times.total == pytest.approx(sum(times.values()))


def test_refinement_frames_each_crop_on_the_landmarks_it_reports(mean_face_bundle, monkeypatch):
    """Re-crops are drawn around the reported (shape-model-fitted) landmarks, not the raw read-out:
    with the reported points pinned, refinement moves to their roi and settles there."""
    rec = Reconstructor.from_bundle(mean_face_bundle)
    reported = np.zeros((68, 3))
    reported[:, 0] = np.linspace(200, 300, 68)
    reported[:, 1] = np.linspace(150, 270, 68)
    monkeypatch.setattr(rec.passes, "landmarks", lambda out_map, transform: reported)
    refined = rec.passes.refine(gradient_photo(), [BoundingBox(40, 40, 140, 140)])
    assert refined.rois == [roi_from_landmarks(reported[:, :2])] and refined.settled == [True]


def test_mouth_modes_and_the_head_pivot(rec):
    """``mouth`` picks the triangles (engine.mouth); the head pivot sits on the midline, at the level
    between nose and chin, behind the face (canonical mm, y down, z toward the camera)."""
    from engine.mouth import closed_triangles, open_triangles
    from engine.pose import frontalize

    box = [BoundingBox(220, 140, 420, 340)]
    closed = rec(gradient_photo(), boxes=box, texture_size=256)[0]
    opened = rec(gradient_photo(), boxes=box, texture_size=256, mouth="open")[0]
    assert closed.mouth == "closed" and closed.triangles is closed_triangles(rec.layout)
    assert opened.mouth == "open" and opened.triangles is open_triangles(rec.layout)
    with pytest.raises(InvalidOptionError, match="mouth"):
        rec(gradient_photo(), boxes=box, mouth="shut")
    lm = frontalize(closed.landmarks_3d, closed.pose)
    pivot = closed.head_pivot
    assert abs(pivot[0]) < 2.0 and lm[30, 1] < pivot[1] < lm[8, 1]
    assert pivot[2] < lm[30, 2] - 100.0  # over 10 cm behind the nose tip


@pytest.mark.parametrize(
    ("box", "text"),
    [
        ((700.0, 500.0, 800.0, 600.0), "outside"),  # right of and below the 640×480 photo
        ((-300.0, 10.0, -10.0, 200.0), "outside"),
        ((0.0, 0.0, 20000.0, 20000.0), "more than"),
    ],
)
def test_a_given_box_off_the_photo_is_refused_not_turned_into_a_face(rec, box, text):
    with pytest.raises(InvalidOptionError, match=text):
        rec(gradient_photo(), boxes=[BoundingBox(*box)], texture_size=256)


def test_a_given_box_cut_by_the_photos_edge_still_reconstructs(rec):
    (face,) = rec(gradient_photo(), boxes=[BoundingBox(-40, 140, 160, 340)], texture_size=256)
    assert face.vertices.shape[0] == rec.layout.n_vertices


@pytest.fixture(scope="module")
def shipped():
    return Reconstructor.from_bundle()  # flip and shift averaging on


def test_preview_quality_skips_shift_averaging(shipped):
    rec = shipped
    photo = load_image(sample_photo_path())
    full = rec(photo, all_faces=False, texture_size=256)[0]
    full_images = rec.passes.images
    preview = rec(photo, all_faces=False, texture_size=256, quality="preview")[0]
    assert full_images - rec.passes.images == 8  # four shifted crops, each with its mirror image
    assert np.abs(preview.landmarks_3d - full.landmarks_3d).max() < 5.0  # px: the same face
    with pytest.raises(InvalidOptionError, match="quality"):
        rec(photo, quality="draft")


def test_the_mirror_check_of_a_flip_averaged_crop_runs_no_network(shipped):
    rec = shipped
    photo = load_image(sample_photo_path())
    roi = BoundingBox(140.0, 40.0, 310.0, 210.0)
    rec.passes.run_network(photo, [roi])
    before = rec.passes.images
    remembered = rec.passes.mirror_disagreement(photo, [roi])
    assert rec.passes.images == before
    rec.passes.forget()
    computed = rec.passes.mirror_disagreement(photo, [roi])
    assert rec.passes.images == before + 2
    np.testing.assert_allclose(remembered, computed, atol=1e-3)


def test_a_given_roi_is_the_crop_itself_run_once(rec):
    roi = BoundingBox(230.0, 150.0, 410.0, 330.0)
    (face,) = rec(gradient_photo(), boxes=[roi], box_kind="roi", texture_size=256)
    assert face.box.as_list() == roi.as_list()  # not converted, not settled
    assert rec.passes.images == 1  # one pass (the mean-face bundle averages nothing)
    assert_close(face.vertices, _expected(roi), POSITION_PX, "the mean face in the given crop")
    (settled,) = rec(gradient_photo(), boxes=[roi], texture_size=256)  # a face box: converted and settled
    assert settled.box.as_list() != roi.as_list()
    with pytest.raises(InvalidOptionError, match="box kind"):
        rec(gradient_photo(), boxes=[roi], box_kind="square")


def test_given_rois_score_what_the_benchmark_protocol_scores(shipped, shared_data):
    """``reconstruct --boxes ROIS --box-kind roi`` gives the landmarks ``training evaluate`` scores."""
    folder = shared_data / "aflw2000_dev"
    names = (folder / "list.txt").read_text().split()
    rois = np.load(folder / "roi_box.npy")
    rec = shipped
    for i in (0, 400, 998):
        image = load_image(folder / names[i])
        roi = BoundingBox(*map(float, rois[i]))
        (face,) = rec(image, boxes=[roi], box_kind="roi", texture_size=256)  # sets full quality's averaging
        maps, transforms = rec.passes.run_network(image, [roi])
        maps = rec.passes.average_shifted_crops(image, maps, transforms)
        protocol = rec.passes.landmarks(maps[0], transforms[0])
        # x, y as scored; the face's z is moved to put the surface's nearest point at 0
        np.testing.assert_allclose(face.landmarks_3d[:, :2], protocol[:, :2], atol=1e-3)
