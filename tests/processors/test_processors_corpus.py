"""The shared corpus of real photos and renders (skipped when absent)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from processors import process_image

EXPECTED = {
    "boats.jpg": ("JPEG", (2560, 1600), (2048, 1280)),
    "forest-path.jpg": ("JPEG", (2560, 1600), (2048, 1280)),
    "kite.jpg": ("JPEG", (2560, 1600), (2048, 1280)),
    "moss.jpg": ("JPEG", (2560, 1600), (2048, 1280)),
    "volna-render.jpg": ("JPEG", (5120, 2880), (2048, 1152)),
    "rhythm-render.jpg": ("JPEG", (3840, 2400), (2048, 1280)),
    "cascade-render.png": ("PNG", (3840, 2160), (2048, 1152)),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_image(corpus: Path, name: str) -> None:
    path = corpus / name
    if not path.exists():
        pytest.skip(f"{name} not in corpus")
    fmt, source, rendition = EXPECTED[name]

    result = process_image(path.read_bytes())

    assert result.source_format == fmt
    assert (result.source_width, result.source_height) == source
    assert (result.rendition.width, result.rendition.height) == rendition
    out = Image.open(io.BytesIO(result.rendition.data))
    assert out.size == rendition and out.mode == "RGB"
    assert Image.open(io.BytesIO(result.thumbnail.data)).size == (400, 400)
    # WebP at q85 is smaller than these JPEG/PNG sources.
    assert len(result.rendition.data) < path.stat().st_size
    assert len(result.placeholder) <= 1024
