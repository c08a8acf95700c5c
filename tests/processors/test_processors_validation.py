"""Format allow-list, limits before decoding, and broken files."""

from __future__ import annotations

import struct
import time

import pytest
from PIL import Image

from processors import ImageRejected, Limits, process_image
from tests.processors.processors_testkit import encode, png_bytes, quadrants


def _rejected(data: bytes, code: str, limits: Limits | None = None) -> ImageRejected:
    with pytest.raises(ImageRejected) as info:
        if limits is None:
            process_image(data)
        else:
            process_image(data, limits)
    assert info.value.code == code, info.value
    # Messages are for people: no library names, no exception text.
    lowered = info.value.message.lower()
    for leak in ("pil", "pillow", "libjpeg", "traceback", "errno", "oserror"):
        assert leak not in lowered
    return info.value


@pytest.fixture(scope="module")
def sample() -> Image.Image:
    return quadrants(64, 48)


# --- format --------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["BMP", "TIFF", "PPM", "ICO", "TGA", "PCX"])
def test_formats_outside_the_allow_list_are_unsupported(sample: Image.Image, fmt: str) -> None:
    _rejected(encode(sample, fmt), "unsupported_format")


@pytest.mark.parametrize(
    "data",
    [
        b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n",
        b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
        b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2",  # an MP4 video: ISOBMFF but not HEIF
        b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1jpeg",  # HEIF holding JPEG items only
        b"PK\x03\x04" + b"\x00" * 64,
        b"just some text that claims to be image/jpeg",
        b"RIFF\x10\x00\x00\x00WAVEfmt ",
    ],
    ids=["pdf", "svg", "mp4", "heif-jpeg", "zip", "text", "wav"],
)
def test_non_images_are_unsupported(data: bytes) -> None:
    _rejected(data, "unsupported_format")


def test_a_polyglot_is_judged_by_its_first_bytes(sample: Image.Image) -> None:
    # An HTML page with a JPEG appended is not a JPEG.
    data = b"<html><script>alert(1)</script></html>" + encode(sample, "JPEG")
    _rejected(data, "unsupported_format")


def test_empty_input_is_rejected() -> None:
    _rejected(b"", "corrupt_image")


# --- limits ----------------------------------------------------------------------


def test_bytes_over_the_limit_are_rejected_before_anything_else(
    sample: Image.Image,
) -> None:
    data = encode(sample, "PNG")
    _rejected(data, "image_too_large", Limits(max_bytes=len(data) - 1))
    assert process_image(data, Limits(max_bytes=len(data))).source_width == 64


def test_pixels_over_the_limit_are_rejected(sample: Image.Image) -> None:
    data = encode(sample, "PNG")
    _rejected(data, "image_too_large", Limits(max_pixels=64 * 48 - 1))
    assert process_image(data, Limits(max_pixels=64 * 48)).source_height == 48


def _jpeg_with_size(width: int, height: int) -> bytes:
    data = bytearray(encode(Image.new("RGB", (16, 16), "red"), "JPEG"))
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _gif_with_size(width: int, height: int) -> bytes:
    data = bytearray(encode(Image.new("P", (16, 16)), "GIF"))
    data[6:10] = struct.pack("<HH", width, height)
    return bytes(data)


def _webp_with_canvas(width: int, height: int) -> bytes:
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\x00" * 4
    vp8x += (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    body = b"WEBP" + vp8x + b"VP8 " + struct.pack("<I", 4) + b"\x00" * 4
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.mark.parametrize(
    "data",
    [
        png_bytes(100_000, 100_000, 8, 2, None),
        png_bytes(8_000, 8_000, 8, 6, b""),
        _jpeg_with_size(60_000, 60_000),
        _jpeg_with_size(10_000, 6_000),
        _gif_with_size(65_535, 65_535),
        _webp_with_canvas(16_384, 16_384),
    ],
    ids=["png-10G", "png-64M", "jpeg-3.6G", "jpeg-60M", "gif-4G", "webp-268M"],
)
def test_decompression_bombs_are_rejected_from_the_header_quickly(data: bytes) -> None:
    started = time.perf_counter()
    _rejected(data, "image_too_large")
    assert time.perf_counter() - started < 0.5


def test_pillows_own_bomb_guard_also_maps_to_too_large() -> None:
    # With a very generous limit Pillow's MAX_IMAGE_PIXELS guard fires first.
    huge = Limits(max_pixels=10**12)
    _rejected(png_bytes(30_000, 30_000, 8, 2, None), "image_too_large", huge)


# --- broken files -------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP"])
@pytest.mark.parametrize("keep", [0.3, 0.6, 0.9])
def test_truncated_files_are_corrupt(fmt: str, keep: float) -> None:
    im = Image.effect_noise((256, 256), 60).convert("RGB")
    if fmt == "GIF":
        im = im.convert("P")
    data = encode(im, fmt)
    _rejected(data[: int(len(data) * keep)], "corrupt_image")


def test_a_truncated_progressive_jpeg_is_corrupt() -> None:
    im = Image.effect_noise((256, 256), 60).convert("RGB")
    data = encode(im, "JPEG", progressive=True)
    _rejected(data[: len(data) // 2], "corrupt_image")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP"])
def test_magic_bytes_alone_are_corrupt(fmt: str) -> None:
    data = encode(Image.new("RGB", (8, 8)), fmt)
    _rejected(data[:16], "corrupt_image")


def test_png_with_a_bad_checksum_is_corrupt() -> None:
    data = bytearray(encode(quadrants(32, 32), "PNG"))
    idat = data.find(b"IDAT")
    data[idat + 6] ^= 0xFF  # inside the compressed data; the CRC no longer matches
    _rejected(bytes(data), "corrupt_image")


def test_png_without_image_data_is_corrupt() -> None:
    _rejected(png_bytes(16, 16, 8, 2, None), "corrupt_image")


def test_zero_sized_png_header_is_corrupt() -> None:
    _rejected(png_bytes(0, 16, 8, 2, b""), "corrupt_image")
