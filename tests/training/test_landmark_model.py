"""training.landmark_model: the shape model learned from landmark sets, and its scoring."""

from __future__ import annotations

import numpy as np
import pytest

from engine.landmarks import LANDMARK_MIRROR
from engine.pose import euler_to_rotation, fit_similarity
from engine.shape_model import LandmarkShapeModel
from training.dataset import LabelBasis
from training.landmark_model import human_point_nme, learn_shape_model, map_point_pixels, mirrored
from training.refine import combination_matrix

# a fresh face of the generating model, fitted by the learned one: max error / RMS face radius. Not 0:
# Procrustes-aligned shapes leave the generating subspace at second order in the spread (measured
# ≤ 0.26 % at spreads of 10 and 5 % of the face), while the mean face alone misses by ≈ 10 %
LEARNED_FIT_REL = 5e-3
STD_REL = 0.25  # learned mode spread vs the generating one, 300 samples (sampling error ≈ 1/√300 ≈ 6 %)


def symmetric(points: np.ndarray) -> np.ndarray:
    return 0.5 * (points + mirrored(points[None])[0])


def generate(rng, mean, modes, std, n):
    coeffs = rng.normal(size=(n, len(std))) * std
    faces = mean + np.einsum("nk,kpc->npc", coeffs, modes)
    out = []
    for f in faces:
        r = euler_to_rotation(*rng.uniform(-40, 40, 3))
        out.append(rng.uniform(20, 60) * f @ r.T + rng.uniform(-100, 100, 3))
    return np.stack(out)


def test_the_learned_model_spans_the_generating_one():
    rng = np.random.default_rng(0)
    mean = symmetric(rng.normal(size=(68, 3)))
    modes = np.stack([symmetric(rng.normal(size=(68, 3))) for _ in range(2)])
    modes /= np.linalg.norm(modes.reshape(2, -1), axis=1)[:, None, None]
    std = np.array([0.1, 0.05]) * np.linalg.norm(mean)
    model = learn_shape_model(generate(rng, mean, modes, std, 300), modes=3)
    s, r, t = fit_similarity(model.mean, mean)
    assert np.abs(s * model.mean @ r.T + t - mean).max() < 0.05 * np.abs(mean).max()  # the mean face, resized
    mean_only = LandmarkShapeModel(model.mean, model.modes, model.std, prior_weight=1e12)
    for face in generate(rng, mean, modes, std, 5):
        size = np.sqrt(((face - face.mean(0)) ** 2).sum(1).mean())
        assert np.abs(model.fit(face) - face).max() / size < LEARNED_FIT_REL
        assert np.abs(mean_only.fit(face) - face).max() / size > 4 * LEARNED_FIT_REL
    # the first two learned modes carry the generating spread (in units of the mean's size); the third
    # holds what the scale normalisation moves along the mean face (the modes are not orthogonal to it)
    rel = model.std / np.sqrt((model.mean**2).sum()) * np.linalg.norm(mean)
    assert np.all(np.abs(rel[:2] - std) < STD_REL * std)


def test_the_learned_mean_is_left_right_symmetric():
    rng = np.random.default_rng(1)
    lopsided = symmetric(rng.normal(size=(68, 3))) + 0.05 * rng.normal(size=(68, 3))  # a face: nearly symmetric
    model = learn_shape_model(generate(rng, lopsided, np.zeros((1, 68, 3)), np.ones(1), 20), modes=1)
    twin = mirrored(model.mean[None])[0]
    s, r, t = fit_similarity(twin, model.mean)
    assert np.abs(s * twin @ r.T + t - model.mean).max() < 1e-6


def test_human_point_nme_by_hand():
    """Every used human point 1 px from its counterpart, a 100 × 100 px face: 1 %; missing points skipped."""
    rng = np.random.default_rng(2)
    label = rng.uniform(0, 100, size=(1, 68, 3))
    label[0, 0, :2], label[0, 1, :2] = (0.0, 0.0), (100.0, 100.0)
    comb = combination_matrix(ears=False)
    human = np.einsum("km,nmc->nkc", comb, label[..., :2]) + np.array([0.6, 0.8])
    human[0, 3] = np.nan
    assert np.allclose(human_point_nme(label, human, label), [1.0])


def test_map_point_pixels_come_in_weighted_mirror_pairs():
    s = 16
    weights = np.zeros((s, s), np.float32)
    weights[3:13, 2:14] = 3.0  # left/right symmetric, as build_label_basis makes them
    pixels = np.flatnonzero(np.ones(s * s, bool))[::-1].copy()  # every pixel labelled, in another order
    lb = LabelBasis(size=s, pixels=pixels, basis=np.zeros((3 * s * s, 51), np.float32), weights=weights)
    rows, twin = map_point_pixels(lb, 20)
    px = lb.pixels[rows]
    assert len(set(px.tolist())) == 20 and np.all(weights.ravel()[px] > 0)
    assert np.array_equal(twin[twin], np.arange(20))
    assert np.array_equal(px[twin] // s, px // s) and np.array_equal(px[twin] % s, s - 1 - px % s)
    with pytest.raises(ValueError, match="mirror pairs"):
        map_point_pixels(lb, 7)


def test_a_model_learned_with_map_points_is_symmetric_and_reads_them():
    rng = np.random.default_rng(3)
    extra = 6  # map points: three mirror pairs
    twin = np.array([3, 4, 5, 0, 1, 2])
    mirror = np.concatenate([np.asarray(LANDMARK_MIRROR), 68 + twin])
    base = rng.normal(size=(68 + extra, 3))
    sym = 0.5 * (base + mirrored(base[None], mirror)[0])
    faces = generate(rng, sym + 0.05 * rng.normal(size=sym.shape), np.zeros((1, 74, 3)), np.ones(1), 20)
    model = learn_shape_model(faces, mirror=mirror, modes=2, map_pixels=np.arange(extra), map_size=4)
    assert model.n_map_points == extra and model.map_size == 4 and model.prior_weight == model.map_weight == 0.0
    twin_mean = mirrored(model.mean[None], mirror)[0]
    s, r, t = fit_similarity(twin_mean, model.mean)
    assert np.abs(s * twin_mean @ r.T + t - model.mean).max() < 1e-6
