"""All eight EXIF orientations end up upright, in every output."""

from __future__ import annotations

import pytest
from PIL import Image

from processors import process_image
from tests.processors.processors_testkit import (
    BLUE,
    GREEN,
    RED,
    WHITE,
    close,
    decode,
    encode,
    pixel,
    quadrants,
)

# How a viewer turns the stored pixels upright for each orientation (Pillow's
# exif_transpose table); the test stores the inverse of the upright picture.
UPRIGHT = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
INVERSE = {
    Image.Transpose.ROTATE_270: Image.Transpose.ROTATE_90,
    Image.Transpose.ROTATE_90: Image.Transpose.ROTATE_270,
}

# The upright picture: wide, with four distinct quadrants.
WIDTH, HEIGHT = 240, 160


def _stored(orientation: int) -> Image.Image:
    upright = quadrants(WIDTH, HEIGHT)
    op = UPRIGHT[orientation]
    if op is None:
        return upright
    stored = upright.transpose(INVERSE.get(op, op))
    fixed = stored.transpose(op)
    assert fixed.tobytes() == upright.tobytes()  # the test's own premise
    return stored


def _exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


def _assert_upright(im: Image.Image) -> None:
    assert close(pixel(im, 0.2, 0.2), RED)
    assert close(pixel(im, 0.8, 0.2), GREEN)
    assert close(pixel(im, 0.2, 0.8), BLUE)
    assert close(pixel(im, 0.8, 0.8), WHITE)


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_orientation_is_applied(fmt: str, orientation: int) -> None:
    params: dict[str, object] = {"exif": _exif(orientation)}
    if fmt == "JPEG":
        params["quality"] = 95
    if fmt == "WEBP":
        params["lossless"] = True
    data = encode(_stored(orientation), fmt, **params)

    result = process_image(data)

    assert (result.source_width, result.source_height) == (WIDTH, HEIGHT)
    rendition = decode(result.rendition.data).convert("RGB")
    assert rendition.size == (WIDTH, HEIGHT)
    _assert_upright(rendition)
    # The thumbnail is the centre square of the upright picture.
    thumbnail = decode(result.thumbnail.data).convert("RGB")
    assert thumbnail.size == (400, 400)
    _assert_upright(thumbnail)


@pytest.mark.parametrize("orientation", [5, 6, 7, 8])
def test_large_rotated_jpeg_is_resized_upright(orientation: int) -> None:
    # Stored 1600 wide x 2400 tall with orientation 6: upright 2400 x 1600.
    upright = quadrants(2400, 1600)
    op = UPRIGHT[orientation]
    assert op is not None
    stored = upright.transpose(INVERSE.get(op, op))
    data = encode(stored, "JPEG", quality=90, exif=_exif(orientation))

    result = process_image(data)

    assert (result.source_width, result.source_height) == (2400, 1600)
    assert (result.rendition.width, result.rendition.height) == (2048, 1365)
    rendition = decode(result.rendition.data).convert("RGB")
    assert rendition.size == (2048, 1365)
    _assert_upright(rendition)
    _assert_upright(decode(result.thumbnail.data).convert("RGB"))


def test_unreadable_or_out_of_range_orientation_counts_as_upright() -> None:
    data = encode(quadrants(WIDTH, HEIGHT), "JPEG", quality=95, exif=_exif(42))
    result = process_image(data)
    _assert_upright(decode(result.rendition.data).convert("RGB"))
