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
    """A small JPEG with ``count`` extra marker segments (COM by default) before its frame
    (it has 8 of its own: APP0, two DQT, SOF0, four DHT)."""
    data = encode(Image.new("RGB", (16, 16), "red"), "JPEG")
    segment = bytes((0xFF, marker)) + struct.pack(">H", 2 + len(body)) + body
    return data[:2] + segment * count + data[2:]


def png_with_chunks(count: int, kind: bytes = b"zzZz", body: bytes = b"", after_idat: bool = False) -> bytes:
    """A small PNG with ``count`` ancillary chunks before (or after) its image data."""
    data = encode(Image.new("RGB", (16, 16), "red"), "PNG")
    chunk = _png_chunk(kind, body)
    at = data.find(b"IEND") - 4 if after_idat else data.find(b"IDAT") - 4
    return data[:at] + chunk * count + data[at:]


def png_with_iccp_chunks(count: int) -> bytes:
    """A small PNG with ``count`` iCCP chunks of 1 KB, each inflating to 1 MiB of zeros."""
    body = b"icc\x00\x00" + zlib.compress(b"\x00" * (MIB - 1), 9)
    return png_with_chunks(count, b"iCCP", body)


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


# --- measurement: python -m tests.processors.hostile ---------------------------------------


def _legit_50mp() -> list[tuple[str, bytes]]:
    """Real-looking images at the 50 MP limit, the slowest kinds to decode and resize."""
    side = 7071  # 49.99 MP
    grad = Image.linear_gradient("L").resize((side, side))
    noise = Image.effect_noise((side, side), 20)
    rgb = Image.merge(
        "RGB", (grad, grad.transpose(Image.Transpose.ROTATE_90), grad.transpose(Image.Transpose.ROTATE_180))
    )
    wide = rgb.resize((16383, 3051))  # WebP's largest side
    return [
        ("JPEG baseline 4:2:0, 50 MP", encode(Image.merge("RGB", (noise, grad, grad)), "JPEG", quality=80)),
        (
            "JPEG progressive 4:4:4, 50 MP",
            encode(Image.merge("RGB", (noise, grad, grad)), "JPEG", quality=60, progressive=True, subsampling=0),
        ),
        (
            "PNG RGBA, 50 MP",
            encode(Image.merge("RGBA", (grad, grad, grad.transpose(Image.Transpose.ROTATE_90), grad)), "PNG"),
        ),
        ("WebP lossless, 50 MP", encode(wide, "WEBP", lossless=True)),
        ("WebP lossy, 50 MP", encode(wide, "WEBP", quality=90)),
        ("GIF, 50 MP", encode(rgb.convert("P", palette=Image.Palette.ADAPTIVE), "GIF")),
    ]


def _hostile_at_the_limits() -> list[tuple[str, bytes]]:
    from processors import structure

    return [
        (
            f"JPEG, {structure.MAX_JPEG_SCANS} scans over 50 MP (the scan limit)",
            scan_bomb(structure.MAX_JPEG_SCANS - 6, 7071, 7071),
        ),
        ("JPEG, the issue's 2,000 scans", scan_bomb(2000)),
        (
            f"JPEG, {structure.MAX_JPEG_SEGMENTS} marker segments (the limit)",
            jpeg_with_segments(structure.MAX_JPEG_SEGMENTS - 8),  # APP0, 2 DQT, SOF0, 4 DHT,
        ),
        ("JPEG, 2.6 M marker segments (10 MiB)", jpeg_with_segments(2_600_000)),
        (
            f"PNG, {structure.MAX_PNG_CHUNKS} chunks before IDAT (the limit)",
            png_with_chunks(structure.MAX_PNG_CHUNKS - 4),
        ),
        (
            f"PNG, {structure.MAX_PNG_CHUNKS} chunks after IDAT (the limit)",
            png_with_chunks(structure.MAX_PNG_CHUNKS - 4, after_idat=True),
        ),
        ("PNG, 800,000 chunks (9 MiB)", png_with_chunks(800_000)),
        (
            f"PNG, {structure.MAX_PNG_INFLATED_CHUNKS} iCCP chunks inflating to 1 MiB (the limit)",
            png_with_iccp_chunks(structure.MAX_PNG_INFLATED_CHUNKS),
        ),
        ("PNG, 9,000 iCCP chunks inflating to 1 MiB (9 MiB)", png_with_iccp_chunks(9_000)),
        (
            f"GIF, one comment of {structure.MAX_GIF_BLOCKS} sub-blocks (the limit)",
            gif_with_comments(structure.MAX_GIF_BLOCKS - 4),
        ),
        ("GIF, one comment of 40,000 sub-blocks (10 MiB)", gif_with_comments(40_000)),
        ("GIF, 400,000 frames (9 MiB)", gif_with_frames(400_000)),
        ("WebP, 200,000 frames (9 MiB)", webp_with_many_frames(200_000)),
        ("PNG eXIf, 8,000 entries x 1 MiB region", png_with_exif(exif_with_big_entries(8_000, MIB))),
    ]


def main() -> None:
    """Print the time (and outcome) of every input above through ``process_image``."""
    import os
    import time

    from processors import ImageRejected, Limits, process_image

    process_image(encode(Image.new("RGB", (16, 16)), "PNG"))  # import and warm up
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    for name, data in [*_legit_50mp(), *_hostile_at_the_limits()]:
        started = time.perf_counter()
        try:
            process_image(data, Limits())
            outcome = "completed"
        except ImageRejected as rejected:
            outcome = rejected.code
        print(f"{name:58} {len(data) / MIB:6.2f} MiB {time.perf_counter() - started:7.2f} s  {outcome}", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
