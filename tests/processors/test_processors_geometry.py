"""Sizes: the rendition fits in 2048 and is never enlarged; the thumbnail is 400x400."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from processors import process_image
from tests.processors.processors_testkit import decode, encode


def _assert_geometry(result_w: int, result_h: int, width: int, height: int) -> None:
    longest = max(width, height)
    assert max(result_w, result_h) == min(2048, longest)
    assert min(result_w, result_h) >= 1
    # Aspect ratio within one pixel on the short side.
    if width >= height:
        assert abs(result_h - height * result_w / width) <= 1
    else:
        assert abs(result_w - width * result_h / height) <= 1


@pytest.mark.parametrize(
    ("size", "rendition"),
    [
        ((1, 1), (1, 1)),
        ((10_000, 50), (2048, 10)),
        ((50, 10_000), (10, 2048)),
        ((10_000, 3), (2048, 1)),
        ((2048, 2048), (2048, 2048)),
        ((2049, 1000), (2048, 1000)),
        ((2049, 999), (2048, 999)),
        ((3000, 1001), (2048, 683)),
        ((4096, 2560), (2048, 1280)),
        ((300, 200), (300, 200)),
    ],
)
@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_known_sizes(size: tuple[int, int], rendition: tuple[int, int], fmt: str) -> None:
    data = encode(Image.new("RGB", size, (30, 120, 200)), fmt)
    result = process_image(data)
    assert (result.source_width, result.source_height) == size
    assert (result.rendition.width, result.rendition.height) == rendition
    assert decode(result.rendition.data).size == rendition
    assert (result.thumbnail.width, result.thumbnail.height) == (400, 400)
    assert decode(result.thumbnail.data).size == (400, 400)


def test_panorama_thumbnail_is_the_centre() -> None:
    im = Image.new("RGB", (10_000, 50), (255, 0, 0))
    im.paste((0, 0, 255), (4975, 0, 5025, 50))  # a 50x50 blue square in the middle
    result = process_image(encode(im, "PNG"))
    thumb = decode(result.thumbnail.data).convert("RGB")
    centre = thumb.getpixel((200, 200))
    assert isinstance(centre, tuple)
    assert centre[2] > 200 and centre[0] < 60


MODES = ["RGB", "RGBA", "L", "LA", "P", "CMYK", "I;16"]
FORMATS_FOR_MODE = {
    "RGB": ["JPEG", "PNG", "WEBP", "GIF"],
    "RGBA": ["PNG", "WEBP"],
    "L": ["JPEG", "PNG", "GIF"],
    "LA": ["PNG"],
    "P": ["PNG", "GIF"],
    "CMYK": ["JPEG"],
    "I;16": ["PNG"],
}


@st.composite
def images(draw: st.DrawFn) -> tuple[bytes, int, int]:
    """Random sizes (some past 2048 on one side) and aspect ratios, modes, formats."""
    mode = draw(st.sampled_from(MODES))
    fmt = draw(st.sampled_from(FORMATS_FOR_MODE[mode]))
    long_side = draw(st.one_of(st.integers(1, 600), st.integers(2000, 2100), st.integers(2049, 6000)))
    # Keep the pixel count small so a hundred examples stay quick.
    short_side = draw(st.integers(1, max(1, min(long_side, 400_000 // long_side))))
    width, height = (long_side, short_side) if draw(st.booleans()) else (short_side, long_side)
    colour = draw(st.integers(0, 255))
    if mode in ("RGB", "RGBA", "CMYK", "LA"):
        fill: object = tuple([colour] * len(mode))
    else:
        fill = colour
    im = Image.new(mode, (width, height), fill)  # type: ignore[arg-type]
    im.paste(255 if mode in ("L", "P", "I;16") else (0,) * len(mode), (0, 0, 1, 1))
    return encode(im, fmt), width, height


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(images())
def test_rendition_and_thumbnail_sizes_hold_for_any_image(
    case: tuple[bytes, int, int],
) -> None:
    data, width, height = case
    result = process_image(data)
    assert (result.source_width, result.source_height) == (width, height)
    _assert_geometry(result.rendition.width, result.rendition.height, width, height)
    assert decode(result.rendition.data).size == (
        result.rendition.width,
        result.rendition.height,
    )
    assert decode(result.thumbnail.data).size == (400, 400)
    assert len(result.placeholder) <= 1024


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.integers(1, 20_000), st.integers(1, 20_000))
def test_fit_inside_never_enlarges_and_keeps_aspect(width: int, height: int) -> None:
    from processors.pipeline import _fit_inside

    w, h = _fit_inside(width, height, 2048)
    _assert_geometry(w, h, width, height)
