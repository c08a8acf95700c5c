"""HEIC/HEIF and AVIF uploads: phone-like files made here with pillow-heif and pillow-avif-plugin."""

from __future__ import annotations

import io
import re
import struct
import subprocess
import sys
from functools import lru_cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from processors import ImageRejected, Limits, process_image
from processors import heif as heif_module
from processors.sniff import sniff_format
from tests.processors.processors_testkit import (
    BLUE,
    GREEN,
    P3_PRIMARIES,
    RED,
    WHITE,
    close,
    decode,
    icc_profile,
    pixel,
    quadrants,
)

heif_module.register_plugins()


def _heif(im: Image.Image, **params: object) -> bytes:
    out = io.BytesIO()
    params.setdefault("quality", 70)
    # x265's fastest preset: a 12 MP HEIC in about a second instead of a minute.
    params.setdefault("enc_params", {"preset": "ultrafast"})
    im.save(out, format="HEIF", **params)
    return out.getvalue()


def _avif(im: Image.Image, **params: object) -> bytes:
    out = io.BytesIO()
    params.setdefault("quality", 70)
    params.setdefault("speed", 10)
    im.save(out, format="AVIF", **params)
    return out.getvalue()


def _exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def _rejected(data: bytes, code: str) -> ImageRejected:
    with pytest.raises(ImageRejected) as info:
        process_image(data)
    assert info.value.code == code, info.value
    return info.value


#: A saturated red of a phone photo in Display P3. Shown unconverted it would be
#: (230, 60, 50) in sRGB: the washed-out red the issue talks about.
P3_RED = (230, 60, 50)
#: The published linear-light Display P3 (D65) -> sRGB matrix.
_P3_TO_SRGB = ((1.2249, -0.2247, 0.0), (-0.0420, 1.0419, 0.0), (-0.0197, -0.0786, 1.0979))


def _srgb_decode(v: float) -> float:
    return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4


def _srgb_encode(v: float) -> int:
    v = min(1.0, max(0.0, v))
    return round(255 * (12.92 * v if v <= 0.0031308 else 1.055 * v ** (1 / 2.4) - 0.055))


def p3_to_srgb(rgb: tuple[int, int, int], gamma: float | None = None) -> tuple[int, ...]:
    """A P3 pixel in sRGB, by the book; ``gamma`` for a pure-gamma curve, else the sRGB curve."""
    linear = [(c / 255) ** gamma if gamma else _srgb_decode(c / 255) for c in rgb]
    return tuple(_srgb_encode(sum(row[k] * linear[k] for k in range(3))) for row in _P3_TO_SRGB)


#: (250, 31, 34): P3 (230, 60, 50) with the sRGB curve (an nclx 12/13 description).
P3_RED_IN_SRGB = p3_to_srgb(P3_RED)
#: The same through the test kit's hand-built Display P3 ICC profile (gamma 2.2).
P3_RED_IN_SRGB_GAMMA = p3_to_srgb(P3_RED, 2.2)


@lru_cache(maxsize=1)
def _phone_photo() -> bytes:
    """A 12 MP (4032 x 3024 stored) HEIC in Apple's 512 px tile grid, Display P3 ICC,
    EXIF orientation 6 (written as irot by pillow-heif, as iPhones do), XMP and GPS-ish EXIF."""
    im = quadrants(4032, 3024, (P3_RED, GREEN, BLUE, WHITE))
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "Apple"
    exif[0x0110] = "iPhone 15"
    p3 = icc_profile("Display P3", primaries=P3_PRIMARIES, gamma=2.2)
    return _heif(im, exif=exif.tobytes(), icc_profile=p3, xmp=b"<x:xmpmeta>secret</x:xmpmeta>", tile_size=512)


def test_heif_and_avif_are_sniffed_by_their_ftyp_brand() -> None:
    im = quadrants(64, 48)
    assert sniff_format(_heif(im)) == "HEIF"
    assert sniff_format(_avif(im)) == "AVIF"
    generic_avif = b"\x00\x00\x00\x1cftypmif1\x00\x00\x00\x00mif1avifmiaf" + b"\x00" * 8
    assert sniff_format(generic_avif) == "AVIF"
    assert sniff_format(b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2") is None


def test_a_12_mp_phone_heic_is_oriented_converted_from_p3_and_stripped() -> None:
    data = _phone_photo()
    assert heif_module.parse(data).tiles == 48  # 8 x 6 tiles of 512 px, as an iPhone writes
    result = process_image(data)
    assert result.source_format == "HEIF"
    # irot 90 applied once: portrait, as the phone showed it (stored 4032 x 3024).
    assert (result.source_width, result.source_height) == (3024, 4032)
    assert (result.rendition.width, result.rendition.height) == (1536, 2048)
    out = decode(result.rendition.data).convert("RGB")
    # Orientation 6: the stored bottom-left (blue) is now top-left, stored top-left (red) top-right.
    assert close(pixel(out, 0.25, 0.25), BLUE, 16)
    assert close(pixel(out, 0.75, 0.25), P3_RED_IN_SRGB_GAMMA, 6), (pixel(out, 0.75, 0.25), P3_RED_IN_SRGB_GAMMA)
    assert not close(pixel(out, 0.75, 0.25), P3_RED, 10)  # not washed out
    assert close(pixel(out, 0.75, 0.75), GREEN, 16)
    for encoded in (*result.renditions, result.thumbnail):
        assert b"EXIF" not in encoded.data and b"ICCP" not in encoded.data and b"XMP " not in encoded.data
        assert b"Apple" not in encoded.data and b"secret" not in encoded.data
    thumb = decode(result.thumbnail.data).convert("RGB")
    assert thumb.size == (400, 400)


def test_heif_orientation_is_applied_once_whatever_the_exif_says() -> None:
    # pillow-heif writes EXIF orientation 3 as irot 180 and resets the EXIF tag: libheif
    # rotates on decode; applying the EXIF tag as well would turn it back.
    result = process_image(_heif(quadrants(80, 60), exif=_exif(3)))
    out = decode(result.rendition.data).convert("RGB")
    assert (out.width, out.height) == (80, 60)
    assert close(pixel(out, 0.25, 0.25), WHITE, 20)  # stored bottom-right is now top-left
    assert close(pixel(out, 0.75, 0.75), RED, 20)


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_avif_orientation_from_irot_is_applied(orientation: int) -> None:
    # pillow-avif-plugin writes the orientation as irot/imir and reports it back as EXIF
    # orientation without rotating the pixels: the pipeline applies it.
    result = process_image(_avif(quadrants(80, 60), exif=_exif(orientation)))
    assert result.source_format == "AVIF"
    out = decode(result.rendition.data).convert("RGB")
    expected_corner = {3: WHITE, 6: BLUE, 8: GREEN}[orientation]
    assert out.size == ((80, 60) if orientation == 3 else (60, 80))
    assert close(pixel(out, 0.2, 0.2), expected_corner, 24)


def test_avif_with_a_p3_profile_is_converted_to_srgb() -> None:
    p3 = icc_profile("Display P3", primaries=P3_PRIMARIES, gamma=2.2)
    result = process_image(_avif(Image.new("RGB", (64, 64), P3_RED), icc_profile=p3, quality=95))
    assert close(pixel(decode(result.rendition.data).convert("RGB"), 0.5, 0.5), P3_RED_IN_SRGB_GAMMA, 8)


def test_nclx_display_p3_without_an_icc_profile_is_converted_too() -> None:
    # An nclx colr (primaries 12 = P3-D65, transfer 13 = sRGB curve): the profile is made
    # from it. The expected value uses the sRGB curve, not the 2.2 gamma above.
    data = _heif(Image.new("RGB", (64, 64), P3_RED), quality=95)
    data = _set_nclx_primaries(data, 12)
    assert heif_module.parse(data).nclx == (12, 13)
    result = process_image(data)
    assert close(pixel(decode(result.rendition.data).convert("RGB"), 0.5, 0.5), P3_RED_IN_SRGB, 8)
    # The same file labelled BT.709 (sRGB) stays as it is.
    plain = process_image(_set_nclx_primaries(data, 1))
    assert close(pixel(decode(plain.rendition.data).convert("RGB"), 0.5, 0.5), P3_RED, 8)


def _set_nclx_primaries(data: bytes, primaries: int) -> bytes:
    at = data.index(b"colrnclx") + 8
    return data[:at] + struct.pack(">H", primaries) + data[at + 2 :]


def test_a_heic_declared_as_jpeg_is_processed_as_heic() -> None:
    # Content-Type is never looked at: the bytes decide (docs/api.md, "Content type").
    result = process_image(_heif(quadrants(120, 80)))
    assert result.source_format == "HEIF"
    # And a JPEG in a .heic upload is a JPEG.
    out = io.BytesIO()
    quadrants(120, 80).save(out, format="JPEG")
    assert process_image(out.getvalue()).source_format == "JPEG"


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.9, 0.99])
def test_a_truncated_heic_is_corrupt(keep: float) -> None:
    data = _heif(quadrants(640, 480))
    _rejected(data[: int(len(data) * keep)], "corrupt_image")


def test_a_bare_heic_header_is_corrupt() -> None:
    _rejected(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "corrupt_image")


def test_a_truncated_avif_is_corrupt() -> None:
    data = _avif(quadrants(640, 480))
    _rejected(data[: len(data) // 2], "corrupt_image")


def test_the_primary_image_of_a_multi_image_heic_is_used() -> None:
    first = Image.new("RGB", (96, 64), RED)
    second = Image.new("RGB", (64, 96), BLUE)
    data = _heif(first, save_all=True, append_images=[second], primary_index=1)
    result = process_image(data)
    assert (result.source_width, result.source_height) == (64, 96)
    assert close(pixel(decode(result.rendition.data).convert("RGB"), 0.5, 0.5), BLUE, 16)
    # Primary first (the default) gives the first.
    data = _heif(first, save_all=True, append_images=[second])
    assert close(pixel(decode(process_image(data).rendition.data).convert("RGB"), 0.5, 0.5), RED, 16)


def test_heif_pixel_limit_is_checked_before_decoding() -> None:
    data = _heif(quadrants(400, 300))
    with pytest.raises(ImageRejected) as info:
        process_image(data, Limits(max_pixels=100_000))
    assert info.value.code == "image_too_large"


def _with_item_count(data: bytes, count: int) -> bytes:
    at = data.index(b"iinf") + 4
    version = data[at]
    assert version == 0
    return data[: at + 4] + struct.pack(">H", count) + data[at + 6 :]


def test_too_many_items_are_refused_before_libheif_sees_them() -> None:
    data = _heif(quadrants(64, 48))
    assert heif_module.parse(data).items >= 1
    _rejected(_with_item_count(data, heif_module.MAX_HEIF_ITEMS + 1), "image_too_complex")


def test_a_grid_with_too_many_tiles_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _heif(quadrants(1024, 512), tile_size=128)  # 8 x 4 tiles
    assert heif_module.parse(data).tiles == 32
    assert process_image(data).source_format == "HEIF"  # passes at the limit
    monkeypatch.setattr(heif_module, "MAX_HEIF_TILES", 32)
    assert process_image(data).source_format == "HEIF"
    monkeypatch.setattr(heif_module, "MAX_HEIF_TILES", 31)
    _rejected(data, "image_too_complex")


def test_grid_tiles_adding_up_to_far_more_than_the_canvas_are_refused() -> None:
    data = _heif(quadrants(1024, 512), tile_size=128)
    info = heif_module.parse(data)
    assert sum(w * h for w, h in (info.sizes[t] for t in info.tile_ids)) == 1024 * 512
    # The same file with a pixel limit under half the tiles' area.
    with pytest.raises(ImageRejected) as rejected:
        heif_module.check_structure(data, max_pixels=1024 * 512 // 3)
    assert rejected.value.code == "image_too_complex"


def test_the_plugins_are_registered_on_first_use_only() -> None:
    code = (
        "import sys, app, processors; "
        "assert 'pillow_heif' not in sys.modules and 'pillow_avif' not in sys.modules; "
        "import io; from PIL import Image; from processors import process_image; "
        "out = io.BytesIO(); Image.new('RGB', (8, 8)).save(out, 'PNG'); process_image(out.getvalue()); "
        "assert 'pillow_heif' not in sys.modules, 'a PNG paid for the HEIF plugin'; print('ok')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_the_pil_in_use_is_pillow_simd_with_the_plugins_loaded() -> None:
    # pillow-heif declares a dependency on Pillow; installed without --no-deps it would
    # replace Pillow-SIMD (scripts/bootstrap.sh installs both plugins with --no-deps).
    import importlib.metadata

    import PIL
    import pillow_heif

    from processors.heif import register_plugins

    register_plugins()
    assert re.fullmatch(r"\d+\.\d+\.\d+\.post\d+", PIL.__version__), PIL.__version__
    assert importlib.metadata.version("pillow-simd") == PIL.__version__
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.version("pillow")
    assert "HEIF" in Image.OPEN and "AVIF" in Image.OPEN
    assert pillow_heif.__version__.startswith("1.")


@lru_cache(maxsize=1)
def _fuzz_seeds() -> tuple[bytes, ...]:
    noisy = Image.effect_noise((64, 48), 80).convert("RGB")
    p3 = icc_profile("Display P3", primaries=P3_PRIMARIES, gamma=2.2)
    return (
        _heif(noisy),
        _heif(noisy, exif=_exif(6), icc_profile=p3),
        _heif(quadrants(256, 128), tile_size=64),
        _heif(Image.new("RGB", (32, 32), RED), save_all=True, append_images=[noisy], primary_index=1),
        _heif(Image.new("RGBA", (32, 32), (0, 0, 255, 100))),
        _avif(noisy),
        _avif(noisy, exif=_exif(8), icc_profile=p3),
        _avif(Image.new("RGBA", (32, 32), (0, 0, 255, 100))),
    )


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(_fuzz_seeds())))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "truncate", "insert", "delete", "dup"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[pos] = draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80, 0x01, 0x10]))
        elif op == "truncate":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 32))]
        elif op == "dup":
            data[pos:pos] = data[pos : pos + draw(st.integers(1, 64))]
    return bytes(data)


@pytest.mark.filterwarnings("ignore::UserWarning")
@settings(
    max_examples=300, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(_mutated())
def test_mutated_heif_and_avif_never_escape_as_other_exceptions(data: bytes) -> None:
    # Small limits keep each example cheap when a mutation inflates a header.
    rejected: ImageRejected | None = None
    try:
        result = process_image(data, Limits(max_bytes=1024 * 1024, max_pixels=1_000_000))
    except ImageRejected as exc:
        rejected = exc
    if rejected is not None:
        assert rejected.code in ("unsupported_format", "image_too_large", "image_too_complex", "corrupt_image")
        return
    assert result.source_format in ("HEIF", "AVIF", "JPEG", "PNG", "WEBP", "GIF")
    out = decode(result.rendition.data)
    assert out.size == (result.rendition.width, result.rendition.height)


def test_heif_parse_survives_any_cut_of_a_real_file() -> None:
    data = _phone_photo()
    for cut in range(0, 4096, 7):
        heif_module.parse(data[:cut])  # never raises: it stops where the structure is lost
