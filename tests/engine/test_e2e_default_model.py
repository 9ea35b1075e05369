"""End to end with the shipped model: the sample photo → a face where the face is.

The astronaut portrait (engine/data/astronaut.jpg, 512²) has her eyes at about (204, 100) and
(246, 100) px and the nose tip at about (224, 122) px, read off the photo by hand; she faces the camera.
"""

from __future__ import annotations

import numpy as np
import pytest
from synthetic import locate
from tolerances import MESH_BORDER_ROUGHNESS, MESH_NORMAL_DEVIATION_DEG, SEAM_RATIO_MAX

from engine.bundle import default_bundle_path
from engine.image_io import sample_photo_path

EYE_RIGHT, EYE_LEFT, NOSE_TIP = (204.0, 100.0), (246.0, 100.0), (224.0, 122.0)  # image px (x, y)
LANDMARK_PX = 8.0  # ≈ 20 % of the 40 px eye distance: hand-read positions plus model error
FRONTAL_MAX_DEG = 20.0
TURNED_LANDMARK_PX = 0.5  # measured 0.00: the search turns the photo back upright, the same pixels
TURNED_ROLL_DEG = 1.0
PROFILE_PHOTO = "image03872.jpg"  # |yaw| 80° in the benchmark's ground truth
PROFILE_MIN_YAW = 60.0
LANDMARK_OFF_MESH_PX = 3.0  # landmark to nearest mesh vertex (vertex spacing ≈ 0.5 px here), 7 % of the eye distance


@pytest.fixture(scope="module")
def face():
    if not (default_bundle_path() / "bundle.json").is_file():
        pytest.skip("no default model bundle in weights/default")
    from engine.api import Reconstructor

    faces = Reconstructor.from_bundle()(sample_photo_path(), texture_size=512)
    assert len(faces) == 1
    return faces[0]


def test_landmarks_on_the_face(face):
    lm = face.landmarks_2d
    assert np.linalg.norm(lm[36:42].mean(0) - EYE_RIGHT) < LANDMARK_PX
    assert np.linalg.norm(lm[42:48].mean(0) - EYE_LEFT) < LANDMARK_PX
    assert np.linalg.norm(lm[30] - NOSE_TIP) < LANDMARK_PX


def test_landmarks_are_fitted_to_the_shape_model_and_stay_on_the_mesh(face):
    """The shipped bundle regularises its landmarks (engine.shape_model); the fit moves them off the
    network's surface by about a pixel (measured: median 0.4, max 1.3 px), so empties sit on the mesh."""
    from scipy.spatial import cKDTree

    from engine.bundle import load_bundle

    assert load_bundle(default_bundle_path()).landmark_model is not None
    gap, _ = cKDTree(face.vertices).query(face.landmarks_3d)
    assert gap.max() < LANDMARK_OFF_MESH_PX


def test_the_surface_is_clean(face):
    """The artist-ready bars (engine.mesh_quality) on a real photo: no collapsed triangles, no spikes,
    smooth shading, a smooth outline (before engine.surface_readout: 326, 14, 1.80°, 1.39). Measured on
    the layout's grid triangles, the surface itself: the default closed mouth adds a strip across the
    lips, whose edges on this smiling photo span the open mouth (engine.mouth)."""
    from engine.layout import default_layout
    from engine.mesh_quality import boundary_loops, measure_mesh

    q = measure_mesh(face.vertices, default_layout().triangles)
    assert q.zero_area_triangles == 0 and q.long_edges == 0
    assert q.normal_deviation_deg <= MESH_NORMAL_DEVIATION_DEG and q.border_roughness <= MESH_BORDER_ROUGHNESS
    assert face.mouth == "closed" and len(boundary_loops(face.triangles)) == 1  # nothing shows through the lips
    assert measure_mesh(face.vertices, face.triangles).zero_area_triangles == 0


def test_pose_is_near_frontal(face):
    assert abs(face.pose.yaw) < FRONTAL_MAX_DEG and abs(face.pose.roll) < FRONTAL_MAX_DEG


def test_texture_and_mesh_are_dense(face):
    assert face.vertices.shape[0] > 43_000
    assert face.texture_mask.mean() > 0.35  # the sides, seen at more than 60°, are not the photo's
    assert face.landmark_visibility[27:48].all()  # nose and eyes are seen on a frontal face


@pytest.fixture(scope="module")
def fallback_only():
    """The shipped model with a detector that finds nothing, so that every photo goes to the fallback."""
    if not (default_bundle_path() / "bundle.json").is_file():
        pytest.skip("no default model bundle in weights/default")
    from engine.api import Reconstructor
    from engine.detect import FixedBoxDetector

    def build(box):
        return Reconstructor.from_bundle(
            detector=FixedBoxDetector([]), fallback_detector=FixedBoxDetector([box], kind="frontal")
        )

    return build


def test_fallback_box_on_part_of_the_face_finds_the_face(fallback_only):
    from engine.types import BoundingBox

    on_the_right_eye = BoundingBox(190, 85, 230, 125)
    faces = fallback_only(on_the_right_eye)(sample_photo_path(), texture_size=256)
    assert len(faces) == 1
    assert np.linalg.norm(faces[0].landmarks_2d[30] - NOSE_TIP) < LANDMARK_PX


FACE_PAINTED_OVER = (slice(20, 240), slice(130, 320))  # rows, columns: the astronaut's head, grey
PAINT_GREY = 128


@pytest.mark.parametrize(
    "box",
    [(20, 300, 200, 480), (350, 50, 500, 200), (300, 300, 480, 480), (0, 0, 140, 140), (150, 40, 300, 190)],
    ids=["suit", "sky-right", "flag-shoulder", "top-left", "where-the-face-was"],
)
def test_fallback_boxes_in_a_photo_without_a_face_are_rejected(fallback_only, box):
    from engine.image_io import load_image
    from engine.types import BoundingBox

    photo = load_image(sample_photo_path()).copy()
    photo[FACE_PAINTED_OVER] = PAINT_GREY
    maps, transforms, rois = locate(fallback_only(BoundingBox(*box)), photo)
    assert rois == [] and maps.shape[0] == 0


def test_fallback_box_on_noise_is_rejected(fallback_only):
    from engine.types import BoundingBox

    noise = np.random.default_rng(0).integers(0, 256, (400, 400, 3), dtype=np.uint8)
    assert fallback_only(BoundingBox(100, 100, 300, 300))(noise) == []


def test_default_reconstructor_finds_no_face_in_a_photo_without_one(fallback_only):
    from engine.api import Reconstructor
    from engine.image_io import load_image

    photo = load_image(sample_photo_path()).copy()
    photo[FACE_PAINTED_OVER] = PAINT_GREY
    assert Reconstructor.from_bundle()(photo, texture_size=256) == []


def test_close_up_boxes_find_a_face_that_fills_the_photo(fallback_only):
    from engine.api import Reconstructor
    from engine.detect import CloseUpBoxes, FixedBoxDetector
    from engine.image_io import load_image

    left, top, side = 134, 20, 180  # the astronaut's head, cut as a close-up
    close_up = np.ascontiguousarray(load_image(sample_photo_path())[top : top + side, left : left + side])
    rec = Reconstructor.from_bundle(detector=FixedBoxDetector([]), fallback_detector=CloseUpBoxes())
    faces = rec(close_up, texture_size=256)
    assert len(faces) == 1
    nose = np.subtract(NOSE_TIP, (left, top))
    assert np.linalg.norm(faces[0].landmarks_2d[30] - nose) < LANDMARK_PX


# AFLW2000-3D dev photos whose head fills about half the frame and which the strict cascades miss:
# refined from the whole-photo close-up box, the shipped network settles, mirror-consistent, on a roi
# far larger than the head (NME ≈ 20 % and more); the half-photo close-up box frames the head.
HALF_FRAME_HEADS = ("image00981.jpg", "image04114.jpg")
HALF_FRAME_MAX_NME = 8.0  # % of the landmark box: above the worst profile-bin faces framed well (≈ 7 %), far below 20 %


def _dev_photo(shared_data, name):
    """An AFLW2000-3D dev photo and its (68, 3) ground-truth landmarks (image px)."""
    if not (default_bundle_path() / "bundle.json").is_file():
        pytest.skip("no default model bundle in weights/default")
    from engine.image_io import load_image

    folder = shared_data / "aflw2000_dev"
    i = (folder / "list.txt").read_text().split().index(name)
    return load_image(folder / name), np.load(folder / "pts68.npy")[i].T.astype(np.float64)


def _annotated_face_nme(faces, truth) -> float:
    """2D NME (%) of the reconstruction on the annotated face; fails when none is on it."""
    from training.metrics import annotated_face, nme_per_image

    face = annotated_face([f.box for f in faces], truth[:, :2])
    assert face is not None
    return nme_per_image(faces[face].landmarks_2d[None], truth[None, :, :2], dims=2)[0]


@pytest.mark.parametrize("name", HALF_FRAME_HEADS)
def test_fallback_frames_a_head_that_fills_half_the_photo(shared_data, name):
    from engine.api import Reconstructor

    photo, truth = _dev_photo(shared_data, name)
    rec = Reconstructor.from_bundle()
    assert rec.search.detector(photo) == []  # the case for the fallback
    assert _annotated_face_nme(rec(photo, texture_size=256), truth) < HALF_FRAME_MAX_NME


# AFLW2000-3D dev photos where the strict cascades' box covers part of the face (an eye and cheek,
# the ear side; its roi overlaps the true roi by IoU < 0.4): the shipped network's refinement from that box
# settles on the part (NME 22 / 55 % without restarts); restarted from larger boxes it frames the head.
PART_BOX_FACES = ("image01847.jpg", "image04337.jpg")
PART_BOX_MAX_IOU = 0.4  # the detector's roi really is off the face (well framed: IoU ≈ 0.7–0.8)
PART_BOX_MAX_NME = HALF_FRAME_MAX_NME


@pytest.mark.parametrize("name", PART_BOX_FACES)
def test_restarts_frame_a_face_whose_detector_box_is_on_part_of_it(shared_data, name):
    from engine.api import Reconstructor
    from engine.crop import roi_from_landmarks
    from engine.detect import roi_from_detection
    from training.metrics import box_iou

    photo, truth = _dev_photo(shared_data, name)
    rec = Reconstructor.from_bundle()
    detections = rec.search.detector(photo)
    true_roi = roi_from_landmarks(truth[:, :2])
    assert len(detections) == 1 and box_iou(roi_from_detection(detections[0]), true_roi) < PART_BOX_MAX_IOU
    assert _annotated_face_nme(rec(photo, texture_size=256), truth) < PART_BOX_MAX_NME


def test_a_photo_held_sideways_gives_the_same_face_turned(face):
    """The sample photo turned a quarter turn (no EXIF orientation to undo it): the upright search
    finds no face, the quarter-turn search does (engine.turns), and it is the upright result turned:
    the same landmarks in the turned photo and a roll 90° away."""
    from engine.api import Reconstructor
    from engine.image_io import load_image
    from engine.turns import to_turned, turn_image

    photo = load_image(sample_photo_path())
    (turned,) = Reconstructor.from_bundle()(turn_image(photo, 3), texture_size=512)
    expected = to_turned(face.landmarks_2d, 3, photo.shape[:2])
    assert np.linalg.norm(turned.landmarks_2d - expected, axis=1).max() < TURNED_LANDMARK_PX
    assert abs(turned.pose.roll - face.pose.roll - 90.0) < TURNED_ROLL_DEG


def test_a_profile_photo_gets_a_complete_seamless_texture(shared_data):
    """An 80° profile from the benchmark: the photo shows under half of the face; the complete texture
    leaves no hole (the photo is lifted to levels ≥ 16, so black means a hole) and no seam."""
    if not (default_bundle_path() / "bundle.json").is_file():
        pytest.skip("no default model bundle in weights/default")
    from engine.api import Reconstructor
    from engine.image_io import load_image
    from engine.layout import default_layout
    from engine.texture import face_texels
    from engine.texture_quality import measure_texture

    photo = load_image(shared_data / "aflw2000_dev" / PROFILE_PHOTO)
    photo = (16 + photo.astype(np.float32) * (239 / 255)).round().astype(np.uint8)
    (face,) = Reconstructor.from_bundle()(photo, texture_size=512)
    assert abs(face.pose.yaw) > PROFILE_MIN_YAW
    q = measure_texture(face.texture, face.texture_mask, face_texels(default_layout(), 512))
    assert q.seen_fraction < 0.5 and q.empty_fraction == 0.0 and q.seam_ratio < SEAM_RATIO_MAX
