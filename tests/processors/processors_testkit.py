"""Image builders shared by the processors tests (all in memory)."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterable, Sequence

from PIL import Image

RGB = tuple[int, int, int]

RED: RGB = (255, 0, 0)
GREEN: RGB = (0, 255, 0)
BLUE: RGB = (0, 0, 255)
WHITE: RGB = (255, 255, 255)
BLACK: RGB = (0, 0, 0)


def encode(im: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    im.save(out, format=fmt, **params)
    return out.getvalue()


def decode(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def quadrants(width: int, height: int, colours: Sequence[RGB] = (RED, GREEN, BLUE, WHITE)) -> Image.Image:
    """An RGB image whose four quadrants are TL, TR, BL, BR ``colours``."""
    im = Image.new("RGB", (width, height))
    tl, tr, bl, br = colours
    half_w, half_h = width // 2, height // 2
    im.paste(tl, (0, 0, half_w, half_h))
    im.paste(tr, (half_w, 0, width, half_h))
    im.paste(bl, (0, half_h, half_w, height))
    im.paste(br, (half_w, half_h, width, height))
    return im


def pixel(im: Image.Image, fx: float, fy: float) -> tuple[int, ...]:
    """The pixel at a fractional position (0..1, 0..1)."""
    x = min(im.width - 1, int(fx * im.width))
    y = min(im.height - 1, int(fy * im.height))
    value = im.getpixel((x, y))
    assert isinstance(value, tuple)
    return value


def close(actual: Iterable[int], expected: Iterable[int], tolerance: int = 12) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


# --- PNG written by hand (16-bit RGB, or headers that lie) ---------------------


def _chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def png_bytes(width: int, height: int, bit_depth: int, colour_type: int, rows: bytes | None) -> bytes:
    """A PNG with the given IHDR; ``rows`` is the raw filtered scanline data."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    parts = [b"\x89PNG\r\n\x1a\n", _chunk(b"IHDR", ihdr)]
    if rows is not None:
        parts.append(_chunk(b"IDAT", zlib.compress(rows)))
    parts.append(_chunk(b"IEND", b""))
    return b"".join(parts)


def png_rgb16(pixels: Sequence[Sequence[tuple[int, int, int]]]) -> bytes:
    """A 48-bit (16 bits per channel) RGB PNG from rows of 16-bit triples."""
    height, width = len(pixels), len(pixels[0])
    raw = b"".join(b"\x00" + b"".join(struct.pack(">HHH", *px) for px in row) for row in pixels)
    return png_bytes(width, height, 16, 2, raw)


# --- ICC profiles written by hand ----------------------------------------------

D50 = (0.9642, 1.0, 0.8249)
#: sRGB primaries, chromatically adapted to D50 (what an ICC profile stores).
SRGB_PRIMARIES = (
    (0.4360747, 0.2225045, 0.0139322),
    (0.3850649, 0.7168786, 0.0971045),
    (0.1430804, 0.0606169, 0.7141733),
)
#: Display P3 primaries adapted to D50.
P3_PRIMARIES = (
    (0.5151, 0.2412, -0.0011),
    (0.2920, 0.6922, 0.0419),
    (0.1571, 0.0666, 0.7841),
)


def _s15f16(v: float) -> bytes:
    return struct.pack(">i", round(v * 65536))


def _xyz(v: Sequence[float]) -> bytes:
    return b"XYZ \x00\x00\x00\x00" + b"".join(_s15f16(c) for c in v)


def _curve(gamma: float) -> bytes:
    return b"curv\x00\x00\x00\x00" + struct.pack(">IH", 1, round(gamma * 256)) + b"\0\0"


def _desc(text: str) -> bytes:
    ascii_text = text.encode("ascii") + b"\x00"
    return (
        b"desc\x00\x00\x00\x00"
        + struct.pack(">I", len(ascii_text))
        + ascii_text
        + b"\x00" * 8  # unicode language + count
        + b"\x00" * 3  # scriptcode code + count
        + b"\x00" * 67
    )


def icc_profile(
    description: str,
    *,
    primaries: Sequence[Sequence[float]] | None = None,
    gamma: float = 2.2,
) -> bytes:
    """A minimal ICC v2 display profile: RGB matrix/TRC, or GRAY when no primaries."""
    tags: list[tuple[bytes, bytes]] = [(b"desc", _desc(description)), (b"wtpt", _xyz(D50))]
    if primaries is None:
        space = b"GRAY"
        tags.append((b"kTRC", _curve(gamma)))
    else:
        space = b"RGB "
        for sig, xyz in zip((b"rXYZ", b"gXYZ", b"bXYZ"), primaries, strict=True):
            tags.append((sig, _xyz(xyz)))
        for sig in (b"rTRC", b"gTRC", b"bTRC"):
            tags.append((sig, _curve(gamma)))
    table_size = 4 + 12 * len(tags)
    offset = 128 + table_size
    table = struct.pack(">I", len(tags))
    body = b""
    for sig, data in tags:
        data += b"\x00" * (-len(data) % 4)
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data
    size = 128 + table_size + len(body)
    header = (
        struct.pack(">I", size)
        + b"\x00" * 4
        + b"\x02\x10\x00\x00"
        + b"mntr"
        + space
        + b"XYZ "
        + b"\x00" * 12
        + b"acsp"
        + b"\x00" * 24
        + b"\x00\x00\x00\x00"
        + b"".join(_s15f16(c) for c in D50)
        + b"\x00" * 4
        + b"\x00" * 16
        + b"\x00" * 28
    )
    assert len(header) == 128, len(header)
    return header + table + body


# --- WebP container inspection -------------------------------------------------


def riff_chunks(data: bytes) -> list[bytes]:
    """FourCCs of the top-level chunks of a WebP file."""
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    chunks, pos = [], 12
    while pos + 8 <= len(data):
        kind = data[pos : pos + 4]
        size = struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        chunks.append(kind)
        pos += 8 + size + (size & 1)
    return chunks
