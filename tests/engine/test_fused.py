"""The fused inference network (engine.fused) computes what the ResFCN computes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.bundle import default_bundle_path, load_bundle
from engine.fused import FusedResFCN, fuse_model
from engine.image_io import load_image, sample_photo_path
from engine.model import predict_position_maps
from engine.network import ResFCN

FUSED_PX = 2e-3  # crop px: float32 rounding of the folded weights, far below the model's error (≈ 1 px)


def _random_bn(net: torch.nn.Module, seed: int) -> None:
    """Batch-norm statistics away from the identity, so that folding them is really tested."""
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.weight.data = 0.5 + torch.rand(n, generator=g)
            m.bias.data = 0.2 * torch.randn(n, generator=g)
            m.running_mean = 0.1 * torch.randn(n, generator=g)
            m.running_var = 0.5 + torch.rand(n, generator=g)


@pytest.mark.parametrize("width", [0.25, 0.5])
def test_a_fused_resfcn_matches_the_resfcn_with_any_batch_norm(width):
    net = ResFCN(input_size=64, width=width)
    _random_bn(net, 0)
    net.eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        np.testing.assert_allclose(FusedResFCN(net)(x).numpy(), net(x).numpy(), atol=1e-5)


def test_the_shipped_model_fused_gives_the_same_maps():
    model = load_bundle(default_bundle_path()).build_model("cpu")
    fused = fuse_model(model)
    rgb = load_image(sample_photo_path())
    size = model.input_size
    crops = np.stack([rgb[:size, :size], rgb[100 : 100 + size, 150 : 150 + size]])
    direct = predict_position_maps(model, crops)
    np.testing.assert_allclose(predict_position_maps(fused, crops), direct, atol=FUSED_PX)
    assert isinstance(model.net, ResFCN)  # the original is untouched
