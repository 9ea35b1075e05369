"""The inference form of the ResFCN: batch norm folded into the convolutions, stride-1 transposed
convolutions turned into plain ones. Same numbers (to float rounding), less work.

At inference a batch norm is a per-channel affine map, ``s·y + t`` with ``s = γ / √(var + ε)`` and
``t = β − mean·s``; following a bias-free convolution it folds into that convolution's weights (× s,
per output channel) and a bias (t). A residual block's last batch norm acts on the sum of its last
1×1 convolution and its shortcut, so it folds into both (an identity shortcut keeps the scale as a
per-channel multiply). A transposed convolution of stride 1 is a plain convolution with the kernel
flipped and its channel axes swapped; with the TF "SAME" crop of :class:`engine.network.SamePadDeconv`
(1 before, 2 after for a 4×4 kernel) it reads the input padded by 2 before and 1 after. Plain
convolutions are the faster kernels on CPU (channels_last). The sigmoid head still runs in fp32
under autocast, as in :class:`engine.network.ResFCN`.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .light_network import LightFCN
from .network import KERNEL, ConvBNReLU, ResBlock, ResFCN, SamePadConv, SamePadDeconv


def _bn_affine(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, shift) per channel of an eval-mode batch norm."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return scale, bn.bias - bn.running_mean * scale


class FusedConv(nn.Module):
    """A convolution (or a strided transposed one) with its folded bias, padding and activation."""

    def __init__(self, layer: nn.Module, weight: torch.Tensor, bias: torch.Tensor, pads, *, act: str | None):
        super().__init__()
        self.layer, self.pads, self.act = layer, pads, act
        self.layer.weight = nn.Parameter(weight.detach().clone(), requires_grad=False)
        self.layer.bias = nn.Parameter(bias.detach().clone(), requires_grad=False)
        self.crop = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pads is not None:
            x = F.pad(x, self.pads)
        y = self.layer(x)
        if self.crop is not None:
            b, a = self.crop
            y = y[..., b : y.shape[-2] - a, b : y.shape[-1] - a]
        if self.act == "relu":
            return F.relu(y, inplace=True)
        return torch.sigmoid(y) if self.act == "sigmoid" else y


def fuse_conv(conv: SamePadConv, bn: nn.BatchNorm2d | None, act: str | None) -> FusedConv:
    """A :class:`SamePadConv` (+ batch norm) as one biased convolution."""
    w = conv.conv.weight
    if bn is None:
        scale, shift = torch.ones(w.shape[0]), torch.zeros(w.shape[0])
    else:
        scale, shift = _bn_affine(bn)
    b, a = conv.pads
    pads = (b, a, b, a) if a else None
    return FusedConv(copy.deepcopy(conv.conv), w * scale[:, None, None, None], shift, pads, act=act)


def fuse_deconv(deconv: SamePadDeconv, bn: nn.BatchNorm2d, act: str) -> FusedConv:
    """A :class:`SamePadDeconv` + batch norm: a plain convolution at stride 1, else a biased transposed one."""
    t = deconv.deconv
    scale, shift = _bn_affine(bn)
    w = t.weight * scale[None, :, None, None]  # (in, out, k, k): out channels on axis 1
    b, a = deconv.pads
    if t.stride == (1, 1):
        conv = nn.Conv2d(t.in_channels, t.out_channels, KERNEL, 1, padding=0, bias=True)
        before, after = KERNEL - 1 - b, KERNEL - 1 - a
        return FusedConv(conv, w.permute(1, 0, 2, 3).flip(2, 3), shift, (before, after, before, after), act=act)
    fused = FusedConv(copy.deepcopy(t), w, shift, None, act=act)
    fused.crop = (b, a) if a else None
    return fused


def fuse_layer(layer: ConvBNReLU) -> FusedConv:
    first, bn, act = layer[0], layer[1], layer[2]
    kind = "relu" if isinstance(act, nn.ReLU) else "sigmoid"
    if isinstance(first, SamePadDeconv):
        return fuse_deconv(first, bn, kind)
    return fuse_conv(first, bn, kind)


class FusedBlock(nn.Module):
    """A :class:`ResBlock` with every batch norm folded (see the module's text)."""

    def __init__(self, block: ResBlock):
        super().__init__()
        self.conv1 = fuse_conv(block.conv1, block.bn1, "relu")
        self.conv2 = fuse_conv(block.conv2, block.bn2, "relu")
        scale, shift = _bn_affine(block.bn_out)
        w3 = block.conv3.conv.weight * scale[:, None, None, None]
        self.conv3 = FusedConv(copy.deepcopy(block.conv3.conv), w3, shift, None, act=None)
        if block.shortcut is None:
            self.shortcut = None
            self.register_buffer("skip_scale", scale.detach().clone()[None, :, None, None])
        else:
            ws = block.shortcut.conv.weight * scale[:, None, None, None]
            self.shortcut = FusedConv(copy.deepcopy(block.shortcut.conv), ws, torch.zeros_like(shift), None, act=None)
            self.skip_scale = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv3(self.conv2(self.conv1(x)))
        y = y + (x * self.skip_scale if self.shortcut is None else self.shortcut(x))
        return F.relu(y, inplace=True)


class FusedResFCN(nn.Module):
    """Inference-only :class:`ResFCN` with the same input, output and precision rules."""

    def __init__(self, net: ResFCN):
        super().__init__()
        self.input_size, self.width = net.input_size, net.width
        self.stem = fuse_layer(net.stem)
        self.encoder = nn.Sequential(*(FusedBlock(b) for b in net.encoder))
        self.decoder = nn.Sequential(*(fuse_layer(layer) for layer in net.decoder))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[-1] != self.input_size or x.shape[-2] != self.input_size:
            raise ValueError(f"ResFCN expects (B, 3, {self.input_size}, {self.input_size}), got {tuple(x.shape)}")
        h = self.decoder[:-1](self.encoder(self.stem(x)))
        with torch.autocast(device_type=h.device.type, enabled=False):  # the head in fp32 (engine.network)
            return self.decoder[-1](h.float())


def fold_light(net: LightFCN) -> LightFCN:
    """A copy of an eval-mode :class:`LightFCN` with each batch norm folded into the convolution
    before it (every ``Sequential(conv, bn, …)`` becomes ``Sequential(conv with bias, …)``)."""
    folded = copy.deepcopy(net)

    def fold(module: nn.Module) -> None:
        for name, child in module.named_children():
            if (
                isinstance(child, nn.Sequential)
                and len(child) >= 2
                and isinstance(child[0], nn.Conv2d)
                and isinstance(child[1], nn.BatchNorm2d)
            ):
                setattr(module, name, nn.Sequential(fuse_conv_bn_eval(child[0], child[1]), *list(child)[2:]))
            else:
                fold(child)

    fold(folded)
    return folded


@torch.no_grad()
def fuse_model(model: nn.Module) -> nn.Module:
    """A copy of an eval-mode :class:`engine.model.PositionMapNet` whose network is fused (same device,
    channels_last); the original is left as it is."""
    fused = copy.copy(model)
    fused._modules = dict(model._modules)
    net = FusedResFCN(model.net) if isinstance(model.net, ResFCN) else fold_light(model.net)
    fused.net = net.to(next(model.parameters()).device, memory_format=torch.channels_last)
    return fused.eval()
