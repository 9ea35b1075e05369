"""Compute our 256×256 UV layout from the BFM topology (PRNet §3.1), written by our own code.

Region choice: the face mask is the rasterisation of the **neck-free BFM subset** (the 38,365
vertices / 76,073 triangles the teacher's 3DDFA model is fitted on). It matches PRNet's published
mask at IoU ≈ 0.91; PRNet's mask reaches a little further down the neck and around the ears. We keep
the neck-free region because it is exactly the surface our training labels are defined on: a pixel
outside it would have no teacher signal, and a 2D photo says little about the neck anyway.

Run: ``python -m training.layout_builder [--teacher DIR] -o runs/layout.npz`` (the shipped copy is
weights/default/layout.npz; a bundle written by training carries its own).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from engine.layout import UVLayout, grid_triangles
from engine.readout import landmark_pixels

from .bfm import BFMTopology, load_topology
from .uv_raster import UVRaster, rasterize_uv

LAYOUT_SIZE = 256
LAYOUT_ID = "bfm-neckfree-256-v1"
UM_PER_MM = 1000.0  # BFM coordinates are micrometres

# Loss weights of the paper (Fig. 4): landmarks : eyes/nose/mouth : rest of face : outside.
W_LANDMARK, W_FEATURE, W_FACE, W_OUTSIDE = 16.0, 4.0, 3.0, 0.0
# The eyes/nose/mouth region: convex hulls of these landmark groups, grown by a margin (map px at
# 256²) so that eyelids, nostrils and lips are inside, as in the paper's weight-mask figure.
FEATURE_GROUPS = {
    "brows_eyes": (list(range(17, 27)) + list(range(36, 48)), 9),
    "nose": (list(range(27, 36)), 7),
    "mouth": (list(range(48, 68)), 9),
}


def uv_pixels(topology: BFMTopology, size: int = LAYOUT_SIZE) -> np.ndarray:
    """(53215, 2) BFM UV → (u, v) map pixels, v flipped so that the forehead is at the top."""
    return np.stack([topology.uv[:, 0] * (size - 1), (1.0 - topology.uv[:, 1]) * (size - 1)], axis=1)


def face_raster(topology: BFMTopology, size: int = LAYOUT_SIZE) -> UVRaster:
    return rasterize_uv(uv_pixels(topology, size), topology.face_triangles, size)


def canonical_frame(vertices_um: np.ndarray) -> np.ndarray:
    """BFM (µm, y up, looking +z) → image-like frame (mm, x right, y down, z toward the camera)."""
    return np.stack([vertices_um[:, 0], -vertices_um[:, 1], vertices_um[:, 2]], axis=1) / UM_PER_MM


def weight_mask(face_mask: np.ndarray, keypoints_uv: np.ndarray) -> np.ndarray:
    size = face_mask.shape[0]
    region = np.zeros((size, size), np.uint8)
    for ids, margin in FEATURE_GROUPS.values():
        hull_only = np.zeros_like(region)
        cv2.fillConvexPoly(hull_only, cv2.convexHull(np.round(keypoints_uv[ids]).astype(np.int32)), 1)
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1, 2 * margin + 1))
        region |= cv2.dilate(hull_only, kernel)
    w = np.where(face_mask, W_FACE, W_OUTSIDE).astype(np.float32)
    w[(region > 0) & face_mask] = W_FEATURE
    rows, cols = landmark_pixels(keypoints_uv, face_mask)
    w[rows, cols] = W_LANDMARK
    return w


def build_layout(topology: BFMTopology, size: int = LAYOUT_SIZE) -> UVLayout:
    raster = face_raster(topology, size)
    face_mask = raster.mask()
    uv = uv_pixels(topology, size)
    keypoints_uv = uv[topology.keypoints].astype(np.float32)
    canonical = raster.interpolate(canonical_frame(topology.mean_shape))
    canonical -= canonical.mean(axis=0)
    mirror_uv = raster.interpolate(uv[topology.mirror])
    return UVLayout(
        layout_id=LAYOUT_ID,
        face_mask=face_mask,
        keypoints_uv=keypoints_uv,
        triangles=grid_triangles(face_mask),
        weight_mask=weight_mask(face_mask, keypoints_uv),
        canonical_vertices=canonical.astype(np.float32),
        mirror_uv=mirror_uv.astype(np.float32),
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--teacher", type=Path, default=None, help="teacher folder (default ../shared/data/teacher)")
    ap.add_argument("-o", "--output", type=Path, required=True, help="layout file to write (a bundle's layout.npz)")
    args = ap.parse_args(argv)
    layout = build_layout(load_topology(args.teacher))
    layout.save(args.output)
    print(f"wrote {args.output}: {layout.n_vertices} face pixels, {len(layout.triangles)} triangles")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
