"""Hostile inputs within the byte and pixel limits: structures a decoder repeats.

Each builder returns bytes within the byte limit that are small in pixels but ask the
decoder (or Pillow's Python header parsing) to repeat something many times. They are
used by the tests of the work bounds (tests/processors/test_processors_bounds.py).
"""

from __future__ import annotations

import io
import itertools
import struct
import zlib

from PIL import Image

from tests.processors.processors_testkit import encode

MIB = 1024 * 1024


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def scan_bomb(scans: int, width: int = 7000, height: int = 7000) -> bytes:
    """The issue's bomb: a grey progressive JPEG whose last scan is repeated ``scans`` times."""
    out = io.BytesIO()
    Image.new("L", (width, height), 128).save(out, "JPEG", progressive=True, quality=50)
    data = out.getvalue()
    scan = data[data.rfind(b"\xff\xda") : -2]
    return data[:-2] + scan * scans + data[-2:]


def jpeg_with_segments(count: int, marker: int = 0xFE, body: bytes = b"") -> bytes:
    """A small JPEG with ``count`` extra marker segments (COM by default) before its frame."""
    data = encode(Image.new("RGB", (16, 16), "red"), "JPEG")
    segment = bytes((0xFF, marker)) + struct.pack(">H", 2 + len(body)) + body
    return data[:2] + segment * count + data[2:]


def png_with_chunks(count: int, kind: bytes = b"zzZz", body: bytes = b"", after_idat: bool = False) -> bytes:
    """A small PNG with ``count`` ancillary chunks before (or after) its image data."""
    data = encode(Image.new("RGB", (16, 16), "red"), "PNG")
    chunk = _png_chunk(kind, body)
    at = data.find(b"IEND") - 4 if after_idat else data.find(b"IDAT") - 4
    return data[:at] + chunk * count + data[at:]


def gif_with_comments(blocks: int, per_block: int = 255) -> bytes:
    """A small GIF with one comment extension of ``blocks`` sub-blocks before its image."""
    data = encode(Image.new("P", (16, 16)), "GIF")
    at = data.find(b",")  # the first image descriptor (the palette has no 0x2C here)
    sub = bytes((per_block,)) + b"c" * per_block
    return data[:at] + b"!\xfe" + sub * blocks + b"\x00" + data[at:]


def gif_with_extensions(count: int) -> bytes:
    """A small GIF with ``count`` empty extension blocks before its image."""
    data = encode(Image.new("P", (16, 16)), "GIF")
    at = data.find(b",")
    return data[:at] + b"!\x01\x01x\x00" * count + data[at:]


def gif_with_frames(frames: int) -> bytes:
    """A GIF of ``frames`` 1x1 frames on a 16x16 screen."""
    first = encode(Image.new("P", (16, 16)), "GIF")
    frame = b"!\xf9\x04\x00\x00\x00\x00\x00" + b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02\x44\x01\x00"
    return first[:-1] + frame * frames + b";"


def exif_with_big_entries(entries: int, data_size: int) -> bytes:
    """A TIFF/EXIF block whose ``entries`` IFD0 entries all point at one ``data_size`` region."""
    header = b"II*\x00" + struct.pack("<I", 8)
    ifd_size = 2 + entries * 12 + 4
    offset = 8 + ifd_size
    ifd = struct.pack("<H", entries)
    for i in range(entries):
        ifd += struct.pack("<HHII", 0x8000 + i, 7, data_size, offset)  # UNDEFINED x data_size
    ifd += struct.pack("<I", 0)
    return header + ifd + b"\x00" * data_size


def png_with_exif(exif: bytes) -> bytes:
    data = encode(Image.new("RGB", (16, 16), "red"), "PNG")
    at = data.find(b"IDAT") - 4
    return data[:at] + _png_chunk(b"eXIf", exif) + data[at:]


def webp_with_frames(frames: int) -> bytes:
    """An animated WebP of ``frames`` identical 16x16 frames (libwebp keeps each one)."""
    ims = [Image.new("RGB", (16, 16), (i % 256, 0, 0)) for i in range(frames)]
    return encode(ims[0], "WEBP", save_all=True, append_images=ims[1:], lossless=True, minimize_size=False)


def webp_with_many_frames(frames: int) -> bytes:
    """An animated WebP whose second ANMF chunk is repeated to give ``frames`` frames."""
    data = webp_with_frames(2)
    first = data.find(b"ANMF")
    second = data.find(b"ANMF", first + 8)
    frame = data[second:]
    body = data[12:second] + frame * (frames - 1)
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body


def png_with_split_idat(chunks: int, width: int = 256, height: int = 256) -> bytes:
    """A noisy PNG whose image data is split into ``chunks`` IDAT chunks."""
    data = encode(Image.effect_noise((width, height), 60).convert("RGB"), "PNG", compress_level=1)
    start = data.find(b"IDAT") - 4
    end = data.find(b"IEND") - 4
    stream = b"".join(
        data[pos + 8 : pos + 8 + struct.unpack_from(">I", data, pos)[0]] for pos in _chunk_positions(data, start, end)
    )
    cuts = [len(stream) * i // chunks for i in range(chunks + 1)]
    idats = b"".join(_png_chunk(b"IDAT", stream[a:b]) for a, b in itertools.pairwise(cuts))
    return data[:start] + idats + data[end:]


def _chunk_positions(data: bytes, start: int, end: int) -> list[int]:
    positions, pos = [], start
    while pos < end:
        positions.append(pos)
        pos += 12 + struct.unpack_from(">I", data, pos)[0]
    return positions
