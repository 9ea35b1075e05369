"""ResFCN: the paper's architecture, exactly the official checkpoint's size, and TF "SAME" padding."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from engine.network import ResFCN, SamePadConv, SamePadDeconv, count_trainable

OFFICIAL_TENSORS, OFFICIAL_PARAMETERS = 149, 13_353_618  # read from the official checkpoint's index


def test_official_size_at_256_width_1():
    assert count_trainable(ResFCN(input_size=256, width=1.0)) == (OFFICIAL_TENSORS, OFFICIAL_PARAMETERS)


def test_no_biases_and_bn_after_every_conv():
    net = ResFCN(input_size=256)
    convs = [m for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(c.bias is None for c in convs)
    # each block's Conv_2 (1×1) and shortcut share the block's BN: 1 stem + 10×(3 or 4) + 17 deconvs
    assert len(convs) == 1 + 10 * 3 + 5 + 17
    assert len(bns) == 1 + 10 * 3 + 17
    assert all(c.kernel_size in ((4, 4), (1, 1)) for c in convs)


@pytest.mark.parametrize("size,width", [(128, 0.25), (256, 0.125)])
def test_shapes_and_sigmoid_range(size, width):
    net = ResFCN(input_size=size, width=width).eval()
    x = torch.rand(2, 3, size, size).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        y = net(x)
    assert y.shape == (2, 3, size, size)
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0


def test_bad_input_shape_names_it():
    with pytest.raises(ValueError, match=r"\(1, 3, 100, 100\)"):
        ResFCN(input_size=128, width=0.25)(torch.zeros(1, 3, 100, 100))
    with pytest.raises(ValueError, match="divisible by 32"):
        ResFCN(input_size=100)


def test_same_padding_is_tf_asymmetric_at_stride_1():
    """TF SAME for a 4×4 kernel at stride 1 pads 1 before and 2 after."""
    conv = SamePadConv(1, 1, 4, 1)
    x = torch.randn(1, 1, 8, 8)
    ref = F.conv2d(F.pad(x, (1, 2, 1, 2)), conv.conv.weight)
    assert torch.allclose(conv(x), ref, atol=1e-6)


@pytest.mark.parametrize("stride", [1, 2])
def test_deconv_is_adjoint_of_conv(stride):
    """<conv(x), y> == <x, deconv(y)> with shared weights: the transposed conv is the exact adjoint."""
    torch.manual_seed(0)
    conv, deconv = SamePadConv(2, 3, 4, stride), SamePadDeconv(3, 2, 4, stride)
    deconv.deconv.weight.data.copy_(conv.conv.weight.data)
    x, y = torch.randn(1, 2, 16, 16), torch.randn(1, 3, 16 // stride, 16 // stride)
    assert deconv(y).shape == x.shape
    lhs = (conv(x) * y).sum()
    rhs = (x * deconv(y)).sum()
    assert torch.allclose(lhs, rhs, rtol=1e-5, atol=1e-4)


def test_head_runs_in_fp32_under_bf16_autocast():
    net = ResFCN(input_size=128, width=0.25).eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        y = net(torch.rand(1, 3, 128, 128))
    assert y.dtype == torch.float32
