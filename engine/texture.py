"""UV texture of the face: the photo resampled into the layout's UV square (PRNet's texture output).

Texel (i, j) of a T×T texture (row 0 = top = v 1, see :mod:`engine.mesh`) sits at the layout point
((j + 0.5)·(S − 1)/T, (i + 0.5)·(S − 1)/T). A texel belongs to the face when that point lies inside
one of the layout's grid triangles (the mesh's UV footprint). Its 3D image-frame position is the
mask-aware bilinear read-out of the position map there (:class:`engine.position_map.MapSampler`,
precomputed once per layout and size), and its colour is the photo at that (x, y), bilinear
(``cv2.remap``). A texel is seen when the vertex visibility of :mod:`engine.visibility` (a z-buffer
test per vertex), read out at the texel with the same bilinear weights, is at least one half: the
z-buffer resolves occlusion at the vertex spacing, so a per-texel depth test would not be sharper,
and this costs nothing on top of the position read-out.

Unseen texels are left out of the mask; ``symmetric_fill`` copies them from their mirror texel
(``layout.mirror_uv``) when that one is seen. Finally colours grow outward from the mask by a few
texels (edge padding, nearest masked texel) so mip-mapping shows no dark seams; texels outside the
mask and its padding stay black.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from .layout import UVLayout
from .options import check_texture_size
from .position_map import MapSampler, map_from_vertices
from .visibility import VISIBILITY_TOLERANCE, vertex_visibility

PAD_TEXELS_AT_1024 = 8  # edge padding at 1024² covers 3 mip levels of bleeding; scaled with the size
SEEN_FRACTION = 0.5  # texel seen when at least half of its bilinear vertex weight is on seen vertices
OFF_PHOTO = -16.0  # image px: a remap coordinate that reads only the black border
PLAN_CACHE_SIZE = 2  # (layout, size) plans kept: ≈ 30 MB and ≈ 0.5 s to build at 1024², 16× that at 4096²


def texel_uv(layout: UVLayout, size: int) -> np.ndarray:
    """(size, size, 2) float64 layout-pixel (u, v) of every texel centre of a size² texture."""
    centres = (np.arange(size) + 0.5) * (layout.size - 1) / size
    u, v = np.meshgrid(centres, centres, indexing="xy")
    return np.stack([u, v], axis=-1)


@dataclass(frozen=True, slots=True, eq=False)
class _TexturePlan:
    texels: np.ndarray  # (M,) int32 flat indices of the texels inside the layout's triangles
    sampler: MapSampler  # read-out of (S, S, C) layout maps at those texels
    mirror: np.ndarray  # (M,) int32 flat index of the texel nearest to each texel's mirror point


@lru_cache(maxsize=PLAN_CACHE_SIZE)
def _plan(layout: UVLayout, size: int) -> _TexturePlan:
    """Which texels are face, how to read layout maps there, and where each one's mirror texel is."""
    s = layout.size
    centres = (np.arange(size) + 0.5) * (s - 1) / size
    cell = np.minimum(centres.astype(np.int64), s - 2)
    frac = centres - cell
    m = layout.face_mask
    a, b = m[np.ix_(cell, cell)], m[np.ix_(cell, cell + 1)]
    c, d = m[np.ix_(cell + 1, cell)], m[np.ix_(cell + 1, cell + 1)]
    # the cell (a b / c d) is split into triangles (a, c, b) and (b, c, d) by engine.layout.grid_triangles
    upper = frac[:, None] + frac[None, :] <= 1.0
    covered = b & c & np.where(upper, a, d)
    texels = np.flatnonzero(covered).astype(np.int32)  # int32: 4096² = 2^24 texels
    rows, cols = np.divmod(texels, size)
    sampler = MapSampler.build(m, np.stack([centres[cols], centres[rows]], axis=1))
    mirror_uv = sampler(map_from_vertices(layout.mirror_uv, layout, fill=0.0))
    mirror_texel = np.clip(np.rint(mirror_uv * (size / (s - 1)) - 0.5), 0, size - 1).astype(np.int64)
    mirror = (mirror_texel[:, 1] * size + mirror_texel[:, 0]).astype(np.int32)
    return _TexturePlan(texels=texels, sampler=sampler, mirror=mirror)


def _edge_pad(texture: np.ndarray, mask: np.ndarray, pad_px: int) -> None:
    """Copy to every unmasked texel within ``pad_px`` of the mask the colour of its nearest masked texel."""
    if pad_px <= 0 or not mask.any() or mask.all():
        return
    dist, labels = cv2.distanceTransformWithLabels(
        (~mask).astype(np.uint8), cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL
    )
    source = np.zeros(int(labels.max()) + 1, dtype=np.int64)
    source[labels[mask]] = np.flatnonzero(mask)  # every masked texel is its own label
    grow = ~mask & (dist <= pad_px)
    flat = texture.reshape(-1, 3)
    flat[np.flatnonzero(grow)] = flat[source[labels[grow]]]


def extract_texture(
    image: np.ndarray,
    position_map: np.ndarray,
    layout: UVLayout,
    *,
    size: int = 1024,
    symmetric_fill: bool = False,
    visibility_tolerance: float = VISIBILITY_TOLERANCE,
    pad_px: int | None = None,
    visibility: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Sample the photo into a UV texture → (texture (size, size, 3) uint8 RGB, mask (size, size) bool).

    ``image`` (H, W, 3) uint8 RGB; ``position_map`` (S, S, 3) in the image frame (px). ``mask`` marks
    texels seen in the photo or, with ``symmetric_fill``, copied from their seen mirror texel.
    ``pad_px`` defaults to 8 texels at 1024² (scaled with ``size``). ``visibility`` (N,) bool reuses
    an already computed :func:`engine.visibility.vertex_visibility` (then ``visibility_tolerance``
    is unused).
    """
    image = np.asarray(image)
    position_map = np.asarray(position_map)
    s = layout.size
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8, got shape {image.shape} {image.dtype}")
    if position_map.shape != (s, s, 3):
        raise ValueError(
            f"position map must be ({s}, {s}, 3) for layout {layout.layout_id!r}, got shape {position_map.shape}"
        )
    size = check_texture_size(size)
    pad_px = round(PAD_TEXELS_AT_1024 * size / 1024) if pad_px is None else int(pad_px)
    if pad_px < 0:
        raise ValueError(f"pad_px must be >= 0, got {pad_px}")

    vertices = position_map[layout.face_mask].astype(np.float32)
    if visibility is None:
        visibility = vertex_visibility(vertices, layout.triangles, tolerance=visibility_tolerance)
    elif np.shape(visibility) != (layout.n_vertices,):
        raise ValueError(f"visibility must be ({layout.n_vertices},), got shape {np.shape(visibility)}")
    h, w = image.shape[:2]
    finite = np.isfinite(vertices).all(axis=1)  # a broken prediction's vertices count as unseen
    x, y = vertices[:, 0], vertices[:, 1]
    with np.errstate(invalid="ignore"):
        seen_vertex = np.asarray(visibility, bool) & finite & (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
    # 4 channels (x, y, seen, unused): the sparse product is fastest at 4 and rows become 16 bytes,
    # so each texel's (x, y) pair can be moved as one 8-byte word below
    per_vertex = np.zeros((len(vertices), 4), np.float32)
    per_vertex[:, :2] = np.where(finite[:, None], vertices[:, :2], OFF_PHOTO)
    per_vertex[:, 2] = seen_vertex

    plan = _plan(layout, size)
    texel = plan.sampler(map_from_vertices(per_vertex, layout, fill=0.0))  # (M, 4)
    seen = texel[:, 2] >= SEEN_FRACTION
    # one remap of the whole square; off-face and unseen texels read outside the photo → black (a seen
    # texel a fraction of a pixel beyond the photo's edge blends with that black border: negligible)
    off_photo = np.full(2, OFF_PHOTO, np.float32).view(np.int64)
    maps = np.empty((size * size, 2), dtype=np.float32)
    maps.view(np.int64)[:, 0] = off_photo
    maps.view(np.int64)[plan.texels, 0] = np.where(seen, texel.view(np.int64)[:, 0], off_photo)
    texture = cv2.remap(image, maps.reshape(size, size, 2), None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    mask = np.zeros(size * size, dtype=bool)
    mask[plan.texels] = seen

    if symmetric_fill:
        hidden = plan.texels[~seen]
        mirror = plan.mirror[~seen]
        usable = mask[mirror]
        flat = texture.reshape(-1, 3)
        flat[hidden[usable]] = flat[mirror[usable]]
        mask[hidden[usable]] = True

    mask = mask.reshape(size, size)
    _edge_pad(texture, mask, pad_px)
    return texture, mask
