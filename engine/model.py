"""The network as the runtime uses it: ResFCN plus its output parameterisation.

The ResFCN ends in a sigmoid, ``y ∈ [0, 1]``. A bundle says how ``y`` becomes a position map in the
crop frame (crop pixels of the input size S, x right, y down, z toward the camera):

* ``"sigmoid_scale"`` (PRNet): ``pos = y · scale · S`` — the official checkpoint uses scale 1.1;
* ``"mean_residual"`` (ours): ``pos = mean_map + (y − ½) · scale · S`` where ``mean_map`` is the mean
  training label (a buffer saved with the weights). With the last batch norm's gain started small
  the untrained network already outputs about the mean face, and training only learns the residual —
  this converges much faster on CPU than learning the whole face from a grey start.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .light_network import LightFCN
from .network import ResFCN

OUTPUT_KINDS = ("sigmoid_scale", "mean_residual")
ARCHITECTURES = {"ResFCN": ResFCN, "LightFCN": LightFCN}  # bundle.json "network" "arch" → network class
INIT_HEAD_GAIN = 0.05  # initial output noise ≈ gain/4 · span ≈ 3 px at a 128 px crop


class PositionMapNet(nn.Module):
    """(B, 3, S, S) RGB in [0, 1] → (B, 3, S, S) float32 position map in crop pixels.

    ``arch`` names the network (:data:`ARCHITECTURES`): ResFCN, the paper's (the default model), or
    LightFCN (the fast model, engine.light_network)."""

    def __init__(
        self, *, input_size: int, width: float, output_kind: str, output_scale: float, arch: str = "ResFCN"
    ) -> None:
        super().__init__()
        if output_kind not in OUTPUT_KINDS:
            raise ValueError(f"unknown output kind {output_kind!r}, expected one of {OUTPUT_KINDS}")
        if arch not in ARCHITECTURES:
            raise ValueError(f"unknown network {arch!r}, expected one of {tuple(ARCHITECTURES)}")
        self.arch = arch
        self.net = ARCHITECTURES[arch](input_size=input_size, width=width)
        self.input_size = input_size
        self.output_kind = output_kind
        self.output_scale = float(output_scale)
        if output_kind == "mean_residual":
            # (1, 3, S, S) so that .to(memory_format=channels_last) converts it with the weights: an
            # NCHW buffer would make the sum NCHW and push every backward conv onto a ~15× slower path
            self.register_buffer("mean_map", torch.zeros(1, 3, input_size, input_size))
        else:
            self.mean_map = None

    def mean_map_array(self) -> np.ndarray | None:
        """(S, S, 3) float32 the mean map in crop px (``"mean_residual"`` models), else None."""
        if self.mean_map is None:
            return None
        return self.mean_map[0].detach().float().cpu().permute(1, 2, 0).numpy()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.net(x).float()
        span = self.output_scale * self.input_size
        if self.mean_map is None:
            return y * span
        return self.mean_map + (y - 0.5) * span

    def init_near_mean(self, gain: float = INIT_HEAD_GAIN) -> None:
        """Start the last batch norm at a small gain and zero bias: the untrained output is the mean
        map ± a few pixels, while gradients still reach every layer from step 0 (a zero gain would
        block them until the gain itself had grown)."""
        last_bn = self.net.output_norm
        nn.init.constant_(last_bn.weight, gain)
        nn.init.zeros_(last_bn.bias)


def crops_to_input(
    crops: np.ndarray,
    device: str | torch.device = "cpu",
    memory_format: torch.memory_format = torch.channels_last,
) -> torch.Tensor:
    """(B, S, S, 3) uint8 RGB crops → (B, 3, S, S) float in [0, 1], in ``memory_format`` (channels_last,
    the fast layout for inference, unless asked otherwise)."""
    x = torch.from_numpy(np.ascontiguousarray(crops)).to(device).permute(0, 3, 1, 2).float().div_(255.0)
    return x.contiguous(memory_format=memory_format)


def unmirror_maps(maps: torch.Tensor, crop_size: int) -> torch.Tensor:
    """(B, 3, S, S) maps predicted for mirrored crops → the maps of the original crops.

    Valid for a layout that mirrors by columns (engine.layout): the column flip takes every face
    pixel to its mirror point, and x (crop px, pixel centres 0 … crop_size − 1) mirrors to
    (crop_size − 1) − x; y and z are unchanged.
    """
    out = maps.flip(-1)
    return torch.cat([(crop_size - 1) - out[:, :1], out[:, 1:]], dim=1)


@torch.no_grad()
def predict_position_maps(
    model: nn.Module,
    crops: np.ndarray,
    *,
    amp_dtype: torch.dtype | None = None,
    batch: int | None = None,
    flip_average: bool = False,
) -> np.ndarray:
    """(B, S, S, 3) uint8 RGB crops → (B, S, S, 3) float32 position maps in crop px, ``batch`` at a time,
    under autocast to ``amp_dtype`` when given (the head stays fp32, see engine.network).

    ``flip_average`` also runs every crop mirrored (in the same batch) and averages its un-mirrored
    map (:func:`unmirror_maps`) with the direct one: twice the network work, and the result is
    exactly mirror-symmetric in the input. Only meaningful for a layout that mirrors by columns.
    """
    device = next(model.parameters()).device
    step = batch or max(len(crops), 1)
    out = []
    for i in range(0, len(crops), step):
        x = crops_to_input(crops[i : i + step], device)
        if flip_average:
            x = torch.cat([x, x.flip(-1)])
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            y = model(x).float()
        if flip_average:
            direct, mirrored = y.chunk(2)
            y = 0.5 * (direct + unmirror_maps(mirrored, x.shape[-1]))
        out.append(y.permute(0, 2, 3, 1).cpu().numpy())
    return np.concatenate(out)
