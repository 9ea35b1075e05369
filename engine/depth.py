"""Depth maps of the reconstructed face: per-pixel z of the nearest mesh surface, and an 8-bit picture.

PRNet's depth output is the z-buffer of the dense mesh in the photo's pixel grid (z toward the
camera, larger = nearer, the image-frame unit of px). :func:`depth_map` renders it at full image
resolution with the vectorised rasteriser of :mod:`engine.visibility`; :func:`depth_image` turns it
into a grey picture for saving, nearer = brighter, the background black.
"""

from __future__ import annotations

import numpy as np

from .visibility import depth_buffer

NEAREST_LEVEL = 255  # grey level of the nearest face pixel
FARTHEST_LEVEL = 32  # grey level of the farthest face pixel: kept above 0 so the silhouette stays
# visible against the black background


def depth_map(vertices: np.ndarray, triangles: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """(H, W) float32 z of the nearest surface at each pixel centre, NaN where the face is absent.

    ``vertices`` (N, 3) image px, ``triangles`` (T, 3) indices, ``image_size`` = (height, width).
    """
    if len(image_size) != 2:
        raise ValueError(f"image_size must be (height, width), got {image_size!r}")
    height, width = (int(v) for v in image_size)
    return depth_buffer(vertices, triangles, height, width)


def depth_image(depth: np.ndarray, *, z_range: tuple[float, float] | None = None) -> np.ndarray:
    """(H, W) depth (NaN = background) → (H, W) uint8: nearest = 255, farthest = 32, background 0.

    ``z_range`` = (far, near) fixes the normalisation (e.g. across the frames of a video); by default
    it is the face's own z range. Depths outside it are clipped.
    """
    depth = np.asarray(depth, dtype=np.float32)
    if depth.ndim != 2:
        raise ValueError(f"depth must be (H, W), got shape {depth.shape}")
    face = np.isfinite(depth)
    out = np.zeros(depth.shape, dtype=np.uint8)
    if not face.any():
        return out
    far, near = z_range if z_range is not None else (float(depth[face].min()), float(depth[face].max()))
    if not near > far:
        if z_range is not None:
            raise ValueError(f"z_range must be (far, near) with near > far, got {z_range!r}")
        far = near - 1.0  # a flat face: every face pixel gets the nearest level
    t = np.clip((depth[face] - far) / (near - far), 0.0, 1.0)
    out[face] = np.rint(FARTHEST_LEVEL + t * (NEAREST_LEVEL - FARTHEST_LEVEL)).astype(np.uint8)
    return out
