"""Widen a trained network without changing what it computes (Net2WiderNet, Chen et al., ICLR 2016).

A wider ResFCN starts where a trained narrower one stands instead of on the mean-face plateau that
every from-scratch run crosses first (≥ 600 steps at the mean-face loss on this CPU, see
docs/training-journal.md). Channel ``j`` of a widened layer copies channel ``j mod c`` of the narrow one
(``c`` = its channel count); every weight that *reads* a widened channel is divided by the number of
copies of its source, so the sum a layer computes is unchanged. Batch norm sees identical copies,
so its batch statistics (training) and running statistics (eval) are those of the source channel:
the widened network is the same function in both modes. Residual sums stay consistent because the
block input and the block output use the same channel map.

Copies get identical gradients and would stay copies forever: ``noise`` adds Gaussian noise of that
fraction of each weight tensor's standard deviation to break the symmetry (0 keeps the function).
"""

from __future__ import annotations

import torch
from torch import nn

from engine.model import PositionMapNet

SYMMETRY_NOISE = 0.01  # of each tensor's std: ≪ the trained weights, ≫ float rounding


def _source_map(narrow: int, wide: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(wide,) index of each wide channel's source, and (wide,) number of copies of that source."""
    if wide < narrow:
        raise ValueError(f"cannot widen {narrow} channels to {wide}")
    src = torch.arange(wide) % narrow
    copies = torch.bincount(src, minlength=narrow).float()
    return src, copies[src]


def widen(narrow: PositionMapNet, width: float, *, noise: float = SYMMETRY_NOISE, seed: int = 0) -> PositionMapNet:
    """A PositionMapNet of ``width`` (≥ the narrow one's) computing what ``narrow`` computes (± noise)."""
    if width < narrow.net.width:
        raise ValueError(f"width {width} is narrower than the network's {narrow.net.width}")
    wide = PositionMapNet(
        input_size=narrow.input_size, width=width, output_kind=narrow.output_kind, output_scale=narrow.output_scale
    )
    gen = torch.Generator().manual_seed(seed)
    small = dict(narrow.named_modules())
    with torch.no_grad():
        for name, big in wide.named_modules():
            if isinstance(big, (nn.Conv2d, nn.ConvTranspose2d)):
                # Conv2d weights are (out, in, h, w); ConvTranspose2d weights are (in, out, h, w)
                in_dim, out_dim = (0, 1) if isinstance(big, nn.ConvTranspose2d) else (1, 0)
                w = small[name].weight.detach()
                src_in, copies_in = _source_map(w.shape[in_dim], big.weight.shape[in_dim])
                src_out, _ = _source_map(w.shape[out_dim], big.weight.shape[out_dim])
                w = w.index_select(in_dim, src_in).index_select(out_dim, src_out)
                shape = [1] * w.ndim
                shape[in_dim] = -1
                w = w / copies_in.view(shape)
                if noise:
                    w = w + noise * w.std() * torch.randn(w.shape, generator=gen)
                big.weight.copy_(w)
            elif isinstance(big, nn.BatchNorm2d):
                bn_s = small[name]
                src, _ = _source_map(bn_s.num_features, big.num_features)
                for attr in ("weight", "bias", "running_mean", "running_var"):
                    getattr(big, attr).copy_(getattr(bn_s, attr).detach()[src])
                big.num_batches_tracked.copy_(bn_s.num_batches_tracked)
        if narrow.mean_map is not None:
            wide.mean_map.copy_(narrow.mean_map)
    return wide.train(narrow.training)
