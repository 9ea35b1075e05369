"""engine.texture: the photo resampled into the UV square, photo weights, completion, padding."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from arrays import assert_close
from synthetic import gradient_photo, layout, posed_face
from tolerances import (
    COLOR_LEVELS,
    GRAZING_SMEAR_MAX,
    GREEN_MARGIN_LEVELS,
    HIDDEN_SIDE_SEEN_MAX,
    MIRROR_COLOR_MEDIAN_LEVELS,
    NEAR_SIDE_SEEN_MIN,
    PHOTO_MODE_PADDED_MAX,
    SEAM_RATIO_MAX,
    SEEN_WITHOUT_GRAZING,
    TEXEL_OFFSET_LEVELS,
    UV_EXACT,
    VERTEX_TEXELS_SEEN_MIN,
)

from engine.mesh import mesh_uv, vertex_colors
from engine.position_map import sample_map
from engine.texture import extract_texture, face_texels, texel_uv
from engine.texture_quality import measure_texture
from engine.visibility import depth_buffer

SIZE = 512  # texture side for most tests (the 1024² default is exercised once)


def _halves(size: int):
    """Boolean (size, size) masks of the texture's left and right halves (layout u < or > centre)."""
    cols = np.arange(size)[None, :].repeat(size, axis=0)
    return cols < size // 2, cols >= size // 2


def test_texel_colour_is_the_photo_at_its_projected_position():
    lay = layout()
    face = posed_face()
    photo = gradient_photo()
    texture, mask = extract_texture(photo, face.position_map, lay, size=SIZE, pad_px=0, mode="photo")
    assert texture.shape == (SIZE, SIZE, 3) and texture.dtype == np.uint8
    assert mask.shape == (SIZE, SIZE) and mask.dtype == bool
    assert 0.3 < mask.mean() < 0.8  # the face covers ≈ 65 % of the square; its sides are seen edge-on
    uv = texel_uv(lay, SIZE)[mask]
    xyz = sample_map(face.position_map, lay.face_mask, uv)
    assert np.isfinite(xyz).all()
    expected = vertex_colors(photo, xyz) * 255
    assert_close(texture[mask], expected, COLOR_LEVELS, "texel colour vs photo at its 3D point")
    assert (texture[~mask] == 0).all()  # no padding asked: everything else black


def test_texel_centres_follow_the_obj_convention():
    """Texel (i, j) is sampled at the layout point whose mesh uv is the texel's OpenGL centre."""
    lay = layout()
    coords = texel_uv(lay, SIZE)  # (u, v) layout px
    i, j = np.mgrid[0:SIZE, 0:SIZE]
    last = lay.size - 1
    assert_close(coords[..., 0] / last, (j + 0.5) / SIZE, UV_EXACT, "u of texel centres")
    assert_close(1.0 - coords[..., 1] / last, 1.0 - (i + 0.5) / SIZE, UV_EXACT, "v of texel centres")


def test_texture_lines_up_with_the_mesh_uv():
    """The texel an OBJ viewer reads at a vertex's uv has that vertex's photo colour."""
    lay = layout()
    face = posed_face(20)
    photo = gradient_photo()
    texture, mask = extract_texture(photo, face.position_map, lay, size=SIZE, pad_px=0, mode="photo")
    uv = mesh_uv(lay)
    # OpenGL texel centres sit at (j + 0.5) / T; row 0 of the image is v = 1
    j = np.clip(np.rint(uv[:, 0] * SIZE - 0.5).astype(int), 0, SIZE - 1)
    i = np.clip(np.rint((1.0 - uv[:, 1]) * SIZE - 0.5).astype(int), 0, SIZE - 1)
    seen = mask[i, j]
    assert seen.mean() > VERTEX_TEXELS_SEEN_MIN
    expected = vertex_colors(photo, face.vertices[seen]) * 255
    assert_close(texture[i[seen], j[seen]], expected, TEXEL_OFFSET_LEVELS, "texel at the vertex uv vs vertex colour")


def test_texture_rows_run_top_down_like_the_layout():
    lay = layout()
    face = posed_face()
    photo = gradient_photo()
    texture, mask = extract_texture(photo, face.position_map, lay, size=SIZE, pad_px=0, mode="photo")
    green = texture[..., 1].astype(float)  # green grows downward in the photo
    rows = np.nonzero(mask.any(axis=1))[0]
    top, bottom = rows[: len(rows) // 4], rows[-len(rows) // 4 :]
    assert green[top][mask[top]].mean() < green[bottom][mask[bottom]].mean()
    red = texture[..., 0].astype(float)  # red grows to the right; layout u runs left to right
    left, right = _halves(SIZE)
    assert red[mask & left].mean() < red[mask & right].mean()


@pytest.mark.parametrize("yaw", [80, -80])
def test_hidden_side_comes_from_the_mirror_side_without_holes_or_seams(yaw):
    lay = layout()
    face = posed_face(yaw)
    photo = gradient_photo() // 2 + 64  # no black pixel: a black texel is a hole
    plain, mask = extract_texture(photo, face.position_map, lay, size=SIZE, mode="photo")
    complete, complete_mask = extract_texture(photo, face.position_map, lay, size=SIZE)
    assert (complete_mask == mask).all()  # the mask is what the photo shows, in either mode
    region = face_texels(lay, SIZE)
    left, right = _halves(SIZE)
    far, near = (right, left) if yaw > 0 else (left, right)
    assert (mask & far).sum() / (region & far).sum() < HIDDEN_SIDE_SEEN_MAX
    assert (mask & near).sum() / (region & near).sum() > NEAR_SIDE_SEEN_MIN * SEEN_WITHOUT_GRAZING
    quality = measure_texture(complete, mask, region)
    assert quality.empty_fraction == 0.0
    assert quality.seam_ratio < SEAM_RATIO_MAX
    assert measure_texture(plain, mask, region).empty_fraction > 1 - quality.seen_fraction - PHOTO_MODE_PADDED_MAX
    # where the photo is trusted fully the texel is the photo's; a hidden texel whose mirror texel is
    # fully trusted carries that texel's colour (the layout's mirror is the flip up to ≈ 1 texel)
    weightless = ~mask & region
    i, j = np.nonzero(weightless)
    mirror_seen = mask[i, SIZE - 1 - j]
    diff = np.abs(complete[i, j].astype(int) - complete[i, SIZE - 1 - j].astype(int))[mirror_seen]
    assert np.median(diff) <= MIRROR_COLOR_MEDIAN_LEVELS
    inner = cv2.erode(mask.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    assert np.median(np.abs(complete[inner].astype(int) - plain[inner].astype(int))) <= COLOR_LEVELS


def test_surface_seen_edge_on_takes_no_colour_from_past_the_silhouette():
    """Texels of the jaw sides, seen at grazing angles, are filled from the skin, not from what lies
    past the face's outline in the photo (hair, ears, background)."""
    lay = layout()
    face = posed_face()
    depth = depth_buffer(face.vertices, lay.triangles, *gradient_photo().shape[:2])
    photo = np.full(depth.shape + (3,), (200, 150, 120), np.uint8)  # skin where the face is
    photo[np.isnan(depth)] = (0, 255, 0)  # green everywhere else
    texture, mask = extract_texture(photo, face.position_map, lay, size=SIZE)
    region = face_texels(lay, SIZE)
    green = (texture[..., 1].astype(int) - texture[..., 0] > GREEN_MARGIN_LEVELS) & region
    assert green.sum() / region.sum() < GRAZING_SMEAR_MAX
    assert mask.sum() / region.sum() < SEEN_WITHOUT_GRAZING  # the jaw sides are not in the mask


def test_edge_padding_grows_colours_a_few_texels():
    lay = layout()
    face = posed_face()
    photo = gradient_photo()
    pad = 5
    texture, mask = extract_texture(photo, face.position_map, lay, size=SIZE, pad_px=pad, mode="photo")
    bare, bare_mask = extract_texture(photo, face.position_map, lay, size=SIZE, pad_px=0, mode="photo")
    assert (mask == bare_mask).all() and (texture[mask] == bare[mask]).all()
    dist = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, 5)
    coloured = texture.any(axis=2)
    band = ~mask & (dist <= pad)
    assert coloured[band].mean() > 0.99  # the gradient photo has no black pixels
    assert not coloured[~mask & (dist > pad + 1)].any()
    # a padded texel repeats some texel of the mask (its nearest one)
    palette = {tuple(c) for c in texture[mask]}
    sample = np.argwhere(band)[:: max(1, band.sum() // 200)]
    assert all(tuple(texture[r, c]) in palette for r, c in sample)


def test_default_1024_with_padding_and_reused_visibility():
    lay = layout()
    face = posed_face(30)
    photo = gradient_photo()
    texture, mask = extract_texture(photo, face.position_map, lay, mode="photo")
    assert texture.shape == (1024, 1024, 3)
    visibility = np.ones(lay.n_vertices, bool)
    _, all_seen = extract_texture(photo, face.position_map, lay, visibility=visibility)
    assert all_seen.sum() > mask.sum()
    assert texture[~mask].any(axis=1).sum() > 0  # padding on by default
    complete, _ = extract_texture(photo, face.position_map, lay)
    assert complete.any(axis=2).all()  # complete: the whole square is coloured


def test_face_partly_outside_the_photo():
    lay = layout()
    face = posed_face(centre=(20.0, 240.0))  # left half of the face is off the photo
    texture, mask = extract_texture(gradient_photo(), face.position_map, lay, size=SIZE, pad_px=0, mode="photo")
    left, right = _halves(SIZE)
    assert mask[left].mean() < mask[right].mean()
    assert (texture[~mask] == 0).all()


@pytest.mark.parametrize("size", [255, 4097, 0, 1000.5])
def test_size_bounds_raise(size):
    face = posed_face()
    with pytest.raises(ValueError, match="texture size"):
        extract_texture(gradient_photo(), face.position_map, layout(), size=size)


def test_bad_inputs_raise():
    lay = layout()
    face = posed_face()
    with pytest.raises(ValueError, match="uint8"):
        extract_texture(gradient_photo().astype(np.float32), face.position_map, lay, size=SIZE)
    with pytest.raises(ValueError, match=r"\(128, 128, 3\)"):
        extract_texture(gradient_photo(), np.zeros((128, 128, 3)), lay, size=SIZE)
    with pytest.raises(ValueError, match="pad_px"):
        extract_texture(gradient_photo(), face.position_map, lay, size=SIZE, pad_px=-1)
    with pytest.raises(ValueError, match="texture mode"):
        extract_texture(gradient_photo(), face.position_map, lay, size=SIZE, mode="mirror")
    with pytest.raises(ValueError, match=r"\(3,\)"):
        extract_texture(gradient_photo(), face.position_map, lay, size=SIZE, visibility=np.ones(3, bool))
