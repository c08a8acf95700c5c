"""Work bounds beyond bytes and pixels: scans, segments, chunks, blocks, EXIF, time.

Every hostile input here is small in bytes and pixels; without its bound it costs
seconds to minutes of decoding (or hundreds of MB), see docs/reliability.md.
"""

from __future__ import annotations

import io
import struct
import time
import tracemalloc

import pytest
from PIL import Image

from processors import ImageRejected, Limits, process_image, structure
from tests.processors import hostile
from tests.processors.processors_testkit import encode, quadrants


def _rejected(data: bytes, code: str, limits: Limits | None = None) -> ImageRejected:
    with pytest.raises(ImageRejected) as info:
        process_image(data, limits or Limits())
    assert info.value.code == code, info.value
    for leak in ("pil", "pillow", "libjpeg", "scan script", "sos"):
        assert leak not in info.value.message.lower()
    return info.value


def _progressive(scans: int, size: tuple[int, int] = (64, 48)) -> bytes:
    """A grey progressive JPEG of exactly ``scans`` scans (libjpeg writes 6; the last repeats)."""
    data = encode(Image.new("L", size, 128), "JPEG", progressive=True)
    written = data.count(b"\xff\xda")
    scan = data[data.rfind(b"\xff\xda") : -2]
    return data[:-2] + scan * (scans - written) + data[-2:]


# --- JPEG scans ------------------------------------------------------------------


def test_the_issues_scan_bomb_is_refused_at_once() -> None:
    bomb = hostile.scan_bomb(2000)  # 342 KB, 99 s of decoding before this bound
    started = time.perf_counter()
    rejected = _rejected(bomb, "image_too_complex")
    assert time.perf_counter() - started < 0.5
    assert "save or export it again" in rejected.message


def test_scans_are_counted_up_to_the_limit() -> None:
    assert process_image(_progressive(structure.MAX_JPEG_SCANS)).source_width == 64
    _rejected(_progressive(structure.MAX_JPEG_SCANS + 1), "image_too_complex")


@pytest.mark.parametrize(
    "params",
    [
        {"progressive": True},
        {"progressive": True, "subsampling": 0, "quality": 95},
        {"progressive": True, "restart_marker_blocks": 1},
        {"optimize": True},
    ],
    ids=["progressive", "progressive-444", "progressive-restarts", "baseline"],
)
def test_what_encoders_write_passes(params: dict[str, object]) -> None:
    data = encode(Image.effect_noise((96, 80), 40).convert("RGB"), "JPEG", **params)
    assert process_image(data).source_width == 96


def test_scan_markers_inside_other_segments_do_not_count() -> None:
    # An EXIF thumbnail (a whole JPEG inside APP1) holds SOS bytes that are no scans of the image.
    inner = _progressive(structure.MAX_JPEG_SCANS)
    app1 = b"\xff\xe1" + struct.pack(">H", 2 + 6 + len(inner)) + b"Exif\x00\x00" + inner
    data = encode(quadrants(64, 48), "JPEG")
    assert process_image(data[:2] + app1 + data[2:]).source_width == 64


def test_pictures_after_the_first_end_of_image_do_not_count() -> None:
    # A multi-picture JPEG (or anything appended): only the first picture is decoded.
    data = encode(quadrants(64, 48), "JPEG") + hostile.scan_bomb(100, 64, 48)
    assert process_image(data).source_width == 64


def test_other_jpeg_segments_are_bounded() -> None:
    written = encode(Image.new("RGB", (16, 16), "red"), "JPEG").count(b"\xff") - 3  # SOI, SOS, EOI
    assert process_image(hostile.jpeg_with_segments(structure.MAX_JPEG_SEGMENTS - written - 1)).source_width == 16
    started = time.perf_counter()
    _rejected(hostile.jpeg_with_segments(2_600_000), "image_too_complex")  # 10 MiB: 10 s of parsing unbounded
    assert time.perf_counter() - started < 0.5


# --- PNG chunks ----------------------------------------------------------------------


@pytest.mark.parametrize("after_idat", [False, True], ids=["before-idat", "after-idat"])
def test_png_chunks_are_bounded(after_idat: bool) -> None:
    limit = structure.MAX_PNG_CHUNKS
    assert process_image(hostile.png_with_chunks(limit - 4, after_idat=after_idat)).source_width == 16
    started = time.perf_counter()
    _rejected(hostile.png_with_chunks(800_000, after_idat=after_idat), "image_too_complex")  # 9 MiB: 5 s
    assert time.perf_counter() - started < 0.5


def test_png_image_data_split_into_too_many_chunks_is_refused() -> None:
    assert process_image(hostile.png_with_split_idat(4_000)).source_width == 256
    _rejected(hostile.png_with_split_idat(structure.MAX_PNG_CHUNKS + 1), "image_too_complex")


def test_png_metadata_chunks_pillow_inflates_are_bounded() -> None:
    # iCCP chunks inflate 1,000:1 and Pillow inflates each one it meets (6 s for 2,000 here).
    assert process_image(hostile.png_with_iccp_chunks(structure.MAX_PNG_INFLATED_CHUNKS)).source_width == 16
    started = time.perf_counter()
    _rejected(hostile.png_with_iccp_chunks(2_000), "image_too_complex")
    assert time.perf_counter() - started < 0.5


# --- GIF blocks ------------------------------------------------------------------------


def test_a_long_gif_comment_is_refused_quickly() -> None:
    # One 10 MiB comment of 255-byte sub-blocks: Pillow joins them quadratically (14 s).
    assert process_image(hostile.gif_with_comments(structure.MAX_GIF_BLOCKS - 4)).source_width == 16
    started = time.perf_counter()
    _rejected(hostile.gif_with_comments(40_000), "image_too_complex")
    assert time.perf_counter() - started < 0.5


def test_many_gif_extensions_or_stray_bytes_are_refused() -> None:
    assert process_image(hostile.gif_with_extensions(structure.MAX_GIF_BLOCKS // 2 - 4)).source_width == 16
    _rejected(hostile.gif_with_extensions(2_000_000), "image_too_complex")
    data = encode(Image.new("P", (16, 16)), "GIF")
    at = data.find(b",")
    _rejected(data[:at] + b"\x00" * (structure.MAX_GIF_BLOCKS + 1) + data[at:], "image_too_complex")


def test_gif_frames_after_the_first_cost_nothing() -> None:
    data = hostile.gif_with_frames(200_000)  # 4 MiB of frames that are never parsed
    started = time.perf_counter()
    assert process_image(data).source_width == 16
    assert time.perf_counter() - started < 1.0


def test_webp_frames_after_the_first_cost_little() -> None:
    data = hostile.webp_with_many_frames(100_000)  # 4.6 MiB: libwebp demuxes in C
    started = time.perf_counter()
    assert process_image(data).source_width == 16
    assert time.perf_counter() - started < 1.0


# --- EXIF ------------------------------------------------------------------------------


def test_exif_entries_that_all_point_at_one_large_region_are_not_read() -> None:
    # 200 entries x 1 MB: Pillow's getexif would copy 200 MB out of a 1 MB chunk.
    data = hostile.png_with_exif(hostile.exif_with_big_entries(200, 1_000_000))
    tracemalloc.start()
    try:
        result = process_image(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.source_width == 16
    assert peak < 50_000_000


def test_an_ordinary_exif_block_is_still_read() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate: the stored 64x48 is shown 48x64
    exif[0x010F] = "maker " * 1000
    data = encode(quadrants(64, 48), "PNG", exif=exif)
    assert structure.exif_ifd0_bytes(Image.open(io.BytesIO(data)).info["exif"]) > 4
    assert (process_image(data).source_width, process_image(data).source_height) == (48, 64)


# --- the deadline ------------------------------------------------------------------------


def test_a_decode_that_runs_past_the_deadline_stops_within_a_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    # Without the scan limit the bomb decodes for minutes; the deadline stops it mid-decode.
    monkeypatch.setattr(structure, "MAX_JPEG_SCANS", 10**6)
    started = time.perf_counter()
    rejected = _rejected(hostile.scan_bomb(400), "processing_timeout", Limits(max_seconds=1.0))
    assert time.perf_counter() - started < 4.0
    assert "1 seconds" in rejected.message


def test_a_spent_deadline_stops_before_decoding() -> None:
    _rejected(encode(quadrants(64, 48), "PNG"), "processing_timeout", Limits(max_seconds=0.0))


def test_a_deadline_a_real_image_meets_changes_nothing() -> None:
    data = encode(quadrants(640, 480), "JPEG", progressive=True)
    assert process_image(data, Limits(max_seconds=30.0)).rendition.width == 640
