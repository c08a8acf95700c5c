"""Value types and the one exception of the processing package.

This module deliberately imports nothing heavy (no Pillow), so code that only
needs :class:`ImageRejected` or :class:`Limits` stays cheap to import.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

RejectionCode = Literal[
    "unsupported_format", "image_too_large", "image_too_complex", "corrupt_image", "processing_timeout"
]

#: Every code :class:`ImageRejected` can carry.
REJECTION_CODES: Final[frozenset[str]] = frozenset(
    {"unsupported_format", "image_too_large", "image_too_complex", "corrupt_image", "processing_timeout"}
)


class ImageRejected(Exception):
    """A bad image: a terminal failure the user can act on.

    ``code`` is one of ``unsupported_format``, ``image_too_large``,
    ``image_too_complex`` (a structure repeated far beyond what encoders write, such
    as thousands of progressive JPEG scans), ``corrupt_image`` or
    ``processing_timeout`` (the work took longer than ``Limits.max_seconds``);
    ``message`` is plain words for the uploader and never names a library or leaks
    internals.
    """

    def __init__(self, code: str, message: str) -> None:
        if code not in REJECTION_CODES:
            raise ValueError(f"unknown rejection code {code!r}")
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


@dataclass(frozen=True)
class Limits:
    """What an upload may be before any pixel is decoded, and how long it may take."""

    max_bytes: int = 10 * 1024 * 1024
    max_pixels: int = 50_000_000
    #: Wall time :func:`processors.process_image` may take (None: unbounded). Checked
    #: between the steps and between the chunks fed to the decoder.
    max_seconds: float | None = None


@dataclass(frozen=True)
class EncodedImage:
    """One encoded output."""

    data: bytes  #: the encoded bytes (WebP unless ``format`` says otherwise)
    width: int
    height: int
    format: Literal["webp", "avif"] = "webp"


@dataclass(frozen=True)
class ProcessedImage:
    """Everything :func:`processors.process_image` derives from one upload."""

    rendition: EncodedImage  #: longest side <= 2048, never enlarged, WebP q85 (the ladder's largest WebP)
    thumbnail: EncodedImage  #: exactly 400x400 centre cover crop, WebP q80
    placeholder: str  #: ``data:image/webp;base64,...``, at most 1024 characters
    source_format: str  #: "JPEG" | "PNG" | "WEBP" | "GIF" | "HEIF" | "AVIF"
    source_width: int  #: after EXIF (or HEIF irot/imir) orientation
    source_height: int
    timings_ms: Mapping[str, float] = field(default_factory=dict)  #: per step
    #: The responsive ladder: the image fitted inside 320, 640, 1024, 1600 and 2048 px,
    #: never enlarged (sizes at or above the long edge collapse into one at the original
    #: size). WebP smallest first, then, when asked for, AVIF smallest first. The last
    #: WebP entry is ``rendition``.
    renditions: tuple[EncodedImage, ...] = ()
    #: ThumbHash bytes, standard base64, as thumbhash.js's ``thumbHashToRGBA`` decodes them.
    thumbhash: str = ""
    #: The most common colour (sRGB) as ``#rrggbb``.
    dominant_color: str = ""
    #: 64-bit DCT perceptual hash as 16 lowercase hex digits; compare with
    #: :func:`processors.phash.distance`, look up with :func:`processors.phash.buckets`.
    perceptual_hash: str = ""


DEFAULT_LIMITS: Final[Limits] = Limits()
