"""Flip averaging: the mirrored crop's map, un-mirrored through the layout's column symmetry."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from arrays import assert_close
from mean_face import edit_bundle_meta

from engine.api import Reconstructor
from engine.bundle import load_bundle, sha256_file
from engine.errors import BundleFormatError
from engine.layout import default_layout
from engine.model import PositionMapNet, predict_position_maps, unmirror_maps
from engine.options import ReconstructOptions

FP32_PX = 1e-3  # float32 round-off of a small random network's output, px
SIZE = 32  # crop side of the small test network


def _identity_map(size: int) -> torch.Tensor:
    """(1, 3, S, S) map whose pixel (row r, column c) holds (c, r, 7): a face made of pixel centres."""
    rows, cols = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    return torch.stack([cols, rows, torch.full_like(rows, 7)]).float()[None]


def test_unmirror_keeps_a_mirror_symmetric_map_and_is_an_involution():
    """x mirrors about the pixel centres: column c ↔ S − 1 − c, so x = c is its own mirror image."""
    m = _identity_map(SIZE)
    assert_close(unmirror_maps(m, SIZE).numpy(), m.numpy(), 0.0, "un-mirrored pixel-centre map")
    q = torch.randn(2, 3, SIZE, SIZE)
    assert_close(unmirror_maps(unmirror_maps(q, SIZE), SIZE).numpy(), q.numpy(), 1e-5, "un-mirrored twice")
    assert_close(unmirror_maps(q, SIZE)[:, 1:].numpy(), q.flip(-1)[:, 1:].numpy(), 0.0, "y and z only move")


@pytest.fixture(scope="module")
def random_net():
    torch.manual_seed(3)
    net = PositionMapNet(input_size=SIZE, width=0.125, output_kind="mean_residual", output_scale=1.0)
    net.init_near_mean(gain=1.0)  # a network far from mirror-symmetric
    return net.eval()


def test_flip_averaging_averages_the_direct_and_the_unmirrored_map(random_net):
    crops = np.random.default_rng(0).integers(0, 256, (3, SIZE, SIZE, 3), dtype=np.uint8)
    direct = predict_position_maps(random_net, crops)
    mirrored = predict_position_maps(random_net, np.ascontiguousarray(crops[:, :, ::-1]))
    unmirrored = unmirror_maps(torch.from_numpy(mirrored).permute(0, 3, 1, 2), SIZE).permute(0, 2, 3, 1).numpy()
    averaged = predict_position_maps(random_net, crops, flip_average=True, batch=2)
    assert_close(averaged, 0.5 * (direct + unmirrored), FP32_PX, "flip-averaged map")


def test_flip_averaged_prediction_is_exactly_mirror_equivariant(random_net):
    crops = np.random.default_rng(1).integers(0, 256, (2, SIZE, SIZE, 3), dtype=np.uint8)
    flipped = np.ascontiguousarray(crops[:, :, ::-1])

    def mirror_of_prediction(a):
        return unmirror_maps(torch.from_numpy(a).permute(0, 3, 1, 2), SIZE).permute(0, 2, 3, 1).numpy()

    a = predict_position_maps(random_net, crops, flip_average=True)
    b = predict_position_maps(random_net, flipped, flip_average=True)
    assert_close(mirror_of_prediction(b), a, FP32_PX, "prediction of the mirrored crop, mirrored back")
    plain_a, plain_b = predict_position_maps(random_net, crops), predict_position_maps(random_net, flipped)
    assert np.abs(mirror_of_prediction(plain_b) - plain_a).max() > 100 * FP32_PX  # the test can fail


def _asymmetric(layout):
    return dataclasses.replace(layout, layout_id="lopsided", mirror_uv=layout.mirror_uv + np.float32(3.0))


def test_the_default_layout_mirrors_by_columns():
    layout = default_layout()
    assert layout.mirrors_by_columns
    assert not _asymmetric(layout).mirrors_by_columns


def test_bundle_setting_is_the_reconstructor_default(bundle_copy):
    assert load_bundle(bundle_copy).flip_average is False  # no "inference" block: off
    assert Reconstructor.from_bundle(bundle_copy).passes.flip_average is False
    edit_bundle_meta(bundle_copy, lambda m: m.update(inference={"flip_average": True}))
    assert load_bundle(bundle_copy).flip_average is True
    assert Reconstructor.from_bundle(bundle_copy).passes.flip_average is True
    assert Reconstructor.from_bundle(bundle_copy, ReconstructOptions(flip_average=False)).passes.flip_average is False


def test_bad_flip_settings_are_named(bundle_copy):
    edit_bundle_meta(bundle_copy, lambda m: m.update(inference={"flip_average": "yes"}))
    with pytest.raises(BundleFormatError, match="flip_average"):
        load_bundle(bundle_copy)
    _asymmetric(default_layout()).save(bundle_copy / "layout.npz")

    def lopsided(m):
        m["inference"] = {"flip_average": True}
        m["files"]["layout"]["sha256"] = sha256_file(bundle_copy / "layout.npz")

    edit_bundle_meta(bundle_copy, lopsided)
    with pytest.raises(BundleFormatError, match="does not mirror by columns"):
        load_bundle(bundle_copy)
    edit_bundle_meta(bundle_copy, lambda m: m.pop("inference"))
    with pytest.raises(ValueError, match="mirrors by columns"):
        Reconstructor.from_bundle(bundle_copy, ReconstructOptions(flip_average=True))
