"""Mirroring the teacher's parameters: the mirrored fit's vertices are the crop's mirror image."""

from __future__ import annotations

import numpy as np
import pytest
from arrays import assert_close

from training.bfm import BFMBasis
from training.teacher import TEACHER_INPUT, vertices_crop_px
from training.teacher_mirror import ParamMirror

PAIRS, MIDLINE = 30, 8  # vertices of the synthetic model: left/right twins, and points on the midline
FP32_PX = 1e-3  # vertices_crop_px returns float32: round-off of coordinates up to a few hundred px


def _twins() -> np.ndarray:
    twin = np.arange(2 * PAIRS + MIDLINE)
    twin[:PAIRS], twin[PAIRS : 2 * PAIRS] = np.arange(PAIRS, 2 * PAIRS), np.arange(PAIRS)
    return twin


def _mirror(flat: np.ndarray, twin: np.ndarray) -> np.ndarray:
    v = flat.reshape(len(twin), 3, *flat.shape[1:])[twin].copy()
    v[:, 0] *= -1
    return v.reshape(flat.shape)


def _symmetric_basis(rng: np.random.Generator) -> BFMBasis:
    """A model whose span is mirror-closed: a symmetric mean, basis vectors each symmetric or antisymmetric."""
    twin = _twins()
    raw = rng.normal(size=(3 * len(twin), 51)) * 1e4
    mean = (raw[:, 0] + _mirror(raw[:, 0], twin)) / 2
    w = raw[:, 1:]
    signs = np.where(np.arange(50) % 2 == 0, 1.0, -1.0)  # even columns symmetric, odd antisymmetric
    w = (w + signs * _mirror(w, twin)) / 2
    return BFMBasis(
        mean=mean.astype(np.float32),
        w_shp=w[:, :40].astype(np.float32),
        w_exp=w[:, 40:].astype(np.float32),
        keypoints_flat=np.arange(6),
    )


def _params(rng: np.random.Generator, n: int) -> np.ndarray:
    p = np.zeros((n, 62))
    for i in range(n):
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        p[i, :12] = np.concatenate([q * 1e-3 * rng.uniform(0.5, 2.0), rng.uniform(20, 100, (3, 1))], 1).ravel()
    p[:, 12:] = rng.normal(size=(n, 50))
    return p


def test_a_mirrored_fit_draws_the_mirror_image_of_the_face():
    """Pixel x ↦ 119 − x (the crop's centre line), y and depth kept, each vertex takes its twin's place."""
    rng = np.random.default_rng(0)
    basis, twin = _symmetric_basis(rng), _twins()
    p = _params(rng, 4)
    mirrored = vertices_crop_px(ParamMirror.build(basis, twin)(p), basis)
    expect = vertices_crop_px(p, basis)[:, twin].astype(np.float64)
    expect[..., 0] = (TEACHER_INPUT - 1) - expect[..., 0]
    assert_close(mirrored, expect, FP32_PX, "mirrored vertices, 120-crop px")


def test_mirroring_twice_gives_the_fit_back():
    rng = np.random.default_rng(1)
    basis = _symmetric_basis(rng)
    mirror = ParamMirror.build(basis, _twins())
    p = _params(rng, 3)
    assert_close(mirror(mirror(p)), p, 1e-9 * np.abs(p).max(), "parameters mirrored twice")


def test_mirror_rejects_a_map_of_another_model_and_misshapen_parameters():
    rng = np.random.default_rng(2)
    basis = _symmetric_basis(rng)
    with pytest.raises(ValueError, match="vertices"):
        ParamMirror.build(basis, np.arange(5))
    with pytest.raises(ValueError, match="parameters"):
        ParamMirror.build(basis, _twins())(np.zeros((2, 60)))
