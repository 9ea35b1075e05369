"""ResFCN: the encoder-decoder of PRNet (Feng et al., ECCV 2018, §3.2), with TF "SAME" padding.

Encoder: one 4×4 conv (3 → 16) and 10 residual blocks down to (S/32)×(S/32)×512. Decoder: 17
transposed 4×4 convs back to S×S×3, sigmoid output. Every conv and transposed conv is bias-free and
followed by batch norm (gamma and beta), except each block's last 1×1 conv, whose BN is the block's
own, applied after the sum with the shortcut. At input 256 and width 1 this is exactly the official
checkpoint: 149 trainable tensors, 13,353,618 trainable parameters.

TensorFlow's "SAME" padding for a 4×4 kernel is asymmetric at stride 1 (1 before, 2 after), which
plain PyTorch padding cannot express; :class:`SamePadConv` and :class:`SamePadDeconv` reproduce it so
that imported official weights give the same numbers. Tensors are NCHW; use ``channels_last``
memory format on CPU (≈20× faster here).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

KERNEL = 4  # the paper uses 4×4 kernels everywhere
BN_EPS = 1e-3  # TF-slim batch norm epsilon (the official checkpoint was trained with it)
BN_MOMENTUM = 0.01  # PyTorch convention (= 1 − TF decay 0.99); only affects training

# (out channels, stride) of the 10 residual blocks and the 17 transposed convs, at width 1.
ENCODER_BLOCKS = ((32, 2), (32, 1), (64, 2), (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1))
DECODER = (
    (512, 1),
    (256, 2),
    (256, 1),
    (256, 1),
    (128, 2),
    (128, 1),
    (128, 1),
    (64, 2),
    (64, 1),
    (64, 1),
    (32, 2),
    (32, 1),
    (16, 2),
    (16, 1),
    (3, 1),
    (3, 1),
    (3, 1),
)
STEM_CHANNELS = 16
OUT_CHANNELS = 3


def _same_pads(kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) padding of TF "SAME" for inputs divisible by the stride."""
    total = max(kernel - stride, 0)
    return total // 2, total - total // 2


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class SamePadConv(nn.Module):
    """Bias-free conv with TF "SAME" padding."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1) -> None:
        super().__init__()
        b, a = _same_pads(kernel, stride)
        # symmetric padding is done inside the conv (fast path); only the asymmetric case pads first
        self.pads = (0, 0) if a == b else (b, a)
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding=b if a == b else 0, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, a = self.pads
        if a:
            x = F.pad(x, (b, a, b, a))
        return self.conv(x)


class SamePadDeconv(nn.Module):
    """Bias-free transposed conv, the exact adjoint of :class:`SamePadConv` (output = input × stride)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1) -> None:
        super().__init__()
        b, a = _same_pads(kernel, stride)
        self.pads = (0, 0) if a == b else (b, a)
        self.deconv = nn.ConvTranspose2d(cin, cout, kernel, stride, padding=b if a == b else 0, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.deconv(x)
        b, a = self.pads
        if not a:
            return y
        h, w = y.shape[-2:]
        return y[..., b : h - a, b : w - a]


class ConvBNReLU(nn.Sequential):
    def __init__(self, cin: int, cout: int, stride: int = 1, *, transpose: bool = False, act: str = "relu") -> None:
        layer = (SamePadDeconv if transpose else SamePadConv)(cin, cout, KERNEL, stride)
        super().__init__(layer, _bn(cout), nn.ReLU(inplace=True) if act == "relu" else nn.Sigmoid())


class ResBlock(nn.Module):
    """1×1 (in → out/2) + BN + ReLU, 4×4 strided (out/2 → out/2) + BN + ReLU, 1×1 (out/2 → out),
    plus a 1×1 strided projection shortcut when the shape changes; then BN + ReLU of the sum."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        mid = cout // 2
        self.conv1 = SamePadConv(cin, mid, 1)
        self.bn1 = _bn(mid)
        self.conv2 = SamePadConv(mid, mid, KERNEL, stride)
        self.bn2 = _bn(mid)
        self.conv3 = SamePadConv(mid, cout, 1)
        self.shortcut = SamePadConv(cin, cout, 1, stride) if (stride != 1 or cin != cout) else None
        self.bn_out = _bn(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)), inplace=True)
        y = F.relu(self.bn2(self.conv2(y)), inplace=True)
        y = self.conv3(y)
        y = y + (x if self.shortcut is None else self.shortcut(x))
        return F.relu(self.bn_out(y), inplace=True)


class ResFCN(nn.Module):
    """(B, 3, S, S) float in [0, 1] → (B, 3, S, S) in [0, 1] (sigmoid), S divisible by 32.

    ``width`` scales every channel count except the 3-channel head; the first three layers that
    produce 3 channels keep 3 channels at any width, as in the paper.
    """

    def __init__(self, *, input_size: int = 256, width: float = 1.0) -> None:
        super().__init__()
        if input_size % 32:
            raise ValueError(f"ResFCN input size must be divisible by 32, got {input_size}")
        self.input_size = input_size
        self.width = width

        def ch(c: int) -> int:
            return c if c == OUT_CHANNELS else max(4, int(round(c * width)))

        self.stem = ConvBNReLU(3, ch(STEM_CHANNELS))
        blocks, cin = [], ch(STEM_CHANNELS)
        for cout, stride in ENCODER_BLOCKS:
            blocks.append(ResBlock(cin, ch(cout), stride))
            cin = ch(cout)
        self.encoder = nn.Sequential(*blocks)
        layers = []
        for i, (cout, stride) in enumerate(DECODER):
            last = i == len(DECODER) - 1
            layers.append(ConvBNReLU(cin, ch(cout), stride, transpose=True, act="sigmoid" if last else "relu"))
            cin = ch(cout)
        self.decoder = nn.Sequential(*layers)

    @property
    def output_norm(self) -> nn.BatchNorm2d:
        """The batch norm before the sigmoid (engine.model starts its gain small)."""
        return self.decoder[-1][1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[-1] != self.input_size or x.shape[-2] != self.input_size:
            raise ValueError(f"ResFCN expects (B, 3, {self.input_size}, {self.input_size}), got {tuple(x.shape)}")
        h = self.decoder[:-1](self.encoder(self.stem(x)))
        # The head runs in fp32 even under autocast: a bf16 sigmoid has a spacing of 2⁻⁸ near 1,
        # i.e. ≈1 px of a 256 px position map — far more than the accuracy we train for.
        with torch.autocast(device_type=h.device.type, enabled=False):
            return self.decoder[-1](h.float())


def count_trainable(module: nn.Module) -> tuple[int, int]:
    """(number of trainable tensors, number of trainable scalars)."""
    params = [p for p in module.parameters() if p.requires_grad]
    return len(params), sum(p.numel() for p in params)
