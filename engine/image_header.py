"""Read what a photo file claims about itself before decoding it: format, size, EXIF orientation.

:mod:`engine.image_io` uses this to refuse huge images without allocating them, to notice JPEGs cut
short (OpenCV decodes those silently, grey below the cut), and to apply the EXIF orientation on every
decode path (OpenCV ignores it when asked for the raw channels/depth). PNG (IHDR, eXIf chunks;
PNG 1.2 + the 2017 eXIf extension) and JPEG (SOFn, APP1 Exif, EOI markers; ITU T.81 Annex B) are
parsed in full; WebP, TIFF and BMP for their size only; anything else yields an
:class:`ImageHeader` with unknown size and orientation 1.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SOI = b"\xff\xd8"
EXIF_PREFIX = b"Exif\x00\x00"  # APP1 payload start of an Exif segment (Exif 2.3 §4.5.4)
ORIENTATION_TAG = 0x0112  # TIFF/Exif tag "Orientation", SHORT, 1..8
# SOFn markers carry the frame size; C4 (DHT), C8 (JPG), CC (DAC) share the range but do not.
SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
STANDALONE_MARKERS = frozenset([0x01, *range(0xD0, 0xD8)])  # TEM, RSTn: no length field
# Inside entropy-coded data 0xFF is followed by 0x00 (stuffing), RSTn, or fill 0xFF; anything else
# is the next marker.
_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


@dataclass(frozen=True, slots=True)
class ImageHeader:
    """What the header of an encoded image says; ``width``/``height`` are 0 when unknown."""

    format: str  # "png" | "jpeg" | "webp" | "tiff" | "bmp" | "other"
    width: int  # px, as stored (before orientation)
    height: int  # px, as stored
    orientation: int  # EXIF orientation 1..8 (1 = upright; values outside 1..8 read as 1)
    complete: bool  # False when the data ends before the image does (JPEG: no EOI marker)


def read_header(data: bytes) -> ImageHeader:
    """Parse the header of encoded image bytes; raises ValueError if a PNG/JPEG header is malformed."""
    if data.startswith(PNG_SIGNATURE):
        return _png_header(data)
    if data.startswith(JPEG_SOI + b"\xff"):
        return _jpeg_header(data)
    size = _other_size(data)
    if size is None:
        return ImageHeader("other", 0, 0, 1, True)
    return ImageHeader(size[0], size[1], size[2], 1, True)


def _other_size(data: bytes) -> tuple[str, int, int] | None:
    """(format, width, height) of a WebP, TIFF or BMP from its header, so its size is checked before
    a full decode (a 10 KB WebP may claim 16383²); None when the header is not one of them or unclear."""
    try:
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp_size(data)
        if data[:4] in (b"II*\x00", b"MM\x00*"):
            return _tiff_size(data)
        if data[:2] == b"BM" and len(data) >= 26:
            width, height = struct.unpack("<ii", data[18:26])
            return "bmp", abs(width), abs(height)  # a negative height stores the rows top-down
    except (struct.error, IndexError):
        return None
    return None


def _webp_size(data: bytes) -> tuple[str, int, int] | None:
    """WebP container (RFC 9649): a VP8X canvas, a lossless VP8L or a lossy VP8 frame header."""
    chunk = data[12:16]
    if chunk == b"VP8X":
        width = 1 + int.from_bytes(data[24:27], "little")
        height = 1 + int.from_bytes(data[27:30], "little")
        return "webp", width, height
    if chunk == b"VP8L" and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return "webp", 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return "webp", width & 0x3FFF, height & 0x3FFF
    return None


def _tiff_size(data: bytes) -> tuple[str, int, int] | None:
    """The first image of a TIFF (TIFF 6.0 §2): ImageWidth (256) and ImageLength (257) of IFD 0."""
    order = "<" if data[:2] == b"II" else ">"
    (ifd,) = struct.unpack(order + "I", data[4:8])
    (count,) = struct.unpack(order + "H", data[ifd : ifd + 2])
    size = {}
    for k in range(count):
        entry = data[ifd + 2 + 12 * k : ifd + 14 + 12 * k]
        tag, kind = struct.unpack(order + "HH", entry[:4])
        if tag in (256, 257):
            size[tag] = struct.unpack(order + ("H" if kind == 3 else "I"), entry[8 : 10 if kind == 3 else 12])[0]
    if 256 in size and 257 in size:
        return "tiff", size[256], size[257]
    return None


def _png_header(data: bytes) -> ImageHeader:
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise ValueError("PNG without an IHDR chunk")
    width, height = struct.unpack(">II", data[16:24])
    orientation, pos, complete = 1, 8, False
    while pos + 12 <= len(data):  # walk every chunk: the image is whole if IEND is reached
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if kind == b"eXIf" and orientation == 1:
            orientation = exif_orientation(data[pos + 8 : pos + 8 + length])
        if kind == b"IEND":
            complete = True
            break
        pos += 12 + length  # length, type, data, CRC
    return ImageHeader("png", width, height, orientation, complete)


def _jpeg_header(data: bytes) -> ImageHeader:
    width = height = 0
    orientation = 1
    pos = 2
    while True:
        while pos < len(data) and data[pos] == 0xFF and pos + 1 < len(data) and data[pos + 1] == 0xFF:
            pos += 1  # fill bytes before a marker
        if pos + 2 > len(data):
            return ImageHeader("jpeg", width, height, orientation, False)
        if data[pos] != 0xFF:
            raise ValueError(f"JPEG marker expected at byte {pos}")
        marker = data[pos + 1]
        if marker == 0xD9:  # EOI: the image is whole (trailers after it are ignored)
            return ImageHeader("jpeg", width, height, orientation, True)
        if marker in STANDALONE_MARKERS:
            pos += 2
            continue
        if pos + 4 > len(data):
            return ImageHeader("jpeg", width, height, orientation, False)
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        segment = data[pos + 4 : pos + 2 + length]
        if marker in SOF_MARKERS and len(segment) >= 5:
            height, width = struct.unpack(">HH", segment[1:5])
        elif marker == 0xE1 and segment.startswith(EXIF_PREFIX) and orientation == 1:
            orientation = exif_orientation(segment[len(EXIF_PREFIX) :])
        pos += 2 + length
        if marker == 0xDA:  # SOS: skip the entropy-coded scan to the next marker
            found = _NEXT_MARKER.search(data, pos)
            if found is None:
                return ImageHeader("jpeg", width, height, orientation, False)
            pos = found.start()


def exif_orientation(tiff: bytes) -> int:
    """The Orientation tag of IFD0 in a TIFF-structured Exif block; 1 if absent or unreadable."""
    if len(tiff) < 8 or tiff[:2] not in (b"II", b"MM"):
        return 1
    end = "<" if tiff[:2] == b"II" else ">"
    (ifd,) = struct.unpack(end + "I", tiff[4:8])
    if ifd + 2 > len(tiff):
        return 1
    (count,) = struct.unpack(end + "H", tiff[ifd : ifd + 2])
    for k in range(count):
        entry = tiff[ifd + 2 + 12 * k : ifd + 14 + 12 * k]
        if len(entry) < 12:
            break
        tag, kind = struct.unpack(end + "HH", entry[:4])
        if tag == ORIENTATION_TAG and kind == 3:  # SHORT, stored left-aligned in the value field
            (value,) = struct.unpack(end + "H", entry[8:10])
            return value if 1 <= value <= 8 else 1
    return 1
