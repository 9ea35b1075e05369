"""UV texture of the face: the photo resampled into the layout's UV square, completed where it is hidden.

Texel (i, j) of a T×T texture (row 0 = top = v 1, see :mod:`engine.mesh`) sits at the layout point
((j + 0.5)·(S − 1)/T, (i + 0.5)·(S − 1)/T). A texel belongs to the face when that point lies inside
one of the layout's grid triangles. Its 3D image-frame position is the mask-aware bilinear read-out
of the position map there (:class:`engine.position_map.MapSampler`, precomputed once per layout and
size), and its colour is the photo at that (x, y), bilinear (``cv2.remap``).

How much the photo is trusted at a texel (its *photo weight*, 0..1) is read out with the same
bilinear weights from the vertices: 0 for a vertex the z-buffer of :mod:`engine.visibility` hides or
that falls off the photo; otherwise a ramp on the cosine between the surface normal and the view
direction, 0 at or below :data:`GRAZING_COS_HIDDEN` and 1 at or above :data:`GRAZING_COS_SEEN`, so
surface seen edge-on (the sides of the head, under the chin) counts as hidden and hair or ears seen
past it do not smear onto the cheeks. ``mask`` = photo weight ≥ :data:`SEEN_FRACTION`.

Modes (:data:`engine.options.TEXTURE_MODES`):

* ``complete`` (default) — every texel gets a colour. A texel's mirror texel (``layout.mirror_uv``)
  supplies what the photo does not show, weighted by its own photo weight; what neither shows is
  filled smoothly from the colours around it (:func:`engine.texture_fill.push_pull`); photo, mirror
  and fill are combined by multi-band blending (:func:`engine.texture_fill.multiband_blend`), so the
  lines where the sources meet leave no seam. The square outside the face is filled too (no dark
  bleeding under mip-mapping).
* ``photo`` — the photo's texels only (black elsewhere, grown outward by a few texels of edge
  padding), for artists who paint the rest themselves; exporters add ``mask`` as the alpha channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from .layout import UVLayout
from .mesh_quality import vertex_normals
from .options import DEFAULT_TEXTURE_MODE, check_texture_mode, check_texture_size
from .position_map import MapSampler, map_from_vertices
from .texture_fill import multiband_blend, push_pull
from .visibility import VISIBILITY_TOLERANCE, vertex_visibility

PAD_TEXELS_AT_1024 = 8  # photo mode's edge padding at 1024²: covers 3 mip levels of bleeding; scaled with the size
SEEN_FRACTION = 0.5  # a texel is "seen" (in ``mask``) when its photo weight is at least one half
GRAZING_COS_HIDDEN = 0.26  # cos of the view angle (75°) at and below which the photo is not trusted
GRAZING_COS_SEEN = 0.5  # cos of the view angle (60°) from which the photo is fully trusted
FEATHER_TEXELS_AT_1024 = 12  # the photo fades out over this many texels (≈ 3 vertex spacings) toward what it hides
ISLAND_TEXELS_AT_1024 = 6  # photo regions narrower than 2× this (≈ 3 vertex spacings at 1024²) are dropped
OFF_PHOTO = -16.0  # image px: where texels of no photo weight (and broken vertices) read; never shown
PLAN_CACHE_SIZE = 2  # (layout, size) plans kept: ≈ 40 MB and ≈ 0.5 s to build at 1024², 16× that at 4096²


def texel_uv(layout: UVLayout, size: int) -> np.ndarray:
    """(size, size, 2) float64 layout-pixel (u, v) of every texel centre of a size² texture."""
    centres = (np.arange(size) + 0.5) * (layout.size - 1) / size
    u, v = np.meshgrid(centres, centres, indexing="xy")
    return np.stack([u, v], axis=-1)


@dataclass(frozen=True, slots=True, eq=False)
class _TexturePlan:
    texels: np.ndarray  # (M,) int32 flat indices of the texels inside the layout's triangles
    sampler: MapSampler  # read-out of (S, S, C) layout maps at those texels
    mirror: np.ndarray  # (size, size, 2) float32 texel (x, y) of each face texel's mirror point; others: itself


@lru_cache(maxsize=PLAN_CACHE_SIZE)
def _plan(layout: UVLayout, size: int) -> _TexturePlan:
    """Which texels are face, how to read layout maps there, and where each one's mirror point is."""
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
    jj, ii = np.meshgrid(np.arange(size, dtype=np.float32), np.arange(size, dtype=np.float32), indexing="xy")
    mirror = np.stack([jj, ii], axis=-1).reshape(-1, 2)
    mirror[texels] = mirror_uv * (size / (s - 1)) - 0.5
    return _TexturePlan(texels=texels, sampler=sampler, mirror=mirror.reshape(size, size, 2))


def face_texels(layout: UVLayout, size: int) -> np.ndarray:
    """(size, size) bool: the texels inside the layout's triangles (the face region of the texture)."""
    covered = np.zeros(size * size, dtype=bool)
    covered[_plan(layout, check_texture_size(size)).texels] = True
    return covered.reshape(size, size)


def mirror_texels(layout: UVLayout, size: int) -> np.ndarray:
    """(size, size, 2) float32 texel (x, y) of each face texel's mirror point (others: the texel itself),
    a ``cv2.remap`` map that mirrors a texture left/right across the face's midline."""
    return _plan(layout, check_texture_size(size)).mirror


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


def photo_weights(
    vertices: np.ndarray, triangles: np.ndarray, visibility: np.ndarray, image_hw: tuple[int, int]
) -> np.ndarray:
    """(N,) float32 per-vertex trust in the photo, 0..1 (see the module's text). ``vertices`` (N, 3)
    image px, ``visibility`` (N,) bool from the z-buffer, ``image_hw`` the photo's (height, width)."""
    h, w = image_hw
    finite = np.isfinite(vertices).all(axis=1)
    x, y = vertices[:, 0], vertices[:, 1]
    with np.errstate(invalid="ignore"):
        on_photo = finite & (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
        # the layout's triangles are counter-clockwise as the camera sees them in the y-down image
        # frame, so their normals point away from the camera (−z): the view cosine is −n_z
        facing = -vertex_normals(np.where(finite[:, None], vertices, 0.0), triangles)[:, 2]
    ramp = np.clip((facing - GRAZING_COS_HIDDEN) / (GRAZING_COS_SEEN - GRAZING_COS_HIDDEN), 0.0, 1.0)
    smooth = ramp * ramp * (3.0 - 2.0 * ramp)
    return np.where(np.asarray(visibility, bool) & on_photo, smooth, 0.0).astype(np.float32)


def _complete(colour: np.ndarray, weight: np.ndarray, mirror: np.ndarray) -> np.ndarray:
    """Photo colours ``colour`` (T, T, 3) float32 with photo weights ``weight`` (T, T) → every texel
    coloured: the photo, filled smoothly where it is hidden, laid by multi-band blending over the
    same image mirrored (so what the photo hides comes from the mirror side, or, hidden on both
    sides, from the fill)."""
    own = push_pull(colour, weight)
    mirrored = cv2.remap(own, mirror, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return multiband_blend(mirrored, own, weight)


def _without_islands(weight: np.ndarray, size: int) -> np.ndarray:
    """``weight`` (T, T) opened (grey erosion, then dilation) by a disc of :data:`ISLAND_TEXELS_AT_1024`
    (scaled with ``size``): specks of photo smaller than the disc (a few vertices seen through a gap
    of the z-buffer, hair past the border) are dropped, larger regions keep their weights. Runs on
    8-bit weights (a 1/255 step), which OpenCV's morphology handles several times faster."""
    radius = max(1, round(ISLAND_TEXELS_AT_1024 * size / 1024))
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    levels = np.rint(weight * 255.0).astype(np.uint8)
    return cv2.morphologyEx(levels, cv2.MORPH_OPEN, disc).astype(np.float32) * np.float32(1 / 255)


def _feathered(weight: np.ndarray, size: int) -> np.ndarray:
    """``weight`` (T, T) faded to 0 over :data:`FEATHER_TEXELS_AT_1024` (scaled with ``size``) toward
    the texels the photo does not show (weight < :data:`SEEN_FRACTION`): the photo gives way to the
    mirror side gradually, not at the occlusion line (where it also reads pixels just past an edge)."""
    width = max(1.0, FEATHER_TEXELS_AT_1024 * size / 1024)
    seen = (weight >= SEEN_FRACTION).astype(np.uint8)
    distance = cv2.distanceTransform(seen, cv2.DIST_L2, 5)  # texels to the nearest unseen texel
    return weight * np.minimum(distance / np.float32(width), 1.0)


def extract_texture(
    image: np.ndarray,
    position_map: np.ndarray,
    layout: UVLayout,
    *,
    size: int = 1024,
    mode: str = DEFAULT_TEXTURE_MODE,
    visibility_tolerance: float = VISIBILITY_TOLERANCE,
    pad_px: int | None = None,
    visibility: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Sample the photo into a UV texture → (texture (size, size, 3) uint8 RGB, mask (size, size) bool).

    ``image`` (H, W, 3) uint8 RGB; ``position_map`` (S, S, 3) in the image frame (px). ``mask`` marks
    the texels the photo shows (photo weight ≥ one half); ``mode`` is ``complete`` or ``photo`` (see
    the module's text). ``pad_px`` (photo mode) defaults to 8 texels at 1024², scaled with ``size``.
    ``visibility`` (N,) bool reuses an already computed :func:`engine.visibility.vertex_visibility`
    (then ``visibility_tolerance`` is unused).
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
    mode = check_texture_mode(mode)
    pad_px = round(PAD_TEXELS_AT_1024 * size / 1024) if pad_px is None else int(pad_px)
    if pad_px < 0:
        raise ValueError(f"pad_px must be >= 0, got {pad_px}")

    vertices = position_map[layout.face_mask].astype(np.float32)
    if visibility is None:
        visibility = vertex_visibility(vertices, layout.triangles, tolerance=visibility_tolerance)
    elif np.shape(visibility) != (layout.n_vertices,):
        raise ValueError(f"visibility must be ({layout.n_vertices},), got shape {np.shape(visibility)}")
    finite = np.isfinite(vertices).all(axis=1)  # a broken prediction's vertices weigh nothing
    # 4 channels (x, y, weight, unused): the sparse product is fastest at 4 and rows become 16 bytes,
    # so each texel's (x, y) pair can be moved as one 8-byte word below
    per_vertex = np.zeros((len(vertices), 4), np.float32)
    per_vertex[:, :2] = np.where(finite[:, None], vertices[:, :2], OFF_PHOTO)
    per_vertex[:, 2] = photo_weights(vertices, layout.triangles, visibility, image.shape[:2])

    plan = _plan(layout, size)
    texel = plan.sampler(map_from_vertices(per_vertex, layout, fill=0.0))  # (M, 4)
    used = texel[:, 2] > 0
    # one remap of the whole square; texels the photo does not show carry no weight (photo mode blacks
    # them out below). A texel between a vertex on the photo and one just off it reads the photo's
    # edge pixel (replicated border), never black
    off_photo = np.full(2, OFF_PHOTO, np.float32).view(np.int64)
    maps = np.empty((size * size, 2), dtype=np.float32)
    maps.view(np.int64)[:, 0] = off_photo
    maps.view(np.int64)[plan.texels, 0] = np.where(used, texel.view(np.int64)[:, 0], off_photo)
    texture = cv2.remap(image, maps.reshape(size, size, 2), None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    weight = np.zeros(size * size, dtype=np.float32)
    weight[plan.texels] = np.clip(texel[:, 2], 0.0, 1.0)
    weight = _without_islands(weight.reshape(size, size), size)
    mask = weight >= SEEN_FRACTION

    if mode == "photo":
        texture[~mask] = 0
        _edge_pad(texture, mask, pad_px)
        return texture, mask
    complete = _complete(texture.astype(np.float32), _feathered(weight, size), plan.mirror)
    return np.clip(np.rint(complete), 0, 255).astype(np.uint8), mask
