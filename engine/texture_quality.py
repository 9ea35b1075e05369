"""Measures of a face texture that an artist sees: empty texels, and seams where sources meet.

* :func:`empty_fraction` — the share of the face region's texels that are black (all channels at or
  under :data:`EMPTY_LEVEL`): holes a render shows as black patches.
* :func:`seam_ratio` — how much colour changes across the border of the photo-seen region (where
  photo, mirrored photo and fill meet) compared with inside it: the mean absolute difference of
  texel pairs straddling the border, over the same mean for pairs both seen (at least
  :data:`VISIBLE_STEP_LEVELS`). 1 means
  the border is as smooth as the photo itself; a dark or bright seam line reads as several.

``benchmarks/texture_quality.py`` prints them for photos; the tests hold them on a profile photo.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EMPTY_LEVEL = 8  # 8-bit level: black, or a black texel's bilinear neighbour, not a dark skin tone
VISIBLE_STEP_LEVELS = 2.0  # 8-bit levels: a smaller mean change is invisible, so the ratio's denominator
# is at least this (a smooth synthetic photo would otherwise read sub-level noise as seams)
SEAM_BAND_TEXELS = 2  # texel pairs this far apart: a seam a blend smears over a texel or two still counts


@dataclass(frozen=True, slots=True)
class TextureQuality:
    """The measures of one texture (see the module's text)."""

    empty_fraction: float
    seam_ratio: float
    seen_fraction: float  # share of the face region the photo shows


def empty_fraction(texture: np.ndarray, face: np.ndarray) -> float:
    """Share of the ``face`` (T, T) bool texels of ``texture`` (T, T, 3) uint8 that are black."""
    if not face.any():
        raise ValueError("face region is empty")
    return float((texture[face] <= EMPTY_LEVEL).all(axis=1).mean())


def _pair_differences(texture: np.ndarray, first: np.ndarray, second: np.ndarray) -> list[np.ndarray]:
    """Mean absolute channel differences of texel pairs (p, p + offset) with ``first`` at p and
    ``second`` at p + offset (or the other way round), for offsets of SEAM_BAND_TEXELS along x and y."""
    t = texture.astype(np.float32)
    k = SEAM_BAND_TEXELS
    out = []
    for a, b, fa, fb, sa, sb in (
        (t[:, :-k], t[:, k:], first[:, :-k], first[:, k:], second[:, :-k], second[:, k:]),
        (t[:-k], t[k:], first[:-k], first[k:], second[:-k], second[k:]),
    ):
        pick = (fa & sb) | (sa & fb)
        out.append(np.abs(a[pick] - b[pick]).mean(axis=1))
    return out


def seam_ratio(texture: np.ndarray, seen: np.ndarray, face: np.ndarray) -> float:
    """Colour change across the border of ``seen`` (within ``face``) over the change inside ``seen``
    (see the module's text); NaN when the photo shows all of the face or none of it."""
    seen = seen & face
    hidden = ~seen & face
    across = np.concatenate(_pair_differences(texture, seen, hidden))
    inside = np.concatenate(_pair_differences(texture, seen, seen))
    if not len(across) or not len(inside):
        return float("nan")
    return float(across.mean() / max(inside.mean(), VISIBLE_STEP_LEVELS))


def measure_texture(texture: np.ndarray, seen: np.ndarray, face: np.ndarray) -> TextureQuality:
    """The measures of ``texture`` (T, T, 3) uint8 with its photo-seen mask and face region (T, T) bool."""
    texture = np.asarray(texture)
    if texture.ndim != 3 or texture.shape[2] != 3 or texture.shape[:2] != seen.shape or seen.shape != face.shape:
        raise ValueError(
            f"texture (T, T, 3) and masks (T, T) must match, got {texture.shape}, {seen.shape}, {face.shape}"
        )
    return TextureQuality(
        empty_fraction=empty_fraction(texture, face),
        seam_ratio=seam_ratio(texture, seen, face),
        seen_fraction=float((seen & face).sum() / face.sum()),
    )
