"""Bounded fuzzing: mangled files either process or raise ImageRejected."""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from processors import ImageRejected, Limits, ProcessedImage, process_image
from tests.processors.processors_testkit import P3_PRIMARIES, encode, icc_profile, quadrants

# Small limits keep every example cheap even when a mutation inflates a header.
FUZZ_LIMITS = Limits(max_bytes=1024 * 1024, max_pixels=1_000_000)


@cache
def seeds() -> tuple[bytes, ...]:
    base = quadrants(48, 32)
    noisy = Image.effect_noise((48, 32), 80).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6
    frames = [Image.new("RGBA", (24, 24), c) for c in ((255, 0, 0, 255), (0, 0, 255, 90))]
    sixteen = Image.new("I;16", (24, 16), 0x8000)
    palette = base.quantize(8)
    return (
        encode(noisy, "JPEG", quality=80),
        encode(noisy, "JPEG", quality=80, progressive=True),
        encode(base, "JPEG", exif=exif, icc_profile=icc_profile("P3", primaries=P3_PRIMARIES)),
        encode(Image.new("CMYK", (24, 24), (0, 255, 255, 0)), "JPEG"),
        encode(noisy, "PNG"),
        encode(palette, "PNG", transparency=0),
        encode(sixteen, "PNG"),
        encode(base.convert("LA"), "PNG"),
        encode(palette, "GIF"),
        encode(
            frames[0].convert("P"),
            "GIF",
            save_all=True,
            append_images=[frames[1].convert("P")],
        ),
        encode(noisy, "WEBP", quality=70),
        encode(base, "WEBP", lossless=True),
        encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], exif=exif),
    )


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds())))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "truncate", "insert", "delete", "dup"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[pos] = draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80, 0xD8, 0xD9]))
        elif op == "truncate":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 32))]
        elif op == "dup":
            data[pos:pos] = data[pos : pos + draw(st.integers(1, 64))]
    return bytes(data)


def _check_valid(result: ProcessedImage) -> None:
    rendition = Image.open(io.BytesIO(result.rendition.data))
    assert rendition.size == (result.rendition.width, result.rendition.height)
    assert max(rendition.size) <= 2048
    assert Image.open(io.BytesIO(result.thumbnail.data)).size == (400, 400)
    assert result.placeholder.startswith("data:image/webp;base64,")
    assert len(result.placeholder) <= 1024
    assert result.source_format in ("JPEG", "PNG", "WEBP", "GIF")


def test_every_seed_is_valid_before_mutation() -> None:
    for data in seeds():
        _check_valid(process_image(data, FUZZ_LIMITS))


# Pillow warns about the damage (bad EXIF, bomb-sized headers); expected here.
@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::PIL.Image.DecompressionBombWarning")
@settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(mutated())
def test_mutated_files_never_escape_as_other_exceptions(data: bytes) -> None:
    rejected: ImageRejected | None = None
    try:
        result = process_image(data, FUZZ_LIMITS)
    except ImageRejected as exc:
        rejected = exc
    if rejected is None:
        _check_valid(result)
    else:
        assert rejected.code in ("unsupported_format", "image_too_large", "corrupt_image")
        assert rejected.message


@pytest.mark.parametrize("name", ["kite.jpg", "cascade-render.png"])
def test_corpus_excerpts_are_rejected_as_corrupt(corpus: Path, name: str) -> None:
    data = (corpus / name).read_bytes()
    for cut in (64, 4096, len(data) // 3, len(data) - 100):
        with pytest.raises(ImageRejected) as info:
            process_image(data[:cut])
        assert info.value.code == "corrupt_image"
