"""The 68-landmark shape model: the fit's invariants on synthetic models, its file and bundle contracts."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from engine.bundle import attach_landmark_model, load_bundle
from engine.errors import BundleFormatError, NoWeightsError, WeightsMismatchError
from engine.pose import euler_to_rotation
from engine.shape_model import LandmarkShapeModel, load_landmark_model

FIT_EXACT = 1e-3  # a fit on exact data, px (faces of 40 px radius): the fit stops at moves of 1e-6 × radius
PROJECTION_REPEAT = 1e-6  # fitting a fitted face again moves it by less than this (same units)


def random_model(rng: np.random.Generator, modes: int = 5, prior_weight: float = 0.0) -> LandmarkShapeModel:
    mean = rng.normal(size=(68, 3))
    mean -= mean.mean(axis=0)
    mean /= np.sqrt((mean**2).sum(axis=1).mean())
    q, _ = np.linalg.qr(rng.normal(size=(204, modes)))
    return LandmarkShapeModel(
        mean=mean,
        modes=q.T.reshape(modes, 68, 3),
        std=np.linspace(0.2, 0.02, modes),
        prior_weight=prior_weight,
    )


def posed(points: np.ndarray, scale: float = 40.0, angles=(25.0, -10.0, 5.0), shift=(300.0, 200.0, 50.0)):
    return scale * points @ euler_to_rotation(*angles).T + np.asarray(shift)


def test_a_face_of_the_model_is_fitted_exactly():
    rng = np.random.default_rng(0)
    m = random_model(rng)
    face = posed(m.shape(rng.normal(size=m.n_modes) * m.std))
    assert np.abs(m.fit(face) - face).max() < FIT_EXACT


def test_the_fit_moves_with_the_points():
    """Fitting commutes with similarities: the same face in another frame gives the same fit there."""
    rng = np.random.default_rng(1)
    m = random_model(rng, prior_weight=0.5)
    points = posed(m.mean + 0.1 * rng.normal(size=(68, 3)))
    moved = posed(points, scale=0.3, angles=(-40.0, 15.0, 30.0), shift=(-5.0, 7.0, 2.0))
    assert np.abs(m.fit(moved) - posed(m.fit(points), 0.3, (-40.0, 15.0, 30.0), (-5.0, 7.0, 2.0))).max() < 1e-6


def test_without_prior_the_fit_is_a_projection():
    rng = np.random.default_rng(2)
    m = random_model(rng)
    once = m.fit(posed(m.mean + 0.2 * rng.normal(size=(68, 3))))
    assert np.abs(m.fit(once) - once).max() < PROJECTION_REPEAT


def test_a_strong_prior_gives_the_mean_face_and_a_weak_one_follows_the_points():
    rng = np.random.default_rng(3)
    loose, stiff = random_model(rng), None
    stiff = LandmarkShapeModel(loose.mean, loose.modes, loose.std, prior_weight=1e12)
    coeffs = 2.0 * loose.std * np.sign(rng.normal(size=loose.n_modes))
    face = posed(loose.shape(coeffs))
    assert np.abs(stiff.fit(face) - face).max() > 1.0
    mean_posed = stiff.fit(face)
    # the result is the mean face, posed: centred, its shape is the mean up to a similarity
    assert np.abs(stiff.fit(mean_posed) - mean_posed).max() < 1e-6
    assert np.abs(loose.fit(face) - face).max() < FIT_EXACT


def test_a_mirrored_face_is_not_fitted_by_a_reflection():
    """Rotations only: the fit of a reflected face is worse than the fit of the face itself."""
    rng = np.random.default_rng(4)
    m = random_model(rng)
    face = posed(m.shape(m.std))
    reflected = face * np.array([-1.0, 1.0, 1.0])
    assert np.abs(m.fit(reflected) - reflected).max() > 1.0


@pytest.mark.parametrize(
    "points", [np.zeros((67, 3)), np.zeros((68, 2)), np.full((68, 3), np.nan)], ids=["67", "2d", "nan"]
)
def test_bad_points_are_refused(points):
    m = random_model(np.random.default_rng(5))
    with pytest.raises(ValueError, match="finite \\(68, 3\\)"):
        m.fit(points)


def test_bad_models_are_refused():
    m = random_model(np.random.default_rng(6))
    with pytest.raises(ValueError, match="std must be positive"):
        LandmarkShapeModel(m.mean, m.modes, -m.std, 0.0)
    with pytest.raises(ValueError, match="modes"):
        LandmarkShapeModel(m.mean, m.modes[:2], m.std, 0.0)


def test_file_round_trip_and_a_bad_file(tmp_path):
    m = random_model(np.random.default_rng(7), prior_weight=3e-4)
    m.save(tmp_path / "m.npz")
    back = load_landmark_model(tmp_path / "m.npz")
    assert back.prior_weight == m.prior_weight and np.array_equal(back.modes, m.modes)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(BundleFormatError, match="unreadable"):
        load_landmark_model(tmp_path / "bad.npz")
    buf = io.BytesIO()
    np.savez(buf, mean=m.mean)
    (tmp_path / "partial.npz").write_bytes(buf.getvalue())
    with pytest.raises(BundleFormatError, match="unreadable"):
        load_landmark_model(tmp_path / "partial.npz")


def test_bundle_carries_a_verified_landmark_model(bundle_copy):
    assert load_bundle(bundle_copy).landmark_model is None
    meta_before = json.loads((bundle_copy / "bundle.json").read_text())
    m = random_model(np.random.default_rng(8), prior_weight=1e-3)
    b = attach_landmark_model(bundle_copy, m)
    assert b.landmark_model is not None and np.array_equal(b.landmark_model.mean, m.mean)
    meta = json.loads((bundle_copy / "bundle.json").read_text())
    assert {k: v for k, v in meta.items() if k != "files"} == {k: v for k, v in meta_before.items() if k != "files"}
    f = bundle_copy / meta["files"]["landmark_model"]["name"]
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(WeightsMismatchError, match="landmark model file .* sha256"):
        load_bundle(bundle_copy)
    f.unlink()
    with pytest.raises(NoWeightsError, match="landmark model file missing"):
        load_bundle(bundle_copy)


def test_reconstructor_fits_the_landmarks_only_when_asked(bundle_copy):
    from engine.api import Reconstructor
    from engine.crop import CropTransform
    from engine.types import BoundingBox

    m = random_model(np.random.default_rng(9))
    bundle = attach_landmark_model(bundle_copy, m)
    on, off = Reconstructor(bundle), Reconstructor(bundle, fit_landmarks=False)
    s = bundle.input_size
    out_map = np.random.default_rng(10).uniform(0, s, size=(s, s, 3)).astype(np.float32)
    t = CropTransform.from_roi(BoundingBox(10.0, 20.0, 210.0, 220.0), s)
    raw = t.to_image(on.readout.keypoints(out_map))
    assert np.allclose(off.landmarks(out_map, t), raw)
    assert np.allclose(on.landmarks(out_map, t), t.to_image(m.fit(on.readout.keypoints(out_map))))
    assert not np.allclose(on.landmarks(out_map, t), raw, atol=1.0)
