"""The responsive ladder (API.md v1.1): sizes, collapse, order, AVIF when asked."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageStat

from processors import process_image
from processors.heif import register_plugins
from processors.pipeline import DEFAULT_TUNING, Tuning, ladder_sizes
from processors.pipeline import process_image as process_with
from processors.types import DEFAULT_LIMITS
from tests.processors.processors_testkit import BLUE, GREEN, RED, WHITE, close, decode, encode, pixel, quadrants


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((2560, 1600), [(320, 200), (640, 400), (1024, 640), (1600, 1000), (2048, 1280)]),
        ((1600, 2560), [(200, 320), (400, 640), (640, 1024), (1000, 1600), (1280, 2048)]),
        ((800, 600), [(320, 240), (640, 480), (800, 600)]),  # 1024, 1600, 2048 collapse into 800
        ((1024, 768), [(320, 240), (640, 480), (1024, 768)]),  # exactly a rung: once
        ((300, 200), [(300, 200)]),
        ((1, 1), [(1, 1)]),
        ((5000, 10), [(320, 1), (640, 1), (1024, 2), (1600, 3), (2048, 4)]),
    ],
)
def test_ladder_sizes_fit_never_enlarge_and_collapse(size: tuple[int, int], expected: list[tuple[int, int]]) -> None:
    assert list(ladder_sizes(*size)) == expected


def test_renditions_are_the_webp_ladder_smallest_first_from_one_decode() -> None:
    result = process_image(encode(quadrants(2560, 1600), "JPEG", quality=90))
    sizes = [(r.width, r.height) for r in result.renditions]
    assert sizes == [(320, 200), (640, 400), (1024, 640), (1600, 1000), (2048, 1280)]
    assert all(r.format == "webp" for r in result.renditions)
    assert result.renditions[-1] == result.rendition
    for r in result.renditions:
        out = decode(r.data)
        assert out.format == "WEBP" and out.size == (r.width, r.height)
        assert close(pixel(out.convert("RGB"), 0.25, 0.25), RED, 16)
        assert close(pixel(out.convert("RGB"), 0.75, 0.75), WHITE, 16)
    assert [len(r.data) for r in result.renditions] == sorted(len(r.data) for r in result.renditions)


def test_small_images_get_one_rendition_at_their_own_size() -> None:
    result = process_image(encode(quadrants(300, 200), "PNG"))
    assert [(r.width, r.height) for r in result.renditions] == [(300, 200)]


def test_the_ladder_is_upright_for_exif_rotated_photos() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    stored = quadrants(2560, 1600)
    result = process_image(encode(stored, "JPEG", quality=90, exif=exif.tobytes()))
    assert [(r.width, r.height) for r in result.renditions][-1] == (1280, 2048)
    for r in result.renditions:
        out = decode(r.data).convert("RGB")
        assert out.height > out.width
        assert close(pixel(out, 0.25, 0.25), BLUE, 16)  # stored bottom-left, now top-left


def test_avif_is_off_by_default_and_adds_the_same_ladder_when_asked() -> None:
    register_plugins()
    data = encode(quadrants(1600, 1000, (RED, GREEN, BLUE, WHITE)), "JPEG", quality=90)
    plain = process_image(data)
    assert {r.format for r in plain.renditions} == {"webp"}
    both = process_image(data, avif=True)
    webp = [r for r in both.renditions if r.format == "webp"]
    avif = [r for r in both.renditions if r.format == "avif"]
    assert both.renditions == (*webp, *avif)  # WebP first, then AVIF, each smallest first
    assert [(r.width, r.height) for r in avif] == [(r.width, r.height) for r in webp]
    # The WebP bytes do not change when AVIF is asked for too (nothing is shared between the encodes).
    assert [r.data for r in webp] == [r.data for r in plain.renditions]
    for r in avif:
        out = Image.open(io.BytesIO(r.data))
        assert out.format == "AVIF" and out.size == (r.width, r.height)
        # Upright already: no irot/imir (which the plugin would write for an EXIF
        # orientation copied from the upload), no EXIF, XMP or ICC.
        assert b"irot" not in r.data and b"imir" not in r.data
        assert "exif" not in out.info and "xmp" not in out.info and "icc_profile" not in out.info
        assert close(pixel(out.convert("RGB"), 0.25, 0.25), RED, 20)


def test_avif_of_an_exif_rotated_upload_is_upright_and_carries_no_orientation() -> None:
    register_plugins()
    exif = Image.Exif()
    exif[0x0112] = 6
    result = process_image(encode(quadrants(800, 500), "JPEG", quality=90, exif=exif.tobytes()), avif=True)
    (top,) = [r for r in result.renditions if r.format == "avif" and r.height == 800]
    out = Image.open(io.BytesIO(top.data))
    assert out.size == (500, 800)
    assert out.getexif().get(0x0112, 1) == 1
    assert close(pixel(out.convert("RGB"), 0.25, 0.25), BLUE, 20)


def test_avif_bytes_do_not_depend_on_the_other_lane() -> None:
    # Image.save keeps its parameters on the Image while it runs: an AVIF encode of a rung
    # the other lane was saving as WebP at that moment got WebP's q85 (3x the bytes).
    register_plugins()
    data = encode(quadrants(2048, 1280), "JPEG", quality=90)
    concurrent = process_with(data, DEFAULT_LIMITS, DEFAULT_TUNING, avif=True)
    alone = process_with(data, DEFAULT_LIMITS, Tuning(concurrent=False), avif=True)
    for _ in range(3):
        again = process_with(data, DEFAULT_LIMITS, DEFAULT_TUNING, avif=True)
        assert [r.data for r in again.renditions] == [r.data for r in concurrent.renditions]
    assert [r.data for r in concurrent.renditions] == [r.data for r in alone.renditions]


def test_the_ladder_matches_resizing_each_rung_from_the_source(corpus: Path) -> None:
    # Cascading (each rung from the next larger) vs each rung from the decode: the same
    # picture to within what the encoder changes anyway.
    data = (corpus / "kite.jpg").read_bytes()
    cascade = process_with(data, DEFAULT_LIMITS, Tuning())
    direct = process_with(data, DEFAULT_LIMITS, Tuning(ladder_cascade=False))
    for a, b in zip(cascade.renditions, direct.renditions, strict=True):
        assert (a.width, a.height) == (b.width, b.height)
        x, y = decode(a.data).convert("L"), decode(b.data).convert("L")
        diff = ImageStat.Stat(ImageChops.difference(x, y)).mean[0]
        assert diff < 1.5, (a.width, diff)


def test_timings_name_every_step() -> None:
    result = process_image(encode(quadrants(900, 600), "JPEG"))
    assert {"decode", "resize", "ladder", "encode", "thumbnail", "placeholder", "thumbhash", "phash", "total"} <= set(
        result.timings_ms
    )
