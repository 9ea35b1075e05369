"""Shift averaging: each face's final map averaged, in image px, with the maps of shifted crops."""

from __future__ import annotations

import numpy as np
import pytest
from arrays import assert_close
from mean_face import edit_bundle_meta

from engine.api import Reconstructor
from engine.bundle import load_bundle
from engine.crop import crop_image
from engine.errors import BundleFormatError
from engine.options import ReconstructOptions
from engine.passes import SHIFT_FRACTION
from engine.types import BoundingBox

DOT = (61.3, 47.8)  # image px (x, y) of a bright blob in a dark photo
BLOB_SIGMA_PX = 4.0  # wide enough that crop resampling moves its centroid by far less than a pixel
CENTROID_PX = 0.05  # blob centroid through crop resampling and back
FP_PX = 1e-4  # float round-off through the crop / image transforms, px


def _blob_photo() -> np.ndarray:
    ys, xs = np.mgrid[0:128, 0:128]
    blob = np.exp(-((xs - DOT[0]) ** 2 + (ys - DOT[1]) ** 2) / (2 * BLOB_SIGMA_PX**2))
    return np.repeat((blob * 255).round().astype(np.uint8)[..., None], 3, axis=2)


def _blob_finder(crops: np.ndarray) -> np.ndarray:
    """A stand-in network that sees the photo: every pixel of its map holds the crop px (x, y) of the
    brightness centroid, z = 0, so each crop's map, moved to the image, says where the blob is."""
    b, s = crops.shape[:2]
    ys, xs = np.mgrid[0:s, 0:s]
    out = np.zeros((b, s, s, 3), np.float32)
    for i, c in enumerate(crops[..., 0].astype(np.float64)):
        out[i, ..., 0], out[i, ..., 1] = (c * xs).sum() / c.sum(), (c * ys).sum() / c.sum()
    return out


def test_bundle_setting_is_the_reconstructor_default(bundle_copy):
    assert load_bundle(bundle_copy).shift_average is False  # no "inference" block: off
    edit_bundle_meta(bundle_copy, lambda m: m.update(inference={"shift_average": True}))
    assert load_bundle(bundle_copy).shift_average is True
    assert Reconstructor.from_bundle(bundle_copy).passes.shift_average is True
    assert Reconstructor.from_bundle(bundle_copy, ReconstructOptions(shift_average=False)).passes.shift_average is False
    edit_bundle_meta(bundle_copy, lambda m: m.update(inference={"shift_average": 1}))
    with pytest.raises(BundleFormatError, match="shift_average"):
        load_bundle(bundle_copy)


def test_every_shifted_view_puts_the_photo_where_it_is(mean_face_bundle):
    """The shifted crops see the blob at other crop px; moved to the image, all five views agree on
    the blob's image position, and the average comes back in the original crop's px."""
    passes = Reconstructor.from_bundle(mean_face_bundle, ReconstructOptions(shift_average=True)).passes
    passes.predict_maps = _blob_finder
    photo = _blob_photo()
    roi = BoundingBox(20.0, 10.0, 110.0, 100.0)
    crop, t = crop_image(photo, roi, passes.input_size)
    maps = _blob_finder(crop[None])
    views = passes.shifted_views(photo, maps, [t])
    assert views.shape == (1, 5, *maps.shape[1:])
    assert_close(views[0, :, 0, 0, :2], np.tile(DOT, (5, 1)), CENTROID_PX, "blob position seen by each view")
    size, d = passes.input_size, SHIFT_FRACTION * roi.width
    moved = crop_image(photo, BoundingBox(roi.left + d, roi.top, roi.right + d, roi.bottom), size)[0]
    seen_x = _blob_finder(moved[None])[0, 0, 0, 0]
    assert abs(seen_x - (maps[0, 0, 0, 0] - SHIFT_FRACTION * size)) < CENTROID_PX  # so the views differ in crop px
    averaged = passes.average_shifted_crops(photo, maps, [t])
    assert_close(averaged[0, 0, 0, :2], t.to_crop(np.array(DOT)), CENTROID_PX, "averaged map in crop px")


def test_off_returns_the_maps_unchanged_and_symmetric_shifts_cancel(mean_face_bundle):
    """The mean-face network ignores its input: its face sits at the same crop px in every crop, so
    in the image the four shifted views are the centre view moved by ±d; their average is the centre."""
    photo = _blob_photo()
    off = Reconstructor.from_bundle(mean_face_bundle).passes
    assert off.shift_average is False
    maps, transforms = off.run_network(photo, [BoundingBox(20.0, 10.0, 110.0, 100.0)])
    assert off.average_shifted_crops(photo, maps, transforms) is maps
    on = Reconstructor.from_bundle(mean_face_bundle, ReconstructOptions(shift_average=True)).passes
    views = on.shifted_views(photo, maps, transforms)
    side = transforms[0].size / transforms[0].scale
    moves = views[0, 1:, ..., :2] - views[0, :1, ..., :2]
    expected = SHIFT_FRACTION * side * np.array([[1, 0], [-1, 0], [0, 1], [0, -1]], np.float64)
    assert_close(moves.reshape(4, -1, 2).mean(axis=1), expected, FP_PX, "view offsets, image px")
    assert_close(on.average_shifted_crops(photo, maps, transforms), maps, FP_PX, "average of symmetric views")
