"""The placeholder: a tiny blurred WebP data URI of at most 1 KB."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from processors import process_image
from tests.processors.processors_testkit import encode, quadrants

PREFIX = "data:image/webp;base64,"


def _decode_uri(uri: str) -> Image.Image:
    assert uri.startswith(PREFIX)
    im = Image.open(io.BytesIO(base64.b64decode(uri[len(PREFIX) :], validate=True)))
    im.load()
    return im


@pytest.mark.parametrize(
    "im",
    [
        quadrants(640, 480),
        Image.effect_noise((1024, 1024), 128).convert("RGB"),
        Image.merge(
            "RGBA",
            [Image.effect_noise((800, 300), 128).convert("L") for _ in range(4)],
        ),
        Image.new("RGB", (1, 1), "red"),
        Image.new("RGB", (10_000, 20), "blue"),
    ],
    ids=["quadrants", "noise", "noisy-alpha", "1x1", "panorama"],
)
def test_placeholder_is_a_small_webp_data_uri(im: Image.Image) -> None:
    result = process_image(encode(im, "PNG"))
    assert len(result.placeholder) <= 1024
    preview = _decode_uri(result.placeholder)
    assert preview.format == "WEBP"
    assert max(preview.size) <= 32
    # Same shape as the rendition, give or take rounding on tiny sizes.
    if preview.width >= preview.height:
        expected = preview.width * result.rendition.height / result.rendition.width
        assert abs(preview.height - expected) <= 1
    else:
        expected = preview.height * result.rendition.width / result.rendition.height
        assert abs(preview.width - expected) <= 1


def test_placeholder_keeps_the_colours() -> None:
    result = process_image(encode(quadrants(640, 480), "PNG"))
    preview = _decode_uri(result.placeholder).convert("RGB")
    r, g, b = preview.getpixel((2, 2))  # type: ignore[misc]
    assert r > 150 and g < 100 and b < 100
