"""Completing a partly known image: push–pull hole filling and multi-band (Laplacian pyramid) blending.

Both work on float32 (H, W, 3) colour images with an (H, W) weight in [0, 1] per pixel and use image
pyramids (each level half the size of the one below, down to :data:`COARSEST_SIDE`), so they cost a
few full-size passes whatever the size of the holes.

* :func:`push_pull` fills every pixel: the known colours are averaged down the pyramid (weighted),
  then each level takes its own colour where it is known and the smooth upsampled level above
  elsewhere. A hole becomes a smooth interpolation of the colours around it (Gortler et al., "The
  Lumigraph", 1996, §3.3).
* :func:`multiband_blend` lays one complete image over another by a weight, each frequency band
  with the weight blurred to that band's scale (Burt & Adelson, "A multiresolution spline", 1983): where two
  images meet, fine detail switches over a few pixels and shading differences over a wide zone, so
  the meeting line leaves no visible seam.
"""

from __future__ import annotations

import cv2
import numpy as np

COARSEST_SIDE = 4  # px: the pyramids stop when a level's smaller side would drop below this
BLEND_LEVELS = 6  # bands of a multi-band blend: the coarsest band is 1/32 of the image, so shading
# differences between sources fade over ≈ 1/16 of the texture (a cheek's width), detail over a few px
KNOWN_AT_COARSE = 0.25  # push–pull: a coarse pixel with a quarter of its area known counts as fully known


def _check(colour: np.ndarray, weight: np.ndarray) -> None:
    if colour.ndim != 3 or colour.shape[2] != 3:
        raise ValueError(f"colour must be (H, W, 3), got shape {colour.shape}")
    if weight.shape != colour.shape[:2]:
        raise ValueError(f"weight must be {colour.shape[:2]}, got shape {weight.shape}")


def _half(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    return cv2.resize(image, ((w + 1) // 2, (h + 1) // 2), interpolation=cv2.INTER_AREA)


def _grow(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return cv2.resize(image, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


def push_pull(colour: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``colour`` (H, W, 3) with every pixel defined: known pixels (``weight`` 1) keep their colour,
    partly known ones (0 < weight < 1) mix with the fill, unknown ones (0) get the fill. The fill is
    black only when no pixel is known. Returns a new float32 array."""
    colour = np.asarray(colour, np.float32)
    weight = np.clip(np.asarray(weight, np.float32), 0.0, 1.0)
    _check(colour, weight)
    levels = [(colour * weight[..., None], weight)]
    while min(levels[-1][1].shape) >= 2 * COARSEST_SIDE:
        premultiplied, w = levels[-1]
        levels.append((_half(premultiplied), _half(w)))
    filled = None
    for depth in range(len(levels) - 1, 0, -1):  # the coarse levels: small, so plain numpy
        premultiplied, w = levels[depth]
        own = premultiplied / np.maximum(w, 1e-12)[..., None]
        trust = np.minimum(w / KNOWN_AT_COARSE, 1.0)[..., None]
        if filled is None:
            mean = premultiplied.reshape(-1, 3).sum(axis=0) / max(float(w.sum()), 1e-12)
            filled = np.broadcast_to(mean, own.shape).astype(np.float32)
        else:
            filled = _grow(filled, w.shape)
        filled = trust * own + (1.0 - trust) * filled
    # the full-size level trusts its own weights: w · colour + (1 − w) · the level above
    premultiplied, w = levels[0]
    up = _grow(filled, w.shape) if filled is not None else np.zeros_like(premultiplied)
    return premultiplied + up * (1.0 - w)[..., None]


def _gaussian_pyramid(image: np.ndarray, levels: int) -> list[np.ndarray]:
    pyramid = [image]
    for _ in range(levels - 1):
        pyramid.append(cv2.pyrDown(pyramid[-1]))
    return pyramid


def _laplacian_pyramid(image: np.ndarray, levels: int) -> list[np.ndarray]:
    gauss = _gaussian_pyramid(image, levels)
    bands = [fine - cv2.pyrUp(coarse, dstsize=fine.shape[1::-1]) for fine, coarse in zip(gauss, gauss[1:])]
    return [*bands, gauss[-1]]


def blend_levels(shape: tuple[int, int], levels: int = BLEND_LEVELS) -> int:
    """Bands used for an image of ``shape``: ``levels``, fewer when the coarsest would be too small."""
    side = min(shape)
    possible = 1
    while side // 2 >= COARSEST_SIDE:
        side //= 2
        possible += 1
    return max(1, min(levels, possible))


def multiband_blend(base: np.ndarray, top: np.ndarray, weight: np.ndarray, *, levels: int = BLEND_LEVELS) -> np.ndarray:
    """``top`` over ``base`` (both complete (H, W, 3) images) with ``weight`` (H, W) in [0, 1] per
    pixel, band by band: base + Σ_band G(weight) · band(top − base) → (H, W, 3) float32, kept between
    the two images at every pixel (a band's blur would otherwise overshoot at a strong edge — dark hair
    against skin — and ring into black or white)."""
    base = np.asarray(base, np.float32)
    top = np.asarray(top, np.float32)
    weight = np.asarray(weight, np.float32)
    _check(base, weight)
    _check(top, weight)
    n = blend_levels(base.shape[:2], levels)
    bands = _laplacian_pyramid(top - base, n)
    masks = _gaussian_pyramid(weight, n)
    image = bands[-1] * masks[-1][..., None]
    for band, mask in zip(reversed(bands[:-1]), reversed(masks[:-1])):
        image = cv2.pyrUp(image, dstsize=band.shape[1::-1]) + band * mask[..., None]
    return np.clip(base + image, np.minimum(base, top), np.maximum(base, top))
