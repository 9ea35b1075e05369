"""The options a caller sets on the engine, with their ranges and defaults, checked once.

Every interface (Python, ``python -m engine``, the worker the Blender add-on talks to, the add-on's
menus) takes its limits from here, and a value outside them is one :class:`InvalidOptionError`
(a ValueError) naming the option, which each interface reports as bad input. Stdlib only at import,
so the add-on can read the limits without loading numpy or torch.

* :class:`ReconstructOptions` — how a :class:`~engine.api.Reconstructor` runs (device, refinement,
  averaging, landmark fit, quarter-turn search); fixed when it is built.
* :func:`check_texture_size`, :func:`parse_boxes` — the per-photo options.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .device import DEFAULT_DEVICE, check_device_name
from .errors import InvalidOptionError

if TYPE_CHECKING:
    from .types import BoundingBox

TEXTURE_SIZE_MIN = 256  # the layout's own resolution: a smaller texture drops detail the mesh has
TEXTURE_SIZE_MAX = 4096  # 48 MB of RGB per face, and 16× the 1024² sampling plan; the photo rarely holds more
DEFAULT_TEXTURE_SIZE = 1024
TEXTURE_SIZE_MENU = (512, 1024, 2048, 4096)  # what the Blender add-on offers: powers of two, for mip-mapping
TEXTURE_MODES = ("complete", "photo")  # every texel coloured / the photo's texels only (engine.texture)
DEFAULT_TEXTURE_MODE = "complete"
MOUTH_MODES = ("closed", "open")  # the lip slit stitched / cut along the inner lips (engine.mouth)
DEFAULT_MOUTH = "closed"  # what looks right on a neutral face
TOPOLOGIES = ("triangles", "quads")  # the layout's dense mesh / a regular quad grid (engine.quad_mesh)
DEFAULT_TOPOLOGY = "triangles"
QUAD_CELLS_MIN = 16  # grid cells across the UV square: below this the face loses its nose and lips
QUAD_CELLS_MAX = 255  # the layout's own cells across: a finer grid adds vertices, not detail
DEFAULT_QUAD_CELLS = 128  # ≈ 10k quads over the face: sculpts and subdivides well
# the bundle's averaging / no shift averaging (8 fewer network crops a face) / the fast model (engine.api)
QUALITIES = ("full", "preview", "fast")
DEFAULT_QUALITY = "full"
# a given box is a face box (settled like a detection) / the crop's roi itself, honoured as given (engine.face_search)
BOX_KINDS = ("face", "roi")
DEFAULT_BOX_KIND = "face"

__all__ = [
    "BOX_KINDS",
    "DEFAULT_BOX_KIND",
    "DEFAULT_MOUTH",
    "DEFAULT_QUAD_CELLS",
    "DEFAULT_QUALITY",
    "DEFAULT_TEXTURE_MODE",
    "DEFAULT_TEXTURE_SIZE",
    "DEFAULT_TOPOLOGY",
    "MOUTH_MODES",
    "QUAD_CELLS_MAX",
    "QUAD_CELLS_MIN",
    "QUALITIES",
    "TEXTURE_MODES",
    "TEXTURE_SIZE_MAX",
    "TEXTURE_SIZE_MENU",
    "TEXTURE_SIZE_MIN",
    "TOPOLOGIES",
    "InvalidOptionError",
    "ReconstructOptions",
    "check_box_kind",
    "check_choice",
    "check_mouth_mode",
    "check_quad_cells",
    "check_quality",
    "check_texture_mode",
    "check_texture_size",
    "parse_boxes",
]


def check_texture_size(size: Any) -> int:
    """``size`` as an int when it is a whole number in [:data:`TEXTURE_SIZE_MIN`, :data:`TEXTURE_SIZE_MAX`]."""
    if isinstance(size, bool) or not isinstance(size, int) and not _is_integer_like(size):
        raise InvalidOptionError(f"texture size must be a whole number of pixels, got {size!r}")
    if not TEXTURE_SIZE_MIN <= int(size) <= TEXTURE_SIZE_MAX:
        raise InvalidOptionError(f"texture size must be within {TEXTURE_SIZE_MIN}..{TEXTURE_SIZE_MAX}, got {size!r}")
    return int(size)


def check_choice(value: Any, choices: Sequence[str], what: str) -> str:
    """``value`` when it is one of ``choices``, else InvalidOptionError naming ``what``."""
    if not isinstance(value, str) or value not in choices:
        raise InvalidOptionError(f"{what} must be one of {', '.join(choices)}; got {value!r}")
    return value


def check_texture_mode(mode: Any) -> str:
    """``mode`` when it is one of :data:`TEXTURE_MODES`."""
    return check_choice(mode, TEXTURE_MODES, "texture mode")


def check_mouth_mode(mode: Any) -> str:
    """``mode`` when it is one of :data:`MOUTH_MODES`."""
    return check_choice(mode, MOUTH_MODES, "mouth")


def check_box_kind(kind: Any) -> str:
    """``kind`` when it is one of :data:`BOX_KINDS`."""
    return check_choice(kind, BOX_KINDS, "box kind")


def check_quality(quality: Any) -> str:
    """``quality`` when it is one of :data:`QUALITIES`."""
    return check_choice(quality, QUALITIES, "quality")


def check_quad_cells(cells: Any) -> int:
    """``cells`` as an int when it is a whole number in [:data:`QUAD_CELLS_MIN`, :data:`QUAD_CELLS_MAX`]."""
    if isinstance(cells, bool) or not isinstance(cells, int) and not _is_integer_like(cells):
        raise InvalidOptionError(f"quad cells must be a whole number, got {cells!r}")
    if not QUAD_CELLS_MIN <= int(cells) <= QUAD_CELLS_MAX:
        raise InvalidOptionError(f"quad cells must be within {QUAD_CELLS_MIN}..{QUAD_CELLS_MAX}, got {cells!r}")
    return int(cells)


def _is_integer_like(value: Any) -> bool:
    """numpy integers and the like (anything with ``__index__``), without importing numpy."""
    return hasattr(value, "__index__") and not isinstance(value, float)


def parse_boxes(raw: Any, *, what: str = "boxes") -> list[BoundingBox]:
    """Face boxes given by a caller (a list of ``[left, top, right, bottom]`` in photo px, as JSON gives
    them) → BoundingBoxes; each number finite and each box non-empty, else InvalidOptionError naming
    ``what`` (where the boxes came from). Whether a box lies on the photo is the search's to check."""
    from .types import BoundingBox

    if not isinstance(raw, Sequence) or isinstance(raw, (str, bytes)):
        raise InvalidOptionError(f"{what} must be a list of [left, top, right, bottom], got {type(raw).__name__}")
    boxes = []
    for box in raw:
        if (
            not isinstance(box, Sequence)
            or isinstance(box, (str, bytes))
            or len(box) != 4
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in box)
        ):
            raise InvalidOptionError(
                f"{what}: each box must be 4 finite numbers [left, top, right, bottom], got {box!r}"
            )
        left, top, right, bottom = map(float, box)
        if not (right > left and bottom > top):
            raise InvalidOptionError(f"{what}: empty box {box!r} (right must exceed left, bottom exceed top)")
        boxes.append(BoundingBox(left, top, right, bottom))
    return boxes


@dataclass(frozen=True, slots=True)
class ReconstructOptions:
    """How a Reconstructor runs; every field checked when the options are made.

    ``device``: one of engine.device.DEVICES or ``cuda:N`` ("auto": CUDA, else Metal, else CPU).
    ``refine``: re-crop each face on its own landmarks until the crop settles (engine.passes); without
    it nothing is checked, so the fallback detector confirms no face.
    ``flip_average`` / ``shift_average`` / ``crop_zoom``: override the bundle's own inference settings
    (bundle.json ``inference``; None keeps the bundle's): average each crop with its mirror image,
    average each face's final map with four shifted crops', crop side = roi side / zoom.
    ``fit_landmarks``: fit the 68 landmarks to the bundle's landmark shape model when it has one.
    ``turn_search``: search a photo turned a quarter turn each way when it shows no face upright, or
    a face whose crop stays doubtful (engine.face_search).
    """

    device: str = DEFAULT_DEVICE
    refine: bool = True
    flip_average: bool | None = None
    shift_average: bool | None = None
    crop_zoom: float | None = None
    fit_landmarks: bool = True
    turn_search: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "device", check_device_name(self.device))
        for name in ("refine", "fit_landmarks", "turn_search"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidOptionError(f"{name} must be true or false, got {getattr(self, name)!r}")
        for name in ("flip_average", "shift_average"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), bool):
                raise InvalidOptionError(
                    f"{name} must be true, false or None (the bundle's), got {getattr(self, name)!r}"
                )
        zoom = self.crop_zoom
        if zoom is not None:
            if isinstance(zoom, bool) or not isinstance(zoom, (int, float)) or not (math.isfinite(zoom) and zoom > 0):
                raise InvalidOptionError(f"crop zoom must be a positive number, got {zoom!r}")
            object.__setattr__(self, "crop_zoom", float(zoom))
