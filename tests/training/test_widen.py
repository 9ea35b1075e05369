"""Net2Wider: a widened network computes what the narrow one computes, in eval and training mode."""

from __future__ import annotations

import pytest
import torch

from engine.model import PositionMapNet
from training.widen import widen

SIZE = 64  # smallest input the ResFCN takes comfortably (divisible by 32)
# fp32 sums in another order; the outputs span ≈ ±32 px. In training mode every batch norm divides
# by a batch variance (of 32 values per channel at the 2×2 bottleneck), which amplifies rounding:
# measured 7e-3 px there, < 1e-3 px in eval mode
SAME_OUTPUT_PX = {"eval": 1e-3, "train": 2e-2}
NOISY_MIN_PX = 1e-3  # the symmetry-breaking noise must move the output at least this much


def trained_like(width: float) -> PositionMapNet:
    """A small network with random weights, BN gains/biases and running statistics (not the defaults)."""
    torch.manual_seed(3)
    net = PositionMapNet(input_size=SIZE, width=width, output_kind="mean_residual", output_scale=1.0)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
        net.mean_map.normal_(30.0, 5.0)
        net.train()
        for _ in range(3):
            net(torch.rand(4, 3, SIZE, SIZE))  # move the running statistics off their defaults
    return net


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_widened_network_is_the_same_function(mode):
    narrow = trained_like(0.25)
    wide = widen(narrow, 0.5, noise=0.0)
    assert sum(p.numel() for p in wide.parameters()) > 3 * sum(p.numel() for p in narrow.parameters())
    x = torch.rand(8, 3, SIZE, SIZE)  # a batch large enough for well-conditioned batch statistics
    getattr(narrow, mode)()
    getattr(wide, mode)()
    with torch.no_grad():
        diff = (wide(x) - narrow(x)).abs().max().item()
    assert diff < SAME_OUTPUT_PX[mode], f"{mode}: widened output differs by {diff} px"


def test_noise_breaks_the_copies_apart():
    narrow = trained_like(0.25).eval()
    wide = widen(narrow, 0.5).eval()
    w = wide.net.stem[0].conv.weight
    half = w.shape[0] // 2
    assert not torch.equal(w[:half], w[half:])  # copies no longer get identical gradients
    x = torch.rand(2, 3, SIZE, SIZE)
    with torch.no_grad():
        assert (wide(x) - narrow(x)).abs().max().item() > NOISY_MIN_PX


def test_narrowing_is_refused():
    with pytest.raises(ValueError, match="narrower"):
        widen(trained_like(0.5), 0.25)
