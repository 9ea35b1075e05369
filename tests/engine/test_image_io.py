"""load_image: every bad input raises InvalidImageError naming the file; good ones decode upright RGB."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from arrays import assert_close

from engine.errors import InvalidImageError
from engine.image_header import exif_orientation, read_header
from engine.image_io import apply_orientation, load_image, sample_photo_path

JPEG_COLOUR_LEVELS = 6  # 8-bit levels a flat JPEG colour may drift by (quality 95, chroma subsampling)


def _pattern(h: int = 40, w: int = 60) -> np.ndarray:
    """Distinct coloured quadrants (RGB), so orientation and channel order are both visible."""
    img = np.zeros((h, w, 3), np.uint8)
    img[: h // 2, : w // 2] = (255, 0, 0)
    img[: h // 2, w // 2 :] = (0, 255, 0)
    img[h // 2 :, : w // 2] = (0, 0, 255)
    img[h // 2 :, w // 2 :] = (255, 255, 0)
    return img


def _jpeg_bytes(rgb: np.ndarray, quality: int = 95) -> bytes:
    ok, buf = cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()


def _exif_app1(orientation: int) -> bytes:
    """An APP1 Exif segment holding only IFD0 with the Orientation tag (little-endian TIFF)."""
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 1)
    tiff += struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack("<I", 0)
    payload = b"Exif\x00\x00" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_sample_photo_decodes() -> None:
    img = load_image(sample_photo_path())
    assert img.shape == (512, 512, 3) and img.dtype == np.uint8


def test_jpeg_colours_are_rgb(tmp_path: Path) -> None:
    img = load_image(_write(tmp_path / "a.jpg", _jpeg_bytes(_pattern())))
    assert img.shape == (40, 60, 3)
    assert_close(img[5, 5], (255, 0, 0), JPEG_COLOUR_LEVELS, "red quadrant")
    assert_close(img[35, 55], (255, 255, 0), JPEG_COLOUR_LEVELS, "yellow quadrant")


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_opencv(tmp_path: Path, orientation: int) -> None:
    data = _jpeg_bytes(_pattern())
    data = data[:2] + _exif_app1(orientation) + data[2:]
    path = _write(tmp_path / f"o{orientation}.jpg", data)
    assert read_header(data).orientation == orientation
    ours = load_image(path)
    reference = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]  # applies EXIF
    np.testing.assert_array_equal(ours, reference)


def test_orientation_6_rotates_clockwise(tmp_path: Path) -> None:
    data = _jpeg_bytes(_pattern())
    img = load_image(_write(tmp_path / "o6.jpg", data[:2] + _exif_app1(6) + data[2:]))
    assert img.shape == (60, 40, 3)  # portrait now
    # stored top-left red goes to the top-right after a clockwise quarter turn
    assert_close(img[5, 35], (255, 0, 0), JPEG_COLOUR_LEVELS, "red quadrant after the turn")


def test_orientation_applies_to_16bit_and_alpha_pngs(tmp_path: Path) -> None:
    rgba = np.dstack([_pattern(), np.full((40, 60), 255, np.uint8)])
    ok, buf = cv2.imencode(".png", rgba[..., [2, 1, 0, 3]])
    png = buf.tobytes()
    exif = _exif_app1(8)[10:]  # the TIFF block alone
    chunk = struct.pack(">I", len(exif)) + b"eXIf" + exif + struct.pack(">I", zlib.crc32(b"eXIf" + exif))
    png = png[:33] + chunk + png[33:]  # right after IHDR
    img = load_image(_write(tmp_path / "o8.png", png))
    np.testing.assert_array_equal(img, np.rot90(_pattern(), k=1))  # orientation 8 = turn counter-clockwise


def test_truncated_jpeg(tmp_path: Path) -> None:
    data = _jpeg_bytes(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    path = _write(tmp_path / "cut.jpg", data[: len(data) * 2 // 3])
    with pytest.raises(InvalidImageError, match=r"cut\.jpg.*truncated"):
        load_image(path)


def test_jpeg_with_trailer_after_eoi_is_fine(tmp_path: Path) -> None:
    path = _write(tmp_path / "trailer.jpg", _jpeg_bytes(_pattern()) + b"SEFT vendor trailer")
    assert load_image(path).shape == (40, 60, 3)


def test_sixteen_bit_png_scaled(tmp_path: Path) -> None:
    rgb16 = _pattern().astype(np.uint16) * 257
    rgb16[0, 0] = (32896, 0, 65535)  # 32896 / 257 = 128
    path = tmp_path / "deep.png"
    cv2.imwrite(str(path), rgb16[..., ::-1])
    img = load_image(path)
    assert img.dtype == np.uint8
    np.testing.assert_array_equal(img[0, 0], (128, 0, 255))
    np.testing.assert_array_equal(img[30, 50], (255, 255, 0))


def test_rgba_composited_over_white(tmp_path: Path) -> None:
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[0, 0, 3] = 255  # opaque red-ish
    rgba[0, 1, 3] = 0  # transparent → white
    path = tmp_path / "alpha.png"
    cv2.imwrite(str(path), rgba[..., [2, 1, 0, 3]])
    img = load_image(path)
    np.testing.assert_array_equal(img[0, 0], (200, 0, 0))
    np.testing.assert_array_equal(img[0, 1], (255, 255, 255))


def test_grayscale_becomes_rgb(tmp_path: Path) -> None:
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    path = tmp_path / "gray.png"
    cv2.imwrite(str(path), gray)
    img = load_image(path)
    assert img.shape == (3, 4, 3)
    np.testing.assert_array_equal(img[..., 1], gray)


def test_huge_png_refused_before_decoding(tmp_path: Path) -> None:
    ihdr = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    path = _write(tmp_path / "bomb.png", png)
    with pytest.raises(InvalidImageError, match=r"bomb\.png.*20000×20000"):
        load_image(path)


def test_huge_jpeg_header_refused(tmp_path: Path) -> None:
    data = bytearray(_jpeg_bytes(_pattern()))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 20000, 20000)
    with pytest.raises(InvalidImageError, match="exceeds"):
        load_image(_write(tmp_path / "big.jpg", bytes(data)))


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("empty.jpg", b"", "empty"),
        ("notes.txt", b"hello, not an image\n", "not an image"),
        ("noise.png", b"\x89PNG\r\n\x1a\nxx", "not a valid"),
    ],
)
def test_bad_files(tmp_path: Path, name: str, content: bytes, problem: str) -> None:
    with pytest.raises(InvalidImageError, match=rf"{name.replace('.', '[.]')}.*{problem}"):
        load_image(_write(tmp_path / name, content))


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(InvalidImageError, match="nope.jpg: file not found"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(InvalidImageError, match="not a file"):
        load_image(tmp_path)


def test_arrays() -> None:
    rgb = _pattern()
    np.testing.assert_array_equal(load_image(rgb), rgb)
    assert load_image(rgb) is not rgb
    np.testing.assert_array_equal(load_image(rgb[..., 0]), np.repeat(rgb[..., :1], 3, axis=2))
    np.testing.assert_array_equal(load_image(rgb.astype(np.float32) / 255), rgb)
    np.testing.assert_array_equal(load_image(rgb.astype(np.uint16) * 257), rgb)
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    np.testing.assert_array_equal(load_image(rgba), rgb)


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((4, 4, 2), np.uint8),
        np.full((4, 4, 3), 1.5),
        np.zeros((4, 4, 3), np.int64),
        np.zeros((0, 4, 3), np.uint8),
        np.zeros(5, np.uint8),
    ],
)
def test_bad_arrays(bad: np.ndarray) -> None:
    with pytest.raises(InvalidImageError, match="array of shape"):
        load_image(bad)


def test_array_size_guard() -> None:
    with pytest.raises(InvalidImageError, match="exceeds"):
        load_image(np.zeros((100, 100, 3), np.uint8), max_pixels=5000)


def test_apply_orientation_round_trip() -> None:
    img = _pattern()
    assert apply_orientation(img, 3).tolist() == img[::-1, ::-1].tolist()
    assert apply_orientation(img, 6).tolist() == np.rot90(img, k=-1).tolist()


def test_progressive_jpeg_walks_every_scan(tmp_path: Path) -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(".jpg", rgb, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    data = buf.tobytes()
    assert data.count(b"\xff\xda") > 1  # several scans
    assert load_image(_write(tmp_path / "prog.jpg", data)).shape == (48, 64, 3)
    with pytest.raises(InvalidImageError, match="truncated"):
        load_image(_write(tmp_path / "prog_cut.jpg", data[: len(data) - 200]))


def test_truncated_png(tmp_path: Path) -> None:
    ok, buf = cv2.imencode(".png", np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    data = buf.tobytes()
    with pytest.raises(InvalidImageError, match=r"cut\.png: truncated PNG"):
        load_image(_write(tmp_path / "cut.png", data[: len(data) // 2]))


def test_exif_orientation_parser() -> None:
    big_endian = b"MM\x00*" + struct.pack(">I", 8) + struct.pack(">H", 1)
    big_endian += struct.pack(">HHIHH", 0x0112, 3, 1, 3, 0) + struct.pack(">I", 0)
    assert exif_orientation(big_endian) == 3
    assert exif_orientation(b"II*\x00\xff\xff\x00\x00") == 1  # IFD offset past the end
    assert exif_orientation(b"garbage") == 1
    assert exif_orientation(_exif_app1(9)[10:]) == 1  # out of range


@pytest.mark.parametrize("ext", [".webp", ".tiff", ".bmp"])
def test_webp_tiff_and_bmp_sizes_are_read_from_the_header(ext: str) -> None:
    image = np.zeros((37, 53, 3), np.uint8)
    ok, data = cv2.imencode(ext, image)
    assert ok
    header = read_header(data.tobytes())
    assert (header.format, header.width, header.height) == (ext[1:], 53, 37)


def _claimed_size_files(tmp_path: Path) -> dict[str, Path]:
    """Tiny files whose headers claim huge images (nothing after the header)."""
    side = 16383
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\x00" * 4 + (side - 1).to_bytes(3, "little") * 2
    webp = b"RIFF" + struct.pack("<I", 4 + len(vp8x)) + b"WEBP" + vp8x
    entries = [(256, 4, 1, 30000), (257, 4, 1, 30000)]
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", len(entries))
    tiff += b"".join(struct.pack("<HHII", *e) for e in entries) + b"\x00" * 4
    bmp = b"BM" + b"\x00" * 16 + struct.pack("<ii", 20000, -20000) + b"\x00" * 28
    files = {}
    for name, data in (("huge.webp", webp), ("huge.tiff", tiff), ("huge.bmp", bmp)):
        files[name] = tmp_path / name
        files[name].write_bytes(data)
    return files


def test_huge_webp_tiff_and_bmp_are_refused_before_decoding(tmp_path: Path) -> None:
    for path in _claimed_size_files(tmp_path).values():
        with pytest.raises(InvalidImageError, match="exceeds the limit"):
            load_image(path)


def test_a_jpeg_cut_short_with_its_end_marker_restored_is_reported(tmp_path: Path) -> None:
    import warnings

    from engine.errors import ImageWarning

    data = sample_photo_path().read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: len(data) // 2] + b"\xff\xd9")
    with pytest.warns(ImageWarning, match="cut short"):
        load_image(cut)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ImageWarning)
        load_image(sample_photo_path())  # a whole JPEG: no warning
