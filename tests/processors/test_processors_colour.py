"""Pixel modes, ICC profiles, CMYK, 16-bit, palette, grayscale and alpha."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from processors import process_image
from tests.processors.processors_testkit import (
    BLUE,
    GREEN,
    P3_PRIMARIES,
    RED,
    SRGB_PRIMARIES,
    close,
    decode,
    encode,
    icc_profile,
    pixel,
    png_rgb16,
    quadrants,
)


def _rendition(data: bytes) -> Image.Image:
    return decode(process_image(data).rendition.data)


# --- ICC ---------------------------------------------------------------------------


def test_embedded_rgb_profile_is_converted_to_srgb() -> None:
    # A profile whose "red" is sRGB blue and whose "blue" is sRGB red.
    swapped = icc_profile("Swapped primaries", primaries=SRGB_PRIMARIES[::-1])
    data = encode(quadrants(128, 128), "PNG", icc_profile=swapped)

    out = _rendition(data).convert("RGB")

    assert close(pixel(out, 0.25, 0.25), BLUE)  # stored red -> shown blue
    assert close(pixel(out, 0.75, 0.25), GREEN)
    assert close(pixel(out, 0.25, 0.75), RED)  # stored blue -> shown red


def test_wide_gamut_profile_saturates_colours_in_srgb() -> None:
    p3 = icc_profile("Display P3 like", primaries=P3_PRIMARIES)
    source = Image.new("RGB", (96, 96), (60, 200, 60))
    plain = _rendition(encode(source, "JPEG", quality=95)).convert("RGB")
    tagged = _rendition(encode(source, "JPEG", quality=95, icc_profile=p3))

    assert close(pixel(plain, 0.5, 0.5), (60, 200, 60), 6)
    # The same numbers mean a green outside sRGB's gamut: it clips to pure green.
    assert tagged.mode == "RGB"
    assert close(pixel(tagged, 0.5, 0.5), (0, 205, 0), 10)


def test_grayscale_profile_is_honoured() -> None:
    linear = icc_profile("Linear gray", gamma=1.0)
    data = encode(Image.new("L", (64, 64), 128), "PNG", icc_profile=linear)
    value = pixel(_rendition(data).convert("RGB"), 0.5, 0.5)
    # Linear 50% grey is about 188 in sRGB.
    assert close(value, (188, 188, 188), tolerance=6)


def test_srgb_profile_changes_nothing() -> None:
    srgb = icc_profile("sRGB IEC61966-2.1", primaries=SRGB_PRIMARIES)
    data = encode(Image.new("RGB", (64, 64), (200, 100, 50)), "PNG", icc_profile=srgb)
    assert close(pixel(_rendition(data).convert("RGB"), 0.5, 0.5), (200, 100, 50), 6)


def test_a_broken_profile_is_ignored() -> None:
    data = encode(Image.new("RGB", (64, 64), (200, 100, 50)), "PNG", icc_profile=b"junk")
    assert close(pixel(_rendition(data).convert("RGB"), 0.5, 0.5), (200, 100, 50), 6)


def test_profile_with_alpha_keeps_alpha() -> None:
    swapped = icc_profile("Swapped primaries", primaries=SRGB_PRIMARIES[::-1])
    im = Image.new("RGBA", (64, 64), (255, 0, 0, 255))
    im.paste((255, 0, 0, 0), (0, 0, 32, 64))
    out = _rendition(encode(im, "PNG", icc_profile=swapped))
    assert out.mode == "RGBA"
    assert pixel(out, 0.25, 0.5)[3] == 0
    assert close(pixel(out, 0.75, 0.5), (0, 0, 255, 255))


# --- CMYK ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cmyk", "rgb"),
    [
        ((255, 0, 0, 0), (0, 255, 255)),  # cyan
        ((0, 255, 0, 0), (255, 0, 255)),  # magenta
        ((0, 0, 255, 0), (255, 255, 0)),  # yellow
        ((0, 255, 255, 0), (255, 0, 0)),  # red
        ((0, 0, 0, 255), (0, 0, 0)),  # black
        ((0, 0, 0, 0), (255, 255, 255)),  # paper
    ],
)
def test_adobe_inverted_cmyk_jpeg_decodes_to_the_right_colours(
    cmyk: tuple[int, int, int, int], rgb: tuple[int, int, int]
) -> None:
    data = encode(Image.new("CMYK", (64, 64), cmyk), "JPEG", quality=95)
    # libjpeg writes an Adobe APP14 marker and Photoshop-style inverted CMYK.
    assert b"Adobe" in data[:200]
    result = process_image(data)
    assert result.source_format == "JPEG"
    out = decode(result.rendition.data)
    assert out.mode == "RGB"
    assert close(pixel(out, 0.5, 0.5), rgb, tolerance=16)


def test_large_cmyk_jpeg_is_resized() -> None:
    im = Image.new("CMYK", (3000, 1000), (0, 255, 255, 0))
    result = process_image(encode(im, "JPEG", quality=90))
    assert (result.rendition.width, result.rendition.height) == (2048, 683)
    assert close(pixel(decode(result.rendition.data), 0.5, 0.5), RED, tolerance=16)


# --- 16-bit -----------------------------------------------------------------------------


def test_16_bit_grayscale_png_keeps_its_tones() -> None:
    im = Image.new("I;16", (64, 32))
    im.paste(0xFFFF, (0, 0, 32, 32))
    im.paste(0x8080, (32, 0, 64, 32))
    data = encode(im, "PNG")
    assert data[24] == 16  # bit depth in IHDR
    out = _rendition(data).convert("RGB")
    assert close(pixel(out, 0.25, 0.5), (255, 255, 255), 4)
    assert close(pixel(out, 0.75, 0.5), (128, 128, 128), 4)


def test_16_bit_rgb_png_keeps_its_colours() -> None:
    row = [(0xFFFF, 0, 0)] * 32 + [(0x8000, 0x4000, 0xC000)] * 32
    out = _rendition(png_rgb16([row] * 32)).convert("RGB")
    assert close(pixel(out, 0.25, 0.5), RED, 4)
    assert close(pixel(out, 0.75, 0.5), (128, 64, 192), 4)


# --- palette, grayscale, alpha -----------------------------------------------------------


def test_palette_png_without_transparency_is_rgb() -> None:
    im = quadrants(64, 64).quantize(4)
    assert im.mode == "P"
    out = _rendition(encode(im, "PNG"))
    assert out.mode == "RGB"
    assert close(pixel(out, 0.25, 0.25), RED)


def test_palette_png_with_transparency_keeps_alpha() -> None:
    im = quadrants(64, 64).quantize(4)
    red_index = im.getpixel((0, 0))
    data = encode(im, "PNG", transparency=red_index)
    out = _rendition(data)
    assert out.mode == "RGBA"
    assert pixel(out, 0.25, 0.25)[3] == 0
    assert close(pixel(out, 0.75, 0.25), (*GREEN, 255))


def test_rgb_png_with_a_transparent_colour_keeps_alpha() -> None:
    data = encode(quadrants(64, 64), "PNG", transparency=RED)
    out = _rendition(data)
    assert out.mode == "RGBA"
    assert pixel(out, 0.25, 0.25)[3] == 0
    assert pixel(out, 0.75, 0.75)[3] == 255


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_grayscale_l(fmt: str) -> None:
    im = Image.new("L", (64, 64), 40)
    im.paste(220, (32, 0, 64, 64))
    out = _rendition(encode(im, fmt, quality=95)).convert("RGB")
    assert close(pixel(out, 0.25, 0.5), (40, 40, 40), 6)
    assert close(pixel(out, 0.75, 0.5), (220, 220, 220), 6)


def test_grayscale_with_alpha_la() -> None:
    im = Image.new("LA", (64, 64), (200, 255))
    im.paste((200, 0), (0, 0, 32, 64))
    out = _rendition(encode(im, "PNG"))
    assert out.mode == "RGBA"
    assert pixel(out, 0.25, 0.5)[3] == 0
    assert close(pixel(out, 0.75, 0.5), (200, 200, 200, 255), 6)


def test_bilevel_png() -> None:
    im = Image.new("1", (64, 64), 0)
    im.paste(1, (32, 0, 64, 64))
    out = _rendition(encode(im, "PNG")).convert("RGB")
    assert close(pixel(out, 0.25, 0.5), (0, 0, 0), 6)
    assert close(pixel(out, 0.75, 0.5), (255, 255, 255), 6)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_alpha_is_kept_in_both_outputs(fmt: str) -> None:
    im = Image.new("RGBA", (600, 600), (0, 0, 255, 255))
    im.paste((0, 0, 0, 0), (0, 0, 300, 600))
    params = {"lossless": True} if fmt == "WEBP" else {}
    result = process_image(encode(im, fmt, **params))
    for encoded in (result.rendition, result.thumbnail):
        out = decode(encoded.data)
        assert out.mode == "RGBA"
        assert pixel(out, 0.1, 0.5)[3] == 0
        assert close(pixel(out, 0.9, 0.5), (*BLUE, 255))


def test_resizing_alpha_does_not_bleed_hidden_colours() -> None:
    # Fully transparent pixels carry white; a naive resize would grey the edge.
    im = Image.new("RGBA", (4096, 64), (255, 255, 255, 0))
    im.paste((0, 0, 0, 255), (2048, 0, 4096, 64))
    out = decode(process_image(encode(im, "PNG")).rendition.data)
    edge = out.getpixel((1025, 16))
    assert isinstance(edge, tuple)
    assert edge[3] > 100 and max(edge[:3]) < 40


# --- animation ---------------------------------------------------------------------------


def _frames() -> list[Image.Image]:
    return [Image.new("RGB", (64, 64), c) for c in (RED, GREEN, BLUE)]


def test_animated_gif_gives_its_first_frame() -> None:
    first, *rest = _frames()
    data = encode(first, "GIF", save_all=True, append_images=rest, duration=100, loop=0)
    result = process_image(data)
    assert result.source_format == "GIF"
    assert close(pixel(decode(result.rendition.data).convert("RGB"), 0.5, 0.5), RED)


def test_animated_webp_gives_its_first_frame() -> None:
    first, *rest = _frames()
    data = encode(first, "WEBP", save_all=True, append_images=rest, lossless=True)
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 3
    result = process_image(data)
    assert result.source_format == "WEBP"
    assert close(pixel(decode(result.rendition.data).convert("RGB"), 0.5, 0.5), RED)


def test_gif_with_transparency_keeps_alpha() -> None:
    im = Image.new("P", (64, 64), 1)
    im.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    im.paste(0, (0, 0, 32, 64))
    out = _rendition(encode(im, "GIF", transparency=0))
    assert out.mode == "RGBA"
    assert pixel(out, 0.25, 0.5)[3] == 0
    assert close(pixel(out, 0.75, 0.5), (*GREEN, 255))


def test_multi_picture_jpeg_counts_as_jpeg() -> None:
    first, second, _ = _frames()
    data = encode(first, "MPO", save_all=True, append_images=[second])
    assert Image.open(io.BytesIO(data)).format == "MPO"
    result = process_image(data)
    assert result.source_format == "JPEG"
    assert close(pixel(decode(result.rendition.data), 0.5, 0.5), RED)
