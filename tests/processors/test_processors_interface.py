"""The package's public surface and its import-time promises."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import ImageFile

import processors
from processors import (
    EncodedImage,
    ImageRejected,
    Limits,
    ProcessedImage,
    process_image,
)
from tests.processors.processors_testkit import encode, quadrants

ROOT = Path(__file__).resolve().parents[2]


def test_image_rejected_carries_code_and_message() -> None:
    exc = ImageRejected("corrupt_image", "The file is damaged.")
    assert exc.code == "corrupt_image"
    assert exc.message == "The file is damaged."
    assert isinstance(exc, Exception)


def test_image_rejected_refuses_unknown_codes() -> None:
    with pytest.raises(ValueError):
        ImageRejected("boom", "x")


def test_limits_default_to_ten_mib_and_fifty_megapixels() -> None:
    assert Limits() == Limits(max_bytes=10 * 1024 * 1024, max_pixels=50_000_000)


def test_value_types_are_frozen() -> None:
    encoded = EncodedImage(b"RIFF", 1, 1)
    values: list[object] = [
        Limits(),
        encoded,
        ProcessedImage(encoded, encoded, "data:", "PNG", 1, 1, {}),
    ]
    for value in values:
        field = dataclasses.fields(value)[0].name  # type: ignore[arg-type]
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(value, field, None)


def test_package_reexports_the_interface() -> None:
    for name in ("ImageRejected", "Limits", "EncodedImage", "ProcessedImage"):
        assert getattr(processors, name) is not None
    assert callable(processors.process_image)


def test_process_image_returns_the_documented_fields() -> None:
    result = process_image(encode(quadrants(300, 200), "PNG"))
    assert result.source_format == "PNG"
    assert (result.source_width, result.source_height) == (300, 200)
    assert (result.rendition.width, result.rendition.height) == (300, 200)
    assert (result.thumbnail.width, result.thumbnail.height) == (400, 400)
    assert result.rendition.data[:4] == b"RIFF"
    assert result.placeholder.startswith("data:image/webp;base64,")
    assert {"decode", "resize", "encode"} <= set(result.timings_ms)
    assert all(v >= 0 for v in result.timings_ms.values())


def test_truncated_images_are_never_loaded_as_far_as_they_go() -> None:
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def _run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.strip()


def test_importing_the_package_is_cheap_and_pulls_in_no_pillow() -> None:
    out = _run("import sys, processors; print('PIL' in sys.modules)")
    assert out == "False"


def test_processing_never_imports_boto3_or_chalicelib() -> None:
    code = (
        "import io, sys\n"
        "from PIL import Image\n"
        "import processors\n"
        "buf = io.BytesIO(); Image.new('RGB', (8, 8)).save(buf, 'PNG')\n"
        "processors.process_image(buf.getvalue())\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('boto3', 'botocore', 'chalicelib', 'chalice')]\n"
        "print(bad)"
    )
    assert _run(code) == "[]"
