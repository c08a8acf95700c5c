"""Recognise the accepted formats from their first bytes, without Pillow."""

from __future__ import annotations

import struct
from typing import Final

_PNG: Final = b"\x89PNG\r\n\x1a\n"

#: ISOBMFF brands of HEIF still images coded with HEVC (what phones write) and of AVIF
#: (still images, and image sequences whose first frame is used). ``mif1`` alone is
#: the generic HEIF brand: the compatible brands then tell AVIF from HEIC.
_HEIF_BRANDS: Final = frozenset({b"heic", b"heix", b"heim", b"heis"})
_AVIF_BRANDS: Final = frozenset({b"avif", b"avis"})
_GENERIC_BRANDS: Final = frozenset({b"mif1", b"msf1"})
#: Bytes of ftyp read for compatible brands (a real ftyp box holds a handful).
_MAX_FTYP: Final = 256


def sniff_format(data: bytes) -> str | None:
    """Return JPEG, PNG, WEBP, GIF, HEIF or AVIF when the magic bytes say so, else None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(_PNG):
        return "PNG"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return _sniff_isobmff(data)


def _sniff_isobmff(data: bytes) -> str | None:
    """HEIF or AVIF from an ISOBMFF ``ftyp`` box at the start (major, then compatible brands)."""
    if len(data) < 16 or data[4:8] != b"ftyp":
        return None
    size = int.from_bytes(data[:4], "big")
    if size < 16 or size > _MAX_FTYP or size % 4:
        return None
    major = data[8:12]
    compatible = {data[i : i + 4] for i in range(16, min(size, len(data)) - 3, 4)}
    if major in _AVIF_BRANDS:
        return "AVIF"
    if major in _HEIF_BRANDS:
        return "HEIF"
    if major in _GENERIC_BRANDS:
        if compatible & _AVIF_BRANDS:
            return "AVIF"
        if compatible & _HEIF_BRANDS:
            return "HEIF"
    return None


def webp_canvas_size(data: bytes) -> tuple[int, int] | None:
    """Canvas size from a WebP header (VP8X, VP8L or VP8), or None if unreadable.

    Pillow's WebP opener allocates the canvas before it reports a size, so the
    pixel limit has to be checked on these header bytes first.
    """
    if len(data) < 30:
        return None
    chunk = data[12:16]
    body = data[20:]
    if chunk == b"VP8X":
        width = 1 + int.from_bytes(body[4:7], "little")
        height = 1 + int.from_bytes(body[7:10], "little")
        return width, height
    if chunk == b"VP8L":
        if body[0] != 0x2F:
            return None
        bits = struct.unpack("<I", body[1:5])[0]
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if chunk == b"VP8 ":
        if body[3:6] != b"\x9d\x01\x2a":
            return None
        width, height = struct.unpack("<HH", body[6:10])
        return width & 0x3FFF, height & 0x3FFF
    return None
