"""Bounds on the structures a decoder repeats, checked on the raw bytes before decoding.

The byte limit and the pixel limit do not bound the work of a decode: a progressive
JPEG may repeat a scan thousands of times (libjpeg decodes each one over the whole
image), and Pillow parses JPEG marker segments, PNG chunks and GIF blocks in Python,
one by one. Each walker here counts what its decoder would repeat, stops as soon as a
count passes its limit, and refuses the image with ``image_too_complex``. Each limit is
far above what encoders write and keeps the worst case within a second or so
(docs/reliability.md, "What is bounded per upload").

The walkers never judge whether the bytes are valid: where they lose the structure they
stop counting, and the decoder reports the damage (``corrupt_image``). They follow the
decoders' own resynchronisation (libjpeg skips to the next marker) so that bytes the
walker skips are bytes the decoder skips too.
"""

from __future__ import annotations

import re
import struct
from typing import Final

from processors.types import ImageRejected

#: Scans (SOS segments) in a JPEG. libjpeg/libjpeg-turbo progressive JPEGs have 10 (6 for
#: grey), mozjpeg 8 to 11, baseline JPEGs 1 to 3; libjpeg-turbo's own TJFLAG_LIMITSCANS
#: allows 500, which at 50 megapixels is a minute or more of decoding: libjpeg decodes
#: every scan over the whole image, 0.05-0.2 s each at 50 MP even when the scan is 75 bytes.
MAX_JPEG_SCANS: Final = 32
#: Other marker segments of a JPEG (APPn, COM, DQT, DHT, DRI, ...). Real files have tens
#: (an ICC profile split over APP2 segments, a DHT per progressive scan); Pillow parses
#: those before the first scan in Python at ~4 µs each.
MAX_JPEG_SEGMENTS: Final = 1_000
#: PNG chunks, IDAT included: encoders split the image data into 8-64 KiB chunks (libpng:
#: 8 KiB, so 1,280 for 10 MiB; a few write one per row). Pillow handles every chunk in
#: Python, at 10-30 µs each.
MAX_PNG_CHUNKS: Final = 16_384
#: PNG chunks Pillow inflates on open: iCCP (the spec allows one), zTXt and iTXt. Pillow caps
#: each at 1 MB inflated and the text at 64 MB in all, but not the ICC profiles: 2,000 iCCP
#: chunks of 1 KB, each inflating to 1 MB, took 6 s (10 MiB of them would take ~30 s).
MAX_PNG_INFLATED_CHUNKS: Final = 64
_INFLATED: Final = frozenset({b"iCCP", b"zTXt", b"iTXt"})
#: GIF blocks before the first image (extensions, their sub-blocks, stray bytes). Pillow
#: parses them in Python and joins comment sub-blocks quadratically (40,000 sub-blocks of
#: one 10 MiB comment took 14 s); real files have a handful.
MAX_GIF_BLOCKS: Final = 4_096
#: Bytes Pillow copies out of an EXIF block's first IFD (every entry larger than 4 bytes is
#: read from its offset, and many entries may point at one large region). Real IFD0s hold
#: well under 64 KiB (a JPEG APP1 segment cannot hold more).
MAX_EXIF_IFD_BYTES: Final = 1024 * 1024

# A marker: 0xFF and a code that is not a stuffed zero, a restart marker (RSTn does not end
# entropy-coded data) or a fill byte. One 0xFF only, so runs of 0xFF cost linear time.
_MARKER: Final = re.compile(rb"\xff([^\x00\xd0-\xd7\xff])")
_SOS: Final = 0xDA
_EOI: Final = 0xD9
_SOI: Final = 0xD8
_TEM: Final = 0x01


def _too_complex(what: str) -> ImageRejected:
    return ImageRejected(
        "image_too_complex",
        f"The image file has {what}, more than any camera or image editor writes, and would take "
        "too long to read. Open it in an image editor, save or export it again, and upload the new file.",
    )


def check_jpeg(data: bytes) -> None:
    """Refuse a JPEG with more than :data:`MAX_JPEG_SCANS` scans or
    :data:`MAX_JPEG_SEGMENTS` other segments before its first EOI.

    Only the first picture counts: the decoder stops at its EOI (the other pictures of
    a multi-picture JPEG, and anything appended, are never decoded).
    """
    scans = segments = 0
    pos, size = 2, len(data)
    while (found := _MARKER.search(data, pos)) is not None:
        code, pos = found[1][0], found.end()
        if code in (_EOI, _SOI):  # the end, or an error for libjpeg
            return
        if code == _TEM:  # standalone, no length
            continue
        if pos + 2 > size:
            return
        length = (data[pos] << 8) | data[pos + 1]
        if length < 2:  # libjpeg refuses it
            return
        if code == _SOS:
            scans += 1
            if scans > MAX_JPEG_SCANS:
                raise _too_complex(f"more than {MAX_JPEG_SCANS} progressive scans")
        else:
            segments += 1
            if segments > MAX_JPEG_SEGMENTS:
                raise _too_complex(f"more than {MAX_JPEG_SEGMENTS} marker segments")
        # After a scan header the entropy-coded data follows; the search above skips it
        # up to the next marker, as libjpeg does.
        pos += length


def check_png(data: bytes) -> None:
    """Refuse a PNG with more than :data:`MAX_PNG_CHUNKS` chunks, or more than
    :data:`MAX_PNG_INFLATED_CHUNKS` compressed metadata chunks, up to its IEND."""
    pos, size, chunks, inflated = 8, len(data), 0, 0
    while pos + 8 <= size:
        length, kind = struct.unpack_from(">I4s", data, pos)
        chunks += 1
        if chunks > MAX_PNG_CHUNKS:
            raise _too_complex(f"more than {MAX_PNG_CHUNKS} chunks")
        if kind in _INFLATED:
            inflated += 1
            if inflated > MAX_PNG_INFLATED_CHUNKS:
                raise _too_complex(f"more than {MAX_PNG_INFLATED_CHUNKS} compressed metadata chunks")
        if kind == b"IEND":
            return
        pos += 12 + length


def check_gif(data: bytes) -> None:
    """Refuse a GIF with more than :data:`MAX_GIF_BLOCKS` blocks before its first image.

    Only the first frame is decoded, and Pillow reads no further than its descriptor when
    it opens the file, so later frames cost nothing (their number is not counted).
    """
    size = len(data)
    if size < 13:
        return
    flags = data[10]
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    blocks = 0
    while pos < size:
        tag = data[pos]
        if tag in (0x2C, 0x3B):  # image descriptor, trailer
            return
        blocks += 1
        pos += 1
        if tag == 0x21:  # extension: a label, then sub-blocks up to an empty one
            pos += 1
            while pos < size and data[pos]:
                blocks += 1
                if blocks > MAX_GIF_BLOCKS:
                    break
                pos += 1 + data[pos]
            pos += 1
        # Pillow skips any other byte one at a time: it counts as a block too.
        if blocks > MAX_GIF_BLOCKS:
            raise _too_complex(f"more than {MAX_GIF_BLOCKS} blocks before its first picture")


#: TIFF field type -> bytes per value (the types Pillow reads; it skips unknown ones).
_TIFF_TYPE_SIZES: Final[dict[int, int]] = {
    1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8, 18: 8,
}  # fmt: skip


_TIFF_HEADERS: Final = (b"MM\x00*", b"II*\x00", b"MM*\x00", b"II\x00*", b"MM\x00+")


def exif_ifd0_bytes(exif: bytes) -> int:
    """How many bytes Pillow would copy out of this EXIF block's first IFD.

    Counted like ``PIL.TiffImagePlugin.ImageFileDirectory_v2.load``: every entry whose
    values take more than 4 bytes is read from its offset. 0 when the block is unreadable.
    """
    while exif.startswith(b"Exif\x00\x00"):
        exif = exif[6:]
    # The headers Pillow reads as a classic TIFF (it cannot read a BigTIFF one here).
    if len(exif) < 8 or exif[:4] not in _TIFF_HEADERS:
        return 0
    endian = "<" if exif[:2] == b"II" else ">"
    (offset,) = struct.unpack_from(endian + "I", exif, 4)
    if offset + 2 > len(exif):
        return 0
    (entries,) = struct.unpack_from(endian + "H", exif, offset)
    total = 0
    entry = struct.Struct(endian + "HHI")
    for index in range(entries):
        at = offset + 2 + 12 * index
        if at + 12 > len(exif):
            break
        _tag, kind, count = entry.unpack_from(exif, at)
        value_size = _TIFF_TYPE_SIZES.get(kind, 0) * count
        if value_size > 4:
            total += value_size
    return total
