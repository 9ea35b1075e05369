"""LightFCN: the fast model's position-map network, ≈1.6 M parameters (ResFCN has 13.35 M).

ResFCN made narrower does not get fast on a CPU: its 4×4 convolutions at full resolution with few
channels are memory-bound, and width 0.25 (0.84 M parameters) still costs ≈7 ms per 128² crop on
a 2-core Xeon. LightFCN spends its work where CPU kernels are efficient (measured; docs/decisions.md,
"The fast model"):

* encoder: a 3×3 stride-2 stem (S/2), then four 3×3 stride-2 convolutions down to S/32, each
  followed by one residual pair of 3×3 convolutions; channels :data:`ENCODER_CHANNELS`;
* decoder: a feature pyramid back to S/2: the deeper level through a 1×1 convolution, upsampled
  ×2 (nearest), plus the skip level through a 1×1 convolution, then a 3×3 convolution;
* head: a 3×3 convolution to 3 channels, batch norm and sigmoid at S/2, upsampled bilinearly to S.
  A position map is smooth at the layout's scale, so the half-resolution head costs the read-out
  little; it runs in fp32 under autocast, as ResFCN's does.

Every convolution is bias-free and followed by batch norm (folded away for inference by
:func:`engine.fused.fuse_model`). Tensors are NCHW; use ``channels_last`` on CPU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .network import BN_EPS, BN_MOMENTUM, OUT_CHANNELS

STEM_CHANNELS = 16
ENCODER_CHANNELS = (32, 64, 128, 192)  # S/4, S/8, S/16, S/32
DECODER_CHANNELS = (128, 64, 32, 16)  # S/16, S/8, S/4, S/2
DOWNSAMPLING = 32  # the input side must be a multiple of it


def conv_bn(cin: int, cout: int, kernel: int = 3, stride: int = 1, *, relu: bool = True) -> nn.Sequential:
    """Bias-free convolution (zero "same" padding) + batch norm (+ ReLU)."""
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False),
        nn.BatchNorm2d(cout, eps=BN_EPS, momentum=BN_MOMENTUM),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class ResidualPair(nn.Module):
    """x → ReLU(x + BN(conv(ReLU(BN(conv(x)))))) with 3×3 convolutions, channels unchanged."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(conv_bn(channels, channels), conv_bn(channels, channels, relu=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.body(x), inplace=True)


class LightFCN(nn.Module):
    """(B, 3, S, S) float in [0, 1] → (B, 3, S, S) in [0, 1] (sigmoid), S divisible by 32.

    ``width`` scales every channel count except the 3-channel head.
    """

    def __init__(self, *, input_size: int = 128, width: float = 1.0) -> None:
        super().__init__()
        if input_size % DOWNSAMPLING:
            raise ValueError(f"LightFCN input size must be divisible by {DOWNSAMPLING}, got {input_size}")
        self.input_size = input_size
        self.width = width

        def ch(c: int) -> int:
            return max(4, int(round(c * width)))

        self.stem = conv_bn(3, ch(STEM_CHANNELS), stride=2)
        levels, cin = [], ch(STEM_CHANNELS)
        for c in ENCODER_CHANNELS:
            levels.append(nn.Sequential(conv_bn(cin, ch(c), stride=2), ResidualPair(ch(c))))
            cin = ch(c)
        self.encoder = nn.ModuleList(levels)
        skips = (ch(STEM_CHANNELS),) + tuple(ch(c) for c in ENCODER_CHANNELS[:-1])
        self.lateral, self.skip, self.merge = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        for skip_c, c in zip(reversed(skips), DECODER_CHANNELS):
            self.lateral.append(conv_bn(cin, ch(c), 1))
            self.skip.append(conv_bn(skip_c, ch(c), 1))
            self.merge.append(conv_bn(ch(c), ch(c)))
            cin = ch(c)
        self.head = nn.Sequential(
            nn.Conv2d(cin, OUT_CHANNELS, 3, 1, 1, bias=False), nn.BatchNorm2d(OUT_CHANNELS, eps=BN_EPS)
        )

    @property
    def output_norm(self) -> nn.BatchNorm2d:
        """The batch norm before the sigmoid (engine.model starts its gain small)."""
        return self.head[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[-1] != self.input_size or x.shape[-2] != self.input_size:
            raise ValueError(f"LightFCN expects (B, 3, {self.input_size}, {self.input_size}), got {tuple(x.shape)}")
        levels = [self.stem(x)]
        for level in self.encoder:
            levels.append(level(levels[-1]))
        y = levels.pop()
        for lateral, skip, merge in zip(self.lateral, self.skip, self.merge):
            up = F.interpolate(lateral(y), scale_factor=2, mode="nearest")
            y = merge(up + skip(levels.pop()))
        with torch.autocast(device_type=y.device.type, enabled=False):
            y = torch.sigmoid(self.head(y.float()))
            return F.interpolate(y, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)
