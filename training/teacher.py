"""The teacher: 3DDFA_V2's MobileNetV1 (width 0.5) regressing 62 3DMM parameters from a 120² crop.

Written from the published architecture so that ``teacher/mb05_120x120.pth`` loads strictly:
a 3×3 stride-2 stem, 13 depthwise-separable blocks (3×3 depthwise + BN + ReLU, 1×1 pointwise + BN +
ReLU), global average pooling, and two linear heads (``fc_param``: 62 parameters; ``fc_lm``: unused).

Parameters: ``p = out · std + mean``; ``p[:12]`` is the row-major 3×4 matrix [s·R | t], ``p[12:52]``
shape and ``p[52:62]`` expression coefficients. Vertices (3, V) = s·R @ (mean + W_shp α + W_exp β)
reshaped (3, V) in Fortran order, + t: the 120-crop frame with y up and 1-based offsets.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .bfm import BFMBasis
from .paths import shared_data_dir

TEACHER_INPUT = 120  # px, the crop side the teacher was trained on
TEACHER_WEIGHTS = "mb05_120x120.pth"  # the checkpoint in ../shared/data/teacher
N_PARAMS = 62
N_SHAPE, N_EXP = 40, 10
INPUT_MEAN, INPUT_STD = 127.5, 128.0  # teacher input normalisation (BGR uint8 → ≈[−1, 1])
# (name, in, out, stride) of the depthwise-separable blocks at width 0.5
BLOCKS = (
    ("dw2_1", 16, 32, 1),
    ("dw2_2", 32, 64, 2),
    ("dw3_1", 64, 64, 1),
    ("dw3_2", 64, 128, 2),
    ("dw4_1", 128, 128, 1),
    ("dw4_2", 128, 256, 2),
    ("dw5_1", 256, 256, 1),
    ("dw5_2", 256, 256, 1),
    ("dw5_3", 256, 256, 1),
    ("dw5_4", 256, 256, 1),
    ("dw5_5", 256, 256, 1),
    ("dw5_6", 256, 512, 2),
    ("dw6", 512, 512, 1),
)


class DepthwiseSeparable(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv_dw = nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False)
        self.bn_dw = nn.BatchNorm2d(cin)
        self.conv_sep = nn.Conv2d(cin, cout, 1, bias=False)
        self.bn_sep = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn_dw(self.conv_dw(x)))
        return torch.relu(self.bn_sep(self.conv_sep(x)))


class TeacherNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        for name, cin, cout, stride in BLOCKS:
            self.add_module(name, DepthwiseSeparable(cin, cout, stride))
        self.fc_param = nn.Linear(512, N_PARAMS)
        self.fc_lm = nn.Linear(512, 136)  # landmark head of the checkpoint, loaded but unused

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        for name, *_ in BLOCKS:
            x = getattr(self, name)(x)
        return self.fc_param(x.mean(dim=(2, 3)))


def load_param_stats(teacher_dir: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The teacher's parameter normalisation: mean (62,) and std (62,) float32, ``p = out · std + mean``.

    ``teacher_dir`` defaults to ``teacher/`` in the shared data. The std also scales the
    refinement's prior (``refine.refine_params``)."""
    d = Path(teacher_dir) if teacher_dir else shared_data_dir() / "teacher"
    with open(d / "param_mean_std_62d_120x120.pkl", "rb") as f:
        stats = pickle.load(f)
    return np.asarray(stats["mean"], np.float32), np.asarray(stats["std"], np.float32)


class Teacher:
    """Crops (B, 120, 120, 3) BGR uint8 → de-normalised 62-d parameters (B, 62) float32."""

    def __init__(self, teacher_dir: str | Path | None = None) -> None:
        d = Path(teacher_dir) if teacher_dir else shared_data_dir() / "teacher"
        ckpt = torch.load(d / TEACHER_WEIGHTS, map_location="cpu", weights_only=True)
        state = {k.removeprefix("module."): v for k, v in ckpt["state_dict"].items()}
        self.net = TeacherNet()
        self.net.load_state_dict(state, strict=True)
        self.net.eval()
        self.mean, self.std = load_param_stats(d)

    @torch.no_grad()
    def __call__(self, crops_bgr: np.ndarray) -> np.ndarray:
        if crops_bgr.ndim != 4 or crops_bgr.shape[1:] != (TEACHER_INPUT, TEACHER_INPUT, 3):
            raise ValueError(f"teacher expects (B, 120, 120, 3) BGR crops, got {crops_bgr.shape}")
        x = (torch.from_numpy(crops_bgr).float() - INPUT_MEAN) / INPUT_STD
        out = self.net(x.permute(0, 3, 1, 2).contiguous()).numpy()
        return out * self.std + self.mean


def split_params(params: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(B, 62) → sR (B, 3, 3), t (B, 3), alpha_shp (B, 40), alpha_exp (B, 10)."""
    p = np.asarray(params, np.float64)
    m = p[:, :12].reshape(-1, 3, 4)
    return m[:, :, :3], m[:, :, 3], p[:, 12 : 12 + N_SHAPE], p[:, 12 + N_SHAPE :]


def vertices_crop_px(params: np.ndarray, basis: BFMBasis, flat_rows: np.ndarray | None = None) -> np.ndarray:
    """(B, 62) parameters → (B, V, 3) vertices in 120-crop pixels (x right, y down, z toward camera).

    ``flat_rows`` optionally selects vertices (ids into the 53,215) to save time.
    """
    s_r, t, a_shp, a_exp = split_params(params)
    ids = np.arange(basis.mean.size // 3) if flat_rows is None else np.asarray(flat_rows)
    rows = (3 * ids[:, None] + np.arange(3)[None, :]).ravel()  # xyz-interleaved rows
    shape = basis.mean[rows][None] + a_shp @ basis.w_shp[rows].T + a_exp @ basis.w_exp[rows].T  # (B, 3V)
    v = shape.reshape(shape.shape[0], -1, 3)  # (B, V, 3)
    v = np.einsum("bij,bvj->bvi", s_r, v) + t[:, None, :]
    out = np.empty_like(v)
    out[..., 0] = v[..., 0] - 1.0
    out[..., 1] = TEACHER_INPUT - v[..., 1]
    out[..., 2] = v[..., 2] - 1.0
    return out.astype(np.float32)
