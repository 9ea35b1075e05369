"""Turn a photo (a file path or an array) into the engine's one image format: upright RGB uint8.

Owns decoding (OpenCV), the size guard (checked on the file header, before any pixel is allocated),
EXIF orientation (read by :mod:`engine.image_header` and applied here on every path, so 16-bit and
alpha images are turned too), and colour normalisation: grey → RGB, 16-bit and float → 8-bit,
alpha composited over white (a cut-out portrait keeps the look it has in a viewer; the colours a
transparent pixel happens to store are arbitrary). Orientation is read from JPEG and PNG only;
other formats OpenCV reads (BMP, TIFF, WebP …) are taken as stored and size-checked after decoding.
Every failure is an :class:`~engine.errors.InvalidImageError` naming the file and the problem.
"""

from __future__ import annotations

import warnings
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from .errors import ImageWarning, InvalidImageError
from .image_header import read_header

JPEG_FILL_LEVEL = 128  # what libjpeg decodes the missing part of a damaged stream as (every channel)
GREY_FILL_MIN_ROWS = 8  # one MCU row: fewer flat grey rows at the bottom can be a real photo's
MAX_PIXELS = 100_000_000  # 100 MP: above any camera photo we expect; a decoded RGB copy is 300 MB
MAX_FILE_BYTES = 1 << 30  # 1 GiB: no usable photo file is larger; the bytes are read into memory
ALPHA_BACKGROUND = 255  # alpha is composited over white (the usual background of cut-outs)
SAMPLE_PHOTO = "astronaut.jpg"  # NASA portrait of Eileen Collins, public domain (engine/data/README.md)
# EXIF orientation → (transpose, flip rows, flip cols) that turns the stored image upright, in
# that order (Exif 2.3 Table 6; the same transforms OpenCV applies for IMREAD_COLOR).
_UPRIGHT = {
    1: (False, False, False),  # as stored
    2: (False, False, True),  # mirrored left-right
    3: (False, True, True),  # upside down
    4: (False, True, False),  # mirrored top-bottom
    5: (True, False, False),  # mirrored along the main diagonal
    6: (True, False, True),  # camera turned clockwise: turn the image clockwise
    7: (True, True, True),  # mirrored along the anti-diagonal
    8: (True, True, False),  # turn the image counter-clockwise
}


def load_image(source: str | Path | np.ndarray, *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read a photo as an (H, W, 3) uint8 RGB array, upright (EXIF orientation applied).

    ``source`` is a file path, or an array: (H, W), (H, W, 1), (H, W, 3) RGB or (H, W, 4) RGBA of
    dtype uint8, uint16 or float in [0, 1]. Images with more than ``max_pixels`` pixels are refused.
    """
    if isinstance(source, np.ndarray):
        name = f"array of shape {source.shape} and dtype {source.dtype}"
        if source.ndim not in (2, 3):
            raise InvalidImageError(f"{name}: expected (H, W), (H, W, 1), (H, W, 3) or (H, W, 4)")
        _check_size(source.shape[1], source.shape[0], max_pixels, name)
        return _to_rgb8(source, name)
    if not isinstance(source, (str, Path)):
        raise InvalidImageError(f"expected a file path or a numpy array, got {type(source).__name__}")
    path = Path(source)
    data = _read_bytes(path)
    try:
        header = read_header(data)
    except ValueError as exc:
        raise InvalidImageError(f"{path}: not a valid image ({exc})") from exc
    if header.format != "other":
        _check_size(header.width, header.height, max_pixels, str(path))
    if not header.complete:
        raise InvalidImageError(f"{path}: truncated {header.format.upper()} (the data ends before the image does)")
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if decoded is None or decoded.size == 0:
        raise InvalidImageError(f"{path}: not an image OpenCV can decode ({len(data)} bytes)")
    _check_size(decoded.shape[1], decoded.shape[0], max_pixels, str(path))
    if header.format == "jpeg":
        _warn_if_grey_filled(decoded, str(path))
    if decoded.ndim == 3 and decoded.shape[2] in (3, 4):
        decoded = decoded[..., [2, 1, 0, 3][: decoded.shape[2]]]  # OpenCV's BGR(A) → RGB(A)
    return apply_orientation(_to_rgb8(decoded, str(path)), header.orientation)


def apply_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    """Turn an image stored with EXIF ``orientation`` (1..8) upright; other values leave it as is."""
    if orientation not in _UPRIGHT:
        return image
    transpose, flip_rows, flip_cols = _UPRIGHT[orientation]
    image = image.swapaxes(0, 1) if transpose else image
    image = image[::-1] if flip_rows else image
    image = image[:, ::-1] if flip_cols else image
    return np.ascontiguousarray(image)


def sample_photo_path() -> Path:
    """Path of the sample portrait shipped in ``engine/data`` (512×512 JPEG)."""
    return Path(str(resources.files("engine.data") / SAMPLE_PHOTO))


def _read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise InvalidImageError(f"{path}: file not found")
    if not path.is_file():
        raise InvalidImageError(f"{path}: not a file")
    size = path.stat().st_size
    if size == 0:
        raise InvalidImageError(f"{path}: empty file")
    if size > MAX_FILE_BYTES:
        raise InvalidImageError(f"{path}: file of {size} bytes exceeds the {MAX_FILE_BYTES}-byte limit")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidImageError(f"{path}: cannot be read ({exc})") from exc


def _warn_if_grey_filled(decoded: np.ndarray, name: str) -> None:
    """Warn (:class:`ImageWarning`) when a decoded JPEG ends in rows of pure mid-grey: libjpeg fills
    what a damaged stream lacks with level :data:`JPEG_FILL_LEVEL`, so a file cut short whose end
    marker was put back decodes as a photo with a grey band at its bottom."""
    rows = decoded.reshape(decoded.shape[0], -1)
    filled = np.all(rows == JPEG_FILL_LEVEL, axis=1)[::-1]
    n = int(np.argmin(filled)) if not filled.all() else len(filled)
    if n >= GREY_FILL_MIN_ROWS:
        warnings.warn(
            f"{name}: the last {n} rows are flat grey: the JPEG looks cut short (processed as it is)",
            ImageWarning,
            stacklevel=3,
        )


def _check_size(width: int, height: int, max_pixels: int, name: str) -> None:
    if width <= 0 or height <= 0:
        raise InvalidImageError(f"{name}: image has no pixels ({width}×{height})")
    if width * height > max_pixels:
        raise InvalidImageError(
            f"{name}: image of {width}×{height} = {width * height / 1e6:.1f} MP exceeds the limit of "
            f"{max_pixels / 1e6:.1f} MP"
        )


def _to_rgb8(image: np.ndarray, name: str) -> np.ndarray:
    """(H, W[, 1|3|4]) uint8/uint16/float[0, 1] RGB(A) → (H, W, 3) uint8 RGB."""
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise InvalidImageError(f"{name}: expected (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got shape {image.shape}")
    if image.dtype == np.uint8:
        unit = image.astype(np.float32) / 255.0 if image.shape[2] == 4 else None
    elif image.dtype == np.uint16:
        unit = image.astype(np.float32) / 65535.0
    elif image.dtype in (np.float16, np.float32, np.float64):
        if not np.isfinite(image).all() or image.min() < 0.0 or image.max() > 1.0:
            raise InvalidImageError(f"{name}: float images must hold finite values in [0, 1]")
        unit = image.astype(np.float32)
    else:
        raise InvalidImageError(f"{name}: unsupported dtype {image.dtype} (use uint8, uint16 or float in [0, 1])")
    if unit is not None:
        if unit.shape[2] == 4:
            alpha = unit[..., 3:]
            unit = unit[..., :3] * alpha + (ALPHA_BACKGROUND / 255.0) * (1.0 - alpha)
        image = np.rint(unit * 255.0).astype(np.uint8)
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return np.array(image, dtype=np.uint8, order="C")  # always a fresh array, never the caller's
