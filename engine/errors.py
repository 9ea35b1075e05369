"""One exception hierarchy for the engine.

Library code raises these; only the CLI and the Blender operator turn them into messages.
Each error's message names the file or value that caused it.
"""

from __future__ import annotations


class EngineError(Exception):
    """Base class of every error the engine raises on purpose."""


class InvalidImageError(EngineError, ValueError):
    """The input could not be read as a photo (missing, empty, not an image, truncated, too large)."""


class InvalidVideoError(EngineError, ValueError):
    """The input could not be read as a video (missing, not a format OpenCV decodes, no frames, too large)."""


class NoWeightsError(EngineError, FileNotFoundError):
    """A model bundle or one of its files is missing."""


class WeightsMismatchError(EngineError, ValueError):
    """A bundle's weights fail their sha256 check or do not fit the network they claim to be."""


class BundleFormatError(EngineError, ValueError):
    """A bundle's metadata is unreadable or names an unsupported format."""


class LayoutError(EngineError, ValueError):
    """A UV layout file is missing arrays or has inconsistent shapes."""


class OutputError(EngineError, OSError):
    """Results could not be written (folder not writable, disk full)."""


class CheckpointError(EngineError, ValueError):
    """A TensorFlow checkpoint is missing, corrupt, or uses a feature our reader does not support."""


class InvalidOptionError(EngineError, ValueError):
    """An option has a value outside its documented range or type (texture size, device, boxes, …);
    the message names the option and the value it got."""


class RequestError(EngineError):
    """A worker request failed in a way the artist should read: ``kind`` is one of
    engine.protocol.ERROR_KINDS."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class ImageWarning(UserWarning):
    """A photo that decodes but looks damaged (e.g. a JPEG cut short whose end marker was restored):
    it is processed, and interfaces report the warning."""
