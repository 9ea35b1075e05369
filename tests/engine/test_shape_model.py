"""The landmark shape model: the fit's invariants on synthetic models (68 landmarks alone, and with
points read from the output map), its file and bundle contracts."""

from __future__ import annotations

import io
import json
from dataclasses import replace

import numpy as np
import pytest

from engine.bundle import attach_landmark_model, load_bundle
from engine.errors import BundleFormatError, NoWeightsError, WeightsMismatchError
from engine.pose import euler_to_rotation
from engine.shape_model import LandmarkShapeModel, load_landmark_model

FIT_EXACT = 1e-3  # a fit on exact data, px (faces of 40 px radius): the fit stops at moves of 1e-6 × radius
PROJECTION_REPEAT = 1e-6  # fitting a fitted face again moves it by less than this (same units)


MAP_SIZE = 8  # side of the synthetic output maps the map points are read from


def random_model(
    rng: np.random.Generator,
    modes: int = 5,
    prior_weight: float = 0.0,
    map_points: int = 0,
    map_size: int = MAP_SIZE,
    map_weight: float = 0.0,
) -> LandmarkShapeModel:
    n = 68 + map_points
    mean = rng.normal(size=(n, 3))
    mean -= mean.mean(axis=0)
    mean /= np.sqrt((mean**2).sum(axis=1).mean())
    q, _ = np.linalg.qr(rng.normal(size=(3 * n, modes)))
    return LandmarkShapeModel(
        mean=mean,
        modes=q.T.reshape(modes, n, 3),
        std=np.linspace(0.2, 0.02, modes),
        prior_weight=prior_weight,
        map_pixels=rng.choice(map_size * map_size, map_points, replace=False),
        map_size=map_size if map_points else 0,
        map_weight=map_weight,
    )


def map_with(model: LandmarkShapeModel, points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An (S, S, 3) output map holding ``points[68:]`` at the model's map pixels, noise elsewhere."""
    out = rng.uniform(0, 100, size=(model.map_size * model.map_size, 3))
    out[model.map_pixels] = points[68:]
    return out.reshape(model.map_size, model.map_size, 3).astype(np.float32)


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


def test_a_face_of_a_model_with_map_points_is_fitted_exactly_from_its_map():
    rng = np.random.default_rng(20)
    m = random_model(rng, map_points=30, map_weight=8.0)
    face = posed(m.shape(rng.normal(size=m.n_modes) * m.std))
    out_map = map_with(m, face, rng)  # float32 map: the map points are rounded to ≈ 1e-5 px
    assert np.abs(m.fit(face[:68], out_map) - face[:68]).max() < FIT_EXACT


def test_map_points_pull_noisy_landmarks_toward_the_face():
    """Noise on the 68 read-out points only: weighting the (exact) map points brings the fit closer."""
    rng = np.random.default_rng(21)
    alone = random_model(rng, modes=8, map_points=40)
    with_map = replace(alone, map_weight=8.0)
    errors = {0.0: [], 8.0: []}
    for _ in range(10):
        face = posed(alone.shape(rng.normal(size=alone.n_modes) * alone.std))
        noisy = face[:68] + rng.normal(scale=2.0, size=(68, 3))
        out_map = map_with(alone, face, rng)
        for m in (alone, with_map):
            errors[m.map_weight].append(np.linalg.norm(m.fit(noisy, out_map) - face[:68], axis=1).mean())
    assert np.mean(errors[8.0]) < 0.3 * np.mean(errors[0.0])  # measured 0.11 against 0.89 px


def test_a_model_with_map_points_needs_its_map():
    rng = np.random.default_rng(22)
    m = random_model(rng, map_points=10, map_weight=1.0)
    points = posed(m.mean)[:68]
    with pytest.raises(ValueError, match="reads 8² output maps"):
        m.fit(points)
    with pytest.raises(ValueError, match="reads 8² output maps"):
        m.fit(points, np.zeros((16, 16, 3)))
    with pytest.raises(ValueError, match="map pixels must index"):
        LandmarkShapeModel(m.mean, m.modes, m.std, 0.0, map_pixels=m.map_pixels + 64, map_size=8)
    with pytest.raises(ValueError, match="D = 10 map pixels"):
        LandmarkShapeModel(m.mean[:70], m.modes[:, :70], m.std, 0.0, map_pixels=m.map_pixels, map_size=8)


def test_file_round_trip_and_a_bad_file(tmp_path):
    m = random_model(np.random.default_rng(7), prior_weight=3e-4)
    m.save(tmp_path / "m.npz")
    back = load_landmark_model(tmp_path / "m.npz")
    assert back.prior_weight == m.prior_weight and np.array_equal(back.modes, m.modes)
    assert back.n_map_points == 0
    dense = random_model(np.random.default_rng(17), map_points=12, map_weight=2.0)
    dense.save(tmp_path / "d.npz")
    back = load_landmark_model(tmp_path / "d.npz")
    assert np.array_equal(back.map_pixels, dense.map_pixels) and (back.map_size, back.map_weight) == (8, 2.0)
    buf = io.BytesIO()  # a file from before the map points: the 68 landmarks alone
    np.savez(buf, mean=m.mean, modes=m.modes, std=m.std, prior_weight=np.float64(m.prior_weight))
    (tmp_path / "old.npz").write_bytes(buf.getvalue())
    old = load_landmark_model(tmp_path / "old.npz")
    assert old.n_map_points == 0 and np.array_equal(old.modes, m.modes)
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


def test_a_bundle_refuses_a_landmark_model_for_another_map_size(bundle_copy):
    size = load_bundle(bundle_copy).input_size
    m = random_model(np.random.default_rng(18), map_points=4, map_size=size // 2)
    with pytest.raises(BundleFormatError, match=f"reads {size // 2}² maps, the network makes {size}²"):
        attach_landmark_model(bundle_copy, m)


def test_reconstructor_fits_the_landmarks_only_when_asked(bundle_copy):
    from engine.api import Reconstructor
    from engine.crop import CropTransform
    from engine.options import ReconstructOptions
    from engine.types import BoundingBox

    m = random_model(np.random.default_rng(9))
    bundle = attach_landmark_model(bundle_copy, m)
    on, off = Reconstructor(bundle), Reconstructor(bundle, ReconstructOptions(fit_landmarks=False))
    s = bundle.input_size
    out_map = np.random.default_rng(10).uniform(0, s, size=(s, s, 3)).astype(np.float32)
    t = CropTransform.from_roi(BoundingBox(10.0, 20.0, 210.0, 220.0), s)
    raw = t.to_image(on.passes.readout.keypoints(out_map))
    assert np.allclose(off.passes.landmarks(out_map, t), raw)
    assert np.allclose(on.passes.landmarks(out_map, t), t.to_image(m.fit(on.passes.readout.keypoints(out_map))))
    assert not np.allclose(on.passes.landmarks(out_map, t), raw, atol=1.0)


def test_reconstructor_hands_the_map_to_a_model_with_map_points(bundle_copy):
    from engine.api import Reconstructor
    from engine.crop import CropTransform
    from engine.types import BoundingBox

    s = load_bundle(bundle_copy).input_size
    m = random_model(np.random.default_rng(19), map_points=50, map_size=s, map_weight=8.0)
    bundle = attach_landmark_model(bundle_copy, m)
    rec = Reconstructor(bundle)
    out_map = np.random.default_rng(23).uniform(0, s, size=(s, s, 3)).astype(np.float32)
    t = CropTransform.from_roi(BoundingBox(10.0, 20.0, 210.0, 220.0), s)
    expected = t.to_image(m.fit(rec.passes.readout.keypoints(out_map), out_map))
    assert np.allclose(rec.passes.landmarks(out_map, t), expected)
    without_map = replace(m, map_weight=0.0).fit(rec.passes.readout.keypoints(out_map), out_map)
    assert not np.allclose(expected, t.to_image(without_map))
