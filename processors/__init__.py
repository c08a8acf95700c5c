"""Pure image processing for the Image Service: bytes in, bytes out.

``process_image`` validates an upload (format from the bytes, size and pixel
limits, integrity), applies EXIF orientation, converts to sRGB and writes a
WebP rendition, a 400x400 WebP thumbnail and a tiny placeholder.

Importing this package is cheap: Pillow is imported on the first call of
:func:`process_image`, not here. The package never imports boto3 or
``chalicelib``.
"""

from __future__ import annotations

from processors.types import (
    DEFAULT_LIMITS,
    REJECTION_CODES,
    EncodedImage,
    ImageRejected,
    Limits,
    ProcessedImage,
)

__all__ = [
    "DEFAULT_LIMITS",
    "REJECTION_CODES",
    "EncodedImage",
    "ImageRejected",
    "Limits",
    "ProcessedImage",
    "process_image",
]


def process_image(data: bytes, limits: Limits = DEFAULT_LIMITS) -> ProcessedImage:
    """Turn an uploaded image into a rendition, a thumbnail and a placeholder.

    Raises :class:`ImageRejected` for anything the uploader has to fix (not an
    accepted format, too large, corrupt or truncated). Any other exception is a
    bug or an environment fault, never a property of the input.
    """
    from processors.pipeline import process_image as _process_image

    return _process_image(data, limits)
