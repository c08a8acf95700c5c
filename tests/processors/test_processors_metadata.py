"""Outputs carry pixels only: no EXIF, GPS, XMP or ICC."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from processors import process_image
from tests.processors.processors_testkit import P3_PRIMARIES, encode, icc_profile, quadrants, riff_chunks

XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
    b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" '
    b'exif:GPSLatitude="51,30.0N"/></rdf:RDF></x:xmpmeta>'
)


def _exif_with_gps() -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "Camera maker"
    exif[0x0110] = "Camera model"
    exif[0x0112] = 1
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (51.0, 30.0, 0.0)
    gps[3] = "W"
    gps[4] = (0.0, 7.0, 0.0)
    return exif


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_outputs_have_no_metadata(fmt: str) -> None:
    params: dict[str, object] = {
        "exif": _exif_with_gps(),
        "icc_profile": icc_profile("Display P3 like", primaries=P3_PRIMARIES),
    }
    if fmt in ("JPEG", "WEBP"):
        params["xmp"] = XMP
    data = encode(quadrants(64, 64), fmt, **params)
    source = Image.open(io.BytesIO(data))
    assert source.getexif().get_ifd(0x8825)  # the test input does carry GPS

    result = process_image(data)

    for encoded in (result.rendition, result.thumbnail):
        out = Image.open(io.BytesIO(encoded.data))
        assert out.format == "WEBP"
        assert not out.info.get("exif")
        assert not out.info.get("xmp")
        assert not out.info.get("icc_profile")
        assert len(out.getexif()) == 0
        assert set(riff_chunks(encoded.data)) <= {b"VP8 ", b"VP8L", b"VP8X", b"ALPH"}
        assert b"GPS" not in encoded.data and b"Camera" not in encoded.data
