"""Pure image processing for the Image Service: bytes in, bytes out.

``process_image`` validates an upload (format from the bytes, size and pixel
limits, integrity), applies EXIF orientation, converts to sRGB and writes the
WebP rendition ladder (and AVIF when asked), a 400x400 WebP thumbnail, a tiny
placeholder, a ThumbHash, the dominant colour and a perceptual hash.

Importing this package is cheap: Pillow is imported on the first call of
:func:`process_image`, not here. The package never imports boto3 or
``chalicelib``.
"""

from __future__ import annotations

from processors.phash import BUCKET_COUNT, DUPLICATE_MAX_DISTANCE, buckets, distance, is_duplicate
from processors.types import (
    DEFAULT_LIMITS,
    REJECTION_CODES,
    EncodedImage,
    ImageRejected,
    Limits,
    ProcessedImage,
)

__all__ = [
    "BUCKET_COUNT",
    "DEFAULT_LIMITS",
    "DUPLICATE_MAX_DISTANCE",
    "REJECTION_CODES",
    "EncodedImage",
    "ImageRejected",
    "Limits",
    "ProcessedImage",
    "buckets",
    "distance",
    "is_duplicate",
    "process_image",
]


def process_image(data: bytes, limits: Limits = DEFAULT_LIMITS, *, avif: bool = False) -> ProcessedImage:
    """Turn an uploaded image into its renditions, a thumbnail, placeholders and hashes.

    ``avif=True`` adds AVIF renditions of the same ladder (the stage's setting; off by
    default: they cost several times the WebP ladder's time, docs/benchmarks.md).

    Raises :class:`ImageRejected` for anything the uploader has to fix (not an
    accepted format, too large, corrupt or truncated). Any other exception is a
    bug or an environment fault, never a property of the input.
    """
    from processors.pipeline import process_image as _process_image

    return _process_image(data, limits, avif=avif)
