"""engine.landmarks: read-out of the 68 keypoints from a position map, and their names."""

from __future__ import annotations

import numpy as np
import pytest
from arrays import assert_close
from synthetic import layout, posed_face
from tolerances import LANDMARK_PX

from engine.landmarks import LANDMARK_GROUPS, LANDMARK_NAMES, landmarks_from_position_map
from engine.position_map import map_from_vertices, sample_map

KEYPOINT_MIRROR_PX = 1.0  # layout px at 256²: BFM's keypoint vertices are symmetric to ≈0.5 px there


def test_names_cover_the_ibug_68_points():
    assert len(LANDMARK_NAMES) == 68 and len(set(LANDMARK_NAMES)) == 68
    expected = {
        0: "jaw_00",
        16: "jaw_16",
        17: "brow_R_0",
        21: "brow_R_4",
        22: "brow_L_0",
        27: "nose_0",
        35: "nose_8",
        36: "eye_R_0",
        41: "eye_R_5",
        42: "eye_L_0",
        47: "eye_L_5",
        48: "mouth_00",
        67: "mouth_19",
    }
    for index, name in expected.items():
        assert LANDMARK_NAMES[index] == name
    flat = sorted(i for ids in LANDMARK_GROUPS.values() for i in ids)
    assert flat == list(range(68))
    assert all(LANDMARK_NAMES[i].startswith(g) for g, ids in LANDMARK_GROUPS.items() for i in ids)


def test_subject_right_is_image_left_on_a_frontal_face():
    lm = landmarks_from_position_map(posed_face().position_map, layout())
    assert lm[36, 0] < lm[45, 0]  # eye_R outer corner left of eye_L outer corner
    assert lm[17:22, 0].mean() < lm[22:27, 0].mean()
    assert lm[0, 0] < lm[8, 0] < lm[16, 0]
    assert lm[30, 2] == lm[:, 2].max()  # the nose tip is the nearest landmark


@pytest.mark.parametrize(("yaw", "pitch", "roll"), [(0, 0, 0), (40, -15, 10), (-75, 20, -170), (89, 0, 0)])
def test_landmarks_equal_the_posed_canonical_read_out(yaw, pitch, roll):
    lay = layout()
    face = posed_face(yaw, pitch, roll)
    got = landmarks_from_position_map(face.position_map, lay)
    assert got.shape == (68, 3) and got.dtype == np.float32
    assert np.isfinite(got).all()  # no pixel off the mask (NaN there) took part
    canonical = sample_map(map_from_vertices(lay.canonical_vertices, lay), lay.face_mask, lay.keypoints_uv)
    expected = face.scale * canonical.astype(np.float64) @ face.rotation.T + face.translation
    assert_close(got, expected, LANDMARK_PX, f"landmarks at yaw {yaw}, pitch {pitch}, roll {roll}")


def test_wrong_map_size_raises():
    with pytest.raises(ValueError, match=r"\(128, 128, 3\)"):
        landmarks_from_position_map(np.zeros((128, 128, 3)), layout())


def test_landmark_mirror_matches_the_layouts_symmetry():
    """Each landmark's twin sits at its mirrored UV column on the same row (the layout is symmetric)."""
    from engine.landmarks import LANDMARK_MIRROR
    from engine.layout import default_layout

    mirror = np.asarray(LANDMARK_MIRROR)
    assert sorted(mirror) == list(range(68)) and np.array_equal(mirror[mirror], np.arange(68))
    lay = default_layout()
    uv = lay.keypoints_uv
    assert np.abs((lay.size - 1 - uv[:, 0]) - uv[mirror, 0]).max() < KEYPOINT_MIRROR_PX
    assert np.abs(uv[:, 1] - uv[mirror, 1]).max() < KEYPOINT_MIRROR_PX
