"""Training batches: augmented crops and their position-map labels, rasterised on the fly.

A label is a linear function of the 3DMM parameters: every output pixel lies in one BFM triangle at
fixed barycentric weights, so its position is ``sR @ (M_pix @ [1, α]) + t`` with a per-pixel basis
``M_pix`` (P, 3, 51) precomputed once. Rasterising a batch is one BLAS product (≈2 ms), so labels
need no disk cache beyond the parameters, and augmentation is exact: the same similarity warps the
crop and the label's x, y (z scales with it).

Augmentation (PRNet §3.3, plus flips): in-plane rotation, scale, translation, colour per channel,
synthetic occluders, horizontal flip through the layout's mirror symmetry (the layout is left/right
symmetric, so flipping the map's columns is the mirror map). Four strengths (:data:`AUGMENTATIONS`):
PRNet's full ranges ("paper", runs 1–2); "mild" (runs 3–11), because on this CPU the network
underfits (training error ≈ dev error), so the task it trains on should be no wider than what the
dev set and the engine's crops show; "light", narrower still, for the last epochs of a run (the
engine's settled crops are un-rotated and within a few % of the roi; docs/training-journal.md); "narrow",
narrower again (run 13); "light-stretch", light plus a random face width (run 16).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from engine.layout import UVLayout
from engine.readout import output_mask, output_weights

from .bfm import BFMBasis, BFMTopology
from .layout_builder import uv_pixels
from .teacher import TEACHER_INPUT, split_params
from .uv_raster import rasterize_uv

OCCLUDER_SIZE = (0.1, 0.4)  # occluder side as a fraction of the crop
FLIP_PROB = 0.5


@dataclass(frozen=True, slots=True)
class Augmentation:
    """Ranges of the random similarity and photometric changes applied to a training crop."""

    rotation_deg: float  # in-plane rotation, uniform in ±rotation_deg
    scale_range: tuple[float, float]  # face scale factor, uniform
    shift_fraction: float  # translation, uniform in ±shift_fraction of the crop side, per axis
    colour_range: tuple[float, float]  # gain per RGB channel, uniform
    occluder_prob: float  # chance of one synthetic occluder per crop
    # horizontal stretch along the crop's own x axis (before the rotation), uniform; z is not
    # stretched: an orthographic view of a face that is that much wider or narrower
    stretch_range: tuple[float, float] = (1.0, 1.0)


AUGMENTATIONS = {
    "paper": Augmentation(45.0, (0.9, 1.2), 0.10, (0.6, 1.4), 0.4),  # PRNet §3.3 (runs 1–2)
    # dev rolls are mostly < 20° and the engine's crops are not de-rotated; the detector's first
    # re-crop box varies by about ±10 % around the roi box (runs 3–11)
    "mild": Augmentation(30.0, (0.9, 1.15), 0.08, (0.7, 1.3), 0.25),
    # the engine's settled crops: re-cropped from the network's own landmarks (a few % off the roi),
    # shift averaging spans ±3 %, rolls beyond 15° are rare on the dev set
    "light": Augmentation(15.0, (0.95, 1.08), 0.04, (0.8, 1.2), 0.1),
    # narrower again, to find where narrowing the task stops paying; the settled crops' own scatter
    # is about ±3 %
    "narrow": Augmentation(10.0, (0.97, 1.05), 0.03, (0.85, 1.15), 0.05),
    # light plus ±8 % face width (run 16): on new profiles the network draws the face ≈4 % narrower
    # than its labels (nose less protruding, hidden contour further back) but not on its training
    # crops, i.e. it recalls widths more than it reads them; a stretched crop can only be fitted by
    # reading the width from the pixels
    "light-stretch": Augmentation(15.0, (0.95, 1.08), 0.04, (0.8, 1.2), 0.1, (0.92, 1.08)),
}


@dataclass(frozen=True, slots=True, eq=False)
class LabelBasis:
    size: int
    pixels: np.ndarray  # (P,) flat pixel ids at the output size, covered and inside output_mask
    basis: np.ndarray  # (P·3, 51) float32: [mean | W_shp | W_exp] interpolated at each pixel
    weights: np.ndarray  # (s, s) float32 loss weights, 0 where there is no label


def build_label_basis(topology: BFMTopology, basis: BFMBasis, layout: UVLayout, out_size: int) -> LabelBasis:
    raster = rasterize_uv(uv_pixels(topology, out_size), topology.face_triangles, out_size)
    weights = output_weights(layout, out_size)
    keep = output_mask(layout, out_size).ravel()[raster.pixels]
    pix, vid, bary = raster.pixels[keep], raster.vertex_ids[keep], raster.bary[keep]
    full = np.concatenate([basis.mean[:, None], basis.w_shp, basis.w_exp], axis=1).reshape(-1, 3, 51)
    m = np.einsum("pk,pkcn->pcn", bary, full[vid]).astype(np.float32)  # (P, 3, 51)
    covered = np.zeros(out_size * out_size, bool)
    covered[pix] = True
    w = weights * covered.reshape(out_size, out_size)
    w = np.minimum(w, w[:, ::-1])  # symmetric, so that a flipped label is defined wherever it is weighted
    return LabelBasis(size=out_size, pixels=pix, basis=m.reshape(-1, 51), weights=w.astype(np.float32))


def label_vertices(lb: LabelBasis, params: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """(B, 62) → (B, P, 3) float32 positions of the labelled pixels in the 120-crop frame (y down);
    ``rows`` (P',) picks some of them (indices into ``lb.pixels``)."""
    s_r, t, a_shp, a_exp = split_params(params)
    coeffs = np.concatenate([np.ones((len(params), 1)), a_shp, a_exp], axis=1).astype(np.float32)
    basis = lb.basis
    if rows is not None:
        n = basis.shape[1]
        basis = basis.reshape(-1, 3, n)[rows].reshape(-1, n)
    shape = (basis @ coeffs.T).T.reshape(len(params), -1, 3)  # (B, P, 3) BFM crop frame, y up
    v = np.einsum("bij,bpj->bpi", s_r.astype(np.float32), shape) + t[:, None, :].astype(np.float32)
    v[..., 0] -= 1.0
    v[..., 1] = TEACHER_INPUT - v[..., 1]
    v[..., 2] -= 1.0
    return v


def plain_resize(out_size: int) -> tuple[np.ndarray, float]:
    """(2, 3) affine 120-crop px → output px of the pixel-centre-exact resize, x' = (x + ½)·k − ½,
    and its scale k = out_size / 120."""
    k = out_size / TEACHER_INPUT
    return np.array([[k, 0, 0.5 * k - 0.5], [0, k, 0.5 * k - 0.5]]), k


def random_similarity(
    rng: np.random.Generator, out_size: int, augment: Augmentation | None
) -> tuple[np.ndarray, float]:
    """(2, 3) affine 120-crop px → output px and its scale factor k (a plain resize without ``augment``).

    The affine is k · R(θ) · diag(stretch, 1) plus a shift; label z scales by k alone."""
    if augment is None:
        return plain_resize(out_size)
    base = out_size / TEACHER_INPUT
    theta = np.deg2rad(rng.uniform(-augment.rotation_deg, augment.rotation_deg))
    k = base * rng.uniform(*augment.scale_range)
    shift = rng.uniform(-augment.shift_fraction, augment.shift_fraction, 2) * out_size
    c, s = np.cos(theta) * k, np.sin(theta) * k
    lo, hi = augment.stretch_range
    # drawn only when the range has width, so the presets without a stretch keep the random
    # stream (and the seeded runs) they had before the stretch existed
    stretch = rng.uniform(lo, hi) if hi > lo else lo
    a = np.array([[c, -s], [s, c]]) @ np.diag([stretch, 1.0])
    centre_in = np.full(2, (TEACHER_INPUT - 1) / 2)
    centre_out = np.full(2, (out_size - 1) / 2) + shift
    return np.concatenate([a, (centre_out - a @ centre_in)[:, None]], axis=1), k


def add_occluder(img: np.ndarray, rng: np.random.Generator) -> None:
    s = img.shape[0]
    w, h = (rng.uniform(*OCCLUDER_SIZE, 2) * s).astype(int)
    cx, cy = rng.integers(0, s, 2)
    colour = tuple(int(c) for c in rng.integers(0, 256, 3))
    if rng.random() < 0.5:
        cv2.rectangle(img, (int(cx - w // 2), int(cy - h // 2)), (int(cx + w // 2), int(cy + h // 2)), colour, -1)
    else:
        cv2.ellipse(
            img, (int(cx), int(cy)), (max(w // 2, 1), max(h // 2, 1)), float(rng.uniform(0, 180)), 0, 360, colour, -1
        )


def make_batch(
    crops_rgb: np.ndarray,
    params: np.ndarray,
    lb: LabelBasis,
    rng: np.random.Generator,
    *,
    augment: Augmentation | None,
) -> tuple[np.ndarray, np.ndarray]:
    """→ images (B, s, s, 3) uint8 RGB, targets (B, s, s, 3) float32 output px (z min 0; 0 off-label);
    ``augment=None``: the crops resized, unflipped, unchanged in colour."""
    s = lb.size
    verts = label_vertices(lb, params)
    images = np.empty((len(params), s, s, 3), np.uint8)
    targets = np.zeros((len(params), s * s, 3), np.float32)
    for i in range(len(params)):
        m, k = random_similarity(rng, s, augment)
        img = cv2.warpAffine(crops_rgb[i], m, (s, s), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
        v = verts[i]
        xy = v[:, :2] @ m[:, :2].T.astype(np.float32) + m[:, 2].astype(np.float32)
        z = v[:, 2] * k
        pos = np.concatenate([xy, z[:, None]], axis=1)
        if augment is not None:
            img = np.clip(img * rng.uniform(*augment.colour_range, 3), 0, 255).astype(np.uint8)
            if rng.random() < augment.occluder_prob:
                add_occluder(img, rng)
        pos[:, 2] -= pos[:, 2].min()
        target = targets[i]
        target[lb.pixels] = pos
        if augment is not None and rng.random() < FLIP_PROB:
            img = np.ascontiguousarray(img[:, ::-1])
            t = target.reshape(s, s, 3)[:, ::-1].copy()
            t[..., 0] = np.where(lb.weights > 0, (s - 1) - t[..., 0], 0.0)
            targets[i] = t.reshape(-1, 3)
        images[i] = img
    return images, targets.reshape(-1, s, s, 3)
