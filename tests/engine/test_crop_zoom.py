"""Crop zoom: the network's crop is the roi tightened about its centre, as the bundle asks, in every
path (roi boxes, detection, the landmark re-crop), and the tool that chooses it measures on
training-style crops in the right frame."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from arrays import assert_close
from mean_face import MEAN_FACE_INPUT, edit_bundle_meta, mean_face_keypoints, mean_face_surface
from synthetic import gradient_photo

from engine.api import Reconstructor
from engine.bundle import load_bundle
from engine.crop import CropTransform, crop_image, roi_from_landmarks
from engine.detect import roi_from_detection
from engine.errors import BundleFormatError
from engine.options import ReconstructOptions
from engine.types import BoundingBox
from training.crop_zoom import face_fraction, zoomed

POSITION_PX = 1e-2  # float32 round-off through crop → read-out → image frame
ZOOM = 1.25


def _set_zoom(bundle, value) -> None:
    edit_bundle_meta(bundle, lambda meta: meta.update(inference={"crop_zoom": value}))


def test_zoomed_crop_is_the_roi_shrunk_about_its_centre():
    roi = BoundingBox(100, 50, 300, 250)
    plain, zoomed_t = CropTransform.from_roi(roi, 128), CropTransform.from_roi(roi, 128, ZOOM)
    assert zoomed_t.scale == pytest.approx(plain.scale * ZOOM)
    centre = np.array([[200.0, 150.0, 10.0]])
    at_crop = zoomed_t.to_crop(centre)[0, :2]
    assert_close(at_crop, plain.to_crop(centre)[0, :2], 1e-9, "roi centre stays the crop centre")
    assert_close(zoomed_t.to_image(zoomed_t.to_crop(centre)), centre, 1e-9, "to_image inverts to_crop")
    with pytest.raises(ValueError, match="zoom"):
        CropTransform.from_roi(roi, 128, 0.0)


def test_zoomed_crop_image_equals_the_crop_of_the_smaller_box():
    photo = gradient_photo()
    roi = BoundingBox(150, 100, 450, 400)
    half = 150 / ZOOM
    smaller = BoundingBox(300 - half, 250 - half, 300 + half, 250 + half)
    a, ta = crop_image(photo, roi, 128, ZOOM)
    b, tb = crop_image(photo, smaller, 128)
    assert ta == tb
    assert np.array_equal(a, b)


def test_bundle_crop_zoom_setting(bundle_copy):
    assert load_bundle(bundle_copy).crop_zoom == 1.0  # absent: the protocol's roi
    _set_zoom(bundle_copy, ZOOM)
    assert load_bundle(bundle_copy).crop_zoom == ZOOM
    for bad in ("1.1", True, 3.0, 0.0):
        _set_zoom(bundle_copy, bad)
        with pytest.raises(BundleFormatError, match="crop_zoom"):
            load_bundle(bundle_copy)


def test_reconstruction_uses_the_bundle_zoom_in_both_passes(bundle_copy):
    """Mean-face model: the mesh is the mean face in the tightened crop of the final roi, and the
    second roi is still √2 × the first pass's landmark box (the zoom acts on the crop, not on the roi)."""
    _set_zoom(bundle_copy, ZOOM)
    rec = Reconstructor.from_bundle(bundle_copy)
    assert rec.passes.crop_zoom == ZOOM
    rois_seen, network = [], rec.passes.run_network
    rec.passes.run_network = lambda image, rois: (rois_seen.append(list(rois)), network(image, rois))[1]
    box = BoundingBox(220, 140, 420, 340)
    f = rec(gradient_photo(), boxes=[box])[0]
    kp_crop = mean_face_keypoints(rec.layout)
    first = CropTransform.from_roi(roi_from_detection(box, "frontal"), MEAN_FACE_INPUT, ZOOM).to_image(kp_crop)
    assert_close(rois_seen[1][0].as_list(), roi_from_landmarks(first[:, :2]).as_list(), 1e-2, "second roi")
    assert f.box in [r[0] for r in rois_seen[1:]]  # a re-crop (the zoomed mean face drifts: its steadiest one)
    expected = CropTransform.from_roi(f.box, MEAN_FACE_INPUT, ZOOM).to_image(mean_face_surface())
    expected[:, 2] -= expected[:, 2].min()
    assert_close(f.vertices, expected, POSITION_PX, "vertices vs the mean face in the zoomed crop")
    plain = Reconstructor.from_bundle(bundle_copy, ReconstructOptions(crop_zoom=1.0))(gradient_photo(), boxes=[box])[0]
    assert not np.allclose(plain.vertices, f.vertices, atol=1.0)  # the override reaches the crop


def test_tool_zooms_crops_and_labels_about_the_same_centre():
    size, zoom = 128, 1.1
    crops = np.zeros((1, 120, 120, 3), np.uint8)
    crops[0, 59:61, 59:61] = 255  # a bright 2×2 square at the 120-crop centre (59.5, 59.5)
    verts = np.array([[[59.5, 59.5, 4.0], [10.0, 20.0, 0.0]]], np.float32)
    lb = SimpleNamespace(pixels=np.array([0, 5]))
    images, maps = zoomed(crops, verts, lb, size, zoom)
    ys, xs = np.nonzero(images[0, ..., 0] > 64)
    centre = maps[0].reshape(-1, 3)[0]
    assert_close(centre[:2], [(size - 1) / 2] * 2, 1e-4, "crop centre label")
    assert_close([xs.mean(), ys.mean()], centre[:2], 0.3, "image content under its label")
    k = size / 120 * zoom
    assert centre[2] == pytest.approx(4.0 * k)
    assert_close(maps[0].reshape(-1, 3)[5, :2] - centre[:2], (verts[0, 1, :2] - 59.5) * k, 1e-4, "scale about centre")
    kp = np.array([[[10.0, 20.0], [50.0, 30.0], [30.0, 80.0]]])
    assert face_fraction(kp, 100.0) == pytest.approx(0.6)
