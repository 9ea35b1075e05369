"""Reading a network's output map at the layout's mesh pixels and landmarks, at any output size.

A model may predict its position map at a smaller side s than the layout's S (e.g. 128 for a 256
layout). The map is then read at the exact layout coordinates, scaled by (s − 1)/(S − 1), with the
mask-aware bilinear read-out of :mod:`engine.position_map`. Which output pixels are trusted is a
function of the layout alone (:func:`output_mask`), used identically by training (loss mask) and at
run time (read-out mask), so no pixel the network was never trained on is ever read.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .layout import UVLayout
from .mesh import vertex_uv_px
from .position_map import MapSampler
from .surface_readout import SurfaceReadout

# Loss weights at the output size (paper Fig. 4), matching training.layout_builder.
W_LANDMARK, W_FEATURE, W_FACE = 16.0, 4.0, 3.0


def _layout_coords(layout: UVLayout, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Layout-pixel (u, v) of every output pixel centre, as two (s, s) arrays."""
    f = (layout.size - 1) / (out_size - 1)
    g = np.arange(out_size) * f
    return np.meshgrid(g, g, indexing="xy")


def output_mask(layout: UVLayout, out_size: int) -> np.ndarray:
    """(s, s) bool: output pixels whose surrounding layout pixels (floor and ceil) are all face."""
    if out_size == layout.size:
        return layout.face_mask.copy()
    u, v = _layout_coords(layout, out_size)
    m = layout.face_mask
    s = layout.size - 1
    ok = np.ones((out_size, out_size), bool)
    for uu in (np.floor(u), np.ceil(u)):
        for vv in (np.floor(v), np.ceil(v)):
            ok &= m[np.clip(vv, 0, s).astype(int), np.clip(uu, 0, s).astype(int)]
    return ok


def output_weights(layout: UVLayout, out_size: int) -> np.ndarray:
    """(s, s) float32 loss weights at the output size: 16 on the 2×2 read-out pixels of each landmark,
    4 on eyes/nose/mouth, 3 on the rest of the face, 0 outside :func:`output_mask`."""
    mask = output_mask(layout, out_size)
    u, v = _layout_coords(layout, out_size)
    near = layout.weight_mask[np.rint(v).astype(int), np.rint(u).astype(int)]
    w = np.where(mask, W_FACE, 0.0).astype(np.float32)
    w[mask & (near == W_FEATURE)] = W_FEATURE
    rows, cols = landmark_pixels(layout.keypoints_uv * (out_size - 1) / (layout.size - 1), mask)
    w[rows, cols] = W_LANDMARK
    return w


def landmark_pixels(keypoints_uv: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of the in-mask pixels of the 2×2 neighbourhoods the bilinear read-out of each
    keypoint (K, 2) (u, v) uses: where the loss weighs landmarks."""
    s0, s1 = mask.shape
    u0, v0 = np.floor(keypoints_uv[:, 0]).astype(int), np.floor(keypoints_uv[:, 1]).astype(int)
    vv = np.clip(np.concatenate([v0, v0, v0 + 1, v0 + 1]), 0, s0 - 1)
    uu = np.clip(np.concatenate([u0, u0 + 1, u0, u0 + 1]), 0, s1 - 1)
    keep = mask[vv, uu]
    return vv[keep], uu[keep]


@dataclass(frozen=True, slots=True, eq=False)
class Readout:
    """Precomputed read-outs of an (s, s, 3) output map: the mesh's vertices (the smooth surface
    read-out of engine.surface_readout, at engine.mesh.vertex_uv_px) and the 68 landmarks (mask-aware
    bilinear at the layout's keypoints)."""

    out_size: int
    vertices: SurfaceReadout  # → (N, 3), one per layout face pixel
    keypoints: MapSampler  # → (68, 3)

    @classmethod
    def build(cls, layout: UVLayout, out_size: int, *, base_map: np.ndarray | None = None) -> Readout:
        """``base_map`` (s, s, 3): the model's mean map (engine.model ``mean_map``), or None."""
        mask = output_mask(layout, out_size)
        factor = (out_size - 1) / (layout.size - 1)
        return cls(
            out_size=out_size,
            vertices=SurfaceReadout.build(mask, vertex_uv_px(layout) * factor, base=base_map),
            keypoints=MapSampler.build(mask, layout.keypoints_uv * factor),
        )
