"""The fast model's network (engine.light_network) and quality "fast" through the engine: shapes, size,
the inference form, bundles that name their network, and the Reconstructor running the fast model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from arrays import assert_close
from mean_face import build_mean_face_bundle, edit_bundle_meta
from synthetic import gradient_photo
from test_fused import _random_bn

from engine.api import Reconstructor
from engine.bundle import load_bundle
from engine.errors import BundleFormatError, InvalidOptionError
from engine.fused import fuse_model
from engine.light_network import LightFCN
from engine.model import PositionMapNet
from engine.types import BoundingBox

MAX_PARAMETERS = 2_000_000  # the speed issue's budget for the fast model
FUSED_ATOL = 1e-5  # sigmoid units: float32 rounding of the folded weights
SAME_FACE_PX = 1e-2  # the two mean-face bundles predict the same face; float32 round-off only
BOX = BoundingBox(220, 140, 420, 340)


def test_light_network_maps_a_crop_to_a_same_size_sigmoid_map_within_its_parameter_budget():
    net = LightFCN(input_size=128).eval()
    with torch.no_grad():
        y = net(torch.rand(2, 3, 128, 128))
    assert y.shape == (2, 3, 128, 128) and float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    assert sum(p.numel() for p in net.parameters()) <= MAX_PARAMETERS
    with pytest.raises(ValueError, match="divisible by 32"):
        LightFCN(input_size=100)
    with pytest.raises(ValueError, match=r"expects \(B, 3, 128, 128\)"):
        net(torch.rand(1, 3, 96, 96))


def test_the_head_runs_in_fp32_under_autocast():
    net = LightFCN(input_size=64).eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert net(torch.rand(1, 3, 64, 64)).dtype == torch.float32


def test_a_fused_light_network_matches_it_with_any_batch_norm():
    model = PositionMapNet(input_size=64, width=0.5, output_kind="mean_residual", output_scale=2.0, arch="LightFCN")
    _random_bn(model, 1)
    model.eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        fused = fuse_model(model)
        np.testing.assert_allclose(fused(x).numpy(), model(x).numpy(), atol=FUSED_ATOL * 2 * 64)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.net.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.net.modules())  # the original is untouched


def test_init_near_mean_starts_a_light_network_at_its_mean_map():
    model = PositionMapNet(input_size=64, width=0.5, output_kind="mean_residual", output_scale=2.0, arch="LightFCN")
    model.mean_map.copy_(torch.rand(1, 3, 64, 64) * 64)
    model.init_near_mean(gain=0.0)
    with torch.no_grad():
        np.testing.assert_allclose(model.eval()(torch.rand(1, 3, 64, 64)).numpy(), model.mean_map.numpy(), atol=1e-4)


def test_a_bundle_names_its_network_and_refuses_an_unknown_one(tmp_path):
    bundle = load_bundle(build_mean_face_bundle(tmp_path / "fast", arch="LightFCN"))
    assert bundle.arch == "LightFCN" and bundle.metadata["network"]["arch"] == "LightFCN"
    assert isinstance(bundle.build_model().net, LightFCN)
    edit_bundle_meta(tmp_path / "fast", lambda m: m["network"].update(arch="ResNet9000"))
    with pytest.raises(BundleFormatError, match="unknown network 'ResNet9000'"):
        load_bundle(tmp_path / "fast")


@pytest.fixture(scope="module")
def fast_rec(mean_face_bundle, tmp_path_factory):
    fast = build_mean_face_bundle(tmp_path_factory.mktemp("fast") / "fast", arch="LightFCN")
    return Reconstructor.from_bundle(mean_face_bundle, fast_path=fast)


def test_quality_fast_runs_the_fast_model_and_only_it(fast_rec):
    photo = gradient_photo()
    full = fast_rec(photo, boxes=[BOX], quality="full")[0]
    assert fast_rec.passes.images > 0
    fast = fast_rec(photo, boxes=[BOX], quality="fast")[0]
    fast_passes = fast_rec.passes_for("fast")
    assert fast_passes is not fast_rec.passes and fast_passes.images > 0
    assert not fast_passes.shift_average
    assert fast_rec.bundle_for("fast").arch == "LightFCN" and fast_rec.bundle_for("full").arch == "ResFCN"
    assert_close(fast.vertices, full.vertices, SAME_FACE_PX, "both mean-face models give the mean face")


def test_quality_fast_without_a_fast_model_or_with_another_layout_is_refused(mean_face_bundle, tmp_path):
    bundle = load_bundle(mean_face_bundle)
    with pytest.raises(InvalidOptionError, match="needs a fast model bundle"):
        Reconstructor(bundle)(gradient_photo(), boxes=[BOX], quality="fast")
    fast = build_mean_face_bundle(tmp_path / "fast", arch="LightFCN")
    edit_bundle_meta(fast, lambda m: None)
    other = load_bundle(fast)
    object.__setattr__(other.layout, "layout_id", "another-layout")
    with pytest.raises(InvalidOptionError, match="layout 'another-layout'"):
        Reconstructor(bundle, fast_bundle=other).passes_for("fast")
