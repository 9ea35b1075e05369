"""Training batches made on the training device: :func:`training.dataset.make_batch` in torch.

On a GPU the numpy/OpenCV batch (one crop at a time in Python) would starve the network, so this
module makes the same batches with batched tensor operations on whatever device holds the crops:
the same random similarity (rotation, scale, shift, stretch), the same exact labels (a position map
is a linear function of the 62 parameters, training.dataset), the same colour gains,
occluders and mirror flips, from the same :class:`Augmentation` presets. Only the random stream
differs (a torch generator instead of numpy's), and the image warp is ``grid_sample``'s bilinear
read instead of OpenCV's fixed-point one (within one grey level, tested).

Frames: crops are 120-crop pixels (x right, y down, pixel centres at integers); a similarity maps
them to output pixels of side s; labels are (x, y, z) in output px with z shifted to min 0.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .dataset import FLIP_PROB, OCCLUDER_SIZE, Augmentation, LabelBasis, plain_resize
from .teacher import TEACHER_INPUT


class TorchBatcher:
    """Crops, parameters and the label basis held on ``device``; :meth:`batch` draws augmented batches."""

    def __init__(
        self, crops_rgb: np.ndarray, params: np.ndarray, lb: LabelBasis, device: str | torch.device, seed: int
    ) -> None:
        """``crops_rgb`` (N, 120, 120, 3) uint8 RGB, ``params`` (N, 62) refined teacher parameters."""
        if crops_rgb.shape[1:] != (TEACHER_INPUT, TEACHER_INPUT, 3) or len(crops_rgb) != len(params):
            raise ValueError(
                f"need (N, {TEACHER_INPUT}, {TEACHER_INPUT}, 3) crops and (N, 62) params, "
                f"got {crops_rgb.shape} and {params.shape}"
            )
        self.device = torch.device(device)
        self.size = lb.size
        self.crops = torch.from_numpy(np.ascontiguousarray(crops_rgb)).to(self.device)
        self.params = torch.from_numpy(np.asarray(params, np.float32)).to(self.device)
        self.basis = torch.from_numpy(lb.basis).to(self.device)  # (P·3, 51)
        self.pixels = torch.from_numpy(lb.pixels.astype(np.int64)).to(self.device)
        self.labelled = torch.from_numpy(lb.weights > 0).to(self.device)  # (s, s)
        self.gen = torch.Generator(self.device).manual_seed(seed)
        s = self.size
        g = torch.arange(s, device=self.device, dtype=torch.float32)
        self._yy, self._xx = torch.meshgrid(g, g, indexing="ij")  # output pixel centres

    def _uniform(self, lo: float, hi: float, *shape: int) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(shape, generator=self.gen, device=self.device)

    def similarities(self, n: int, augment: Augmentation | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(n, 2, 3) affines 120-crop px → output px and their scales k (n,), drawn as
        :func:`training.dataset.random_similarity` draws them (a plain resize without ``augment``)."""
        if augment is None:
            m, k = plain_resize(self.size)
            m = torch.tensor(m, dtype=torch.float32, device=self.device)
            return m.expand(n, 2, 3).clone(), torch.full((n,), k, device=self.device)
        base = self.size / TEACHER_INPUT
        centre_in = (TEACHER_INPUT - 1) / 2
        theta = torch.deg2rad(self._uniform(-augment.rotation_deg, augment.rotation_deg, n))
        k = base * self._uniform(*augment.scale_range, n)
        shift = self._uniform(-augment.shift_fraction, augment.shift_fraction, n, 2) * self.size
        stretch = self._uniform(*augment.stretch_range, n)
        c, s = torch.cos(theta) * k, torch.sin(theta) * k
        a = torch.stack([torch.stack([c * stretch, -s], -1), torch.stack([s * stretch, c], -1)], -2)  # (n, 2, 2)
        centre_out = (self.size - 1) / 2 + shift
        b = centre_out - a.sum(-1) * centre_in  # centre_out − a @ (centre_in, centre_in)
        return torch.cat([a, b[..., None]], -1), k

    def label_vertices(self, params: torch.Tensor) -> torch.Tensor:
        """(B, 62) → (B, P, 3) labelled-pixel positions in the 120-crop frame (y down), as
        :func:`training.dataset.label_vertices`."""
        m = params[:, :12].reshape(-1, 3, 4)
        coeffs = torch.cat([torch.ones_like(params[:, :1]), params[:, 12:]], 1)  # (B, 51)
        shape = (coeffs @ self.basis.T).reshape(len(params), -1, 3)  # (B, P, 3) BFM crop frame, y up
        v = shape @ m[:, :, :3].transpose(1, 2) + m[:, None, :, 3]
        return torch.stack([v[..., 0] - 1.0, TEACHER_INPUT - v[..., 1], v[..., 2] - 1.0], -1)

    def warp(self, idx: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """(B,) crop ids, (B, 2, 3) affines → (B, 3, s, s) float images, grey levels rounded to
        integers as OpenCV's uint8 warp rounds them; outside the crop: black."""
        img = self.crops[idx].permute(0, 3, 1, 2).float()
        a, b = m[:, :, :2], m[:, :, 2]
        det = a[:, 0, 0] * a[:, 1, 1] - a[:, 0, 1] * a[:, 1, 0]
        inv = (
            torch.stack([torch.stack([a[:, 1, 1], -a[:, 0, 1]], -1), torch.stack([-a[:, 1, 0], a[:, 0, 0]], -1)], -2)
            / det[:, None, None]
        )  # output → input px
        p = torch.stack([self._xx, self._yy], -1).reshape(1, -1, 2) - b[:, None, :]
        src = p @ inv.transpose(1, 2)  # (B, s·s, 2) input px
        grid = (2 * src + 1) / TEACHER_INPUT - 1  # pixel centres → grid_sample's align_corners=False frame
        out = F.grid_sample(
            img, grid.reshape(-1, self.size, self.size, 2), mode="bilinear", padding_mode="zeros", align_corners=False
        )
        return out.round_()

    def targets(self, idx: torch.Tensor, m: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """(B, s, s, 3) labels in output px under the affines (z scaled by k, shifted to min 0; 0 off-label)."""
        v = self.label_vertices(self.params[idx])
        xy = v[..., :2] @ m[:, :, :2].transpose(1, 2) + m[:, None, :, 2]
        z = v[..., 2] * k[:, None]
        pos = torch.cat([xy, (z - z.min(1, keepdim=True).values)[..., None]], -1)
        out = torch.zeros(len(idx), self.size * self.size, 3, device=self.device)
        out[:, self.pixels] = pos
        return out.reshape(-1, self.size, self.size, 3)

    def _occlude(self, img: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
        """One rectangle or rotated ellipse of a random colour (sizes as OCCLUDER_SIZE) on each image
        where ``chosen`` (B,) is true; drawn for all and masked, so the device never waits on the host."""
        n, s = len(img), self.size
        wh = torch.floor(self._uniform(*OCCLUDER_SIZE, n, 2) * s)
        half = torch.clamp(torch.floor(wh / 2), min=1.0)
        centre = torch.randint(0, s, (n, 2), generator=self.gen, device=self.device).float()
        colour = torch.randint(0, 256, (n, 3), generator=self.gen, device=self.device).float()
        is_rect = self._uniform(0, 1, n) < 0.5
        angle = torch.deg2rad(self._uniform(0, 180, n))
        dx = self._xx[None] - centre[:, 0, None, None]
        dy = self._yy[None] - centre[:, 1, None, None]
        rect_half = torch.floor(wh / 2)
        rect = (dx.abs() <= rect_half[:, 0, None, None]) & (dy.abs() <= rect_half[:, 1, None, None])
        ca, sa = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
        ex = (dx * ca + dy * sa) / half[:, 0, None, None]
        ey = (-dx * sa + dy * ca) / half[:, 1, None, None]
        ellipse = ex * ex + ey * ey <= 1.0
        mask = torch.where(is_rect[:, None, None], rect, ellipse) & chosen[:, None, None]
        return torch.where(mask[:, None], colour[:, :, None, None], img)

    def batch(self, idx: torch.Tensor, augment: Augmentation | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(B,) crop ids → images (B, 3, s, s) float grey levels 0–255, targets (B, s, s, 3) output px.

        ``augment=None``: the crops resized, unflipped, unchanged in colour."""
        idx = idx.to(self.device)
        n = len(idx)
        m, k = self.similarities(n, augment)
        img = self.warp(idx, m)
        tgt = self.targets(idx, m, k)
        if augment is None:
            return img, tgt
        gain = self._uniform(*augment.colour_range, n, 3)
        img = torch.floor(torch.clamp(img * gain[:, :, None, None], 0, 255))
        img = self._occlude(img, self._uniform(0, 1, n) < augment.occluder_prob)
        flip = self._uniform(0, 1, n) < FLIP_PROB
        flipped_t = tgt.flip(2)
        flipped_t[..., 0] = torch.where(self.labelled, (self.size - 1) - flipped_t[..., 0], 0.0)
        img = torch.where(flip[:, None, None, None], img.flip(3), img)
        tgt = torch.where(flip[:, None, None, None], flipped_t, tgt)
        return img, tgt
