"""Renditions over HTTP on the local stack: a completed photo's ladder, every URL fetchable
with its Content-Type and immutable caching; a HEIC upload (made with pillow-heif) completes."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
from PIL import Image

from image_client.client import ImageServiceClient


def upload(client: ImageServiceClient, data: bytes, content_type: str, filename: str) -> dict[str, Any]:
    created = client.create_upload(filename, content_type, len(data))
    client.upload(created, data, filename)
    done = client.wait_until_done(str(created["id"]))
    assert done["status"] == "completed", done
    return client.get_image(str(created["id"]))


def test_a_completed_photo_serves_every_rung_of_the_ladder_immutably(
    client_for: Callable[[str], ImageServiceClient], corpus_dir: Path
) -> None:
    data = (corpus_dir / "boats.jpg").read_bytes()
    image = upload(client_for("e2e-ladder"), data, "image/jpeg", "boats.jpg")

    ladder = image["renditions"]
    assert isinstance(ladder, list)
    assert [r["width"] for r in ladder] == [320, 640, 1024, 1600, 2048]
    for rendition in [*ladder, {"url": image["thumbnailUrl"], "width": 400, "bytes": None}]:
        response = requests.get(str(rendition["url"]), timeout=30)
        assert response.status_code == 200, rendition
        assert response.headers["Content-Type"] == "image/webp"
        assert "immutable" in response.headers["Cache-Control"]
        assert "max-age=31536000" in response.headers["Cache-Control"]
        with Image.open(io.BytesIO(response.content)) as picture:
            assert picture.width == rendition["width"]
        if rendition["bytes"] is not None:
            assert len(response.content) == rendition["bytes"]
    assert image["srcset"] == ", ".join(f"{r['url']} {r['width']}w" for r in ladder)


def test_a_heic_upload_completes_with_its_ladder(client_for: Callable[[str], ImageServiceClient]) -> None:
    import pillow_heif

    picture = Image.new("RGB", (1200, 800), (180, 90, 40))
    heif = pillow_heif.from_pillow(picture)
    out = io.BytesIO()
    heif.save(out, quality=80)

    image = upload(client_for("e2e-heic"), out.getvalue(), "image/heic", "phone.heic")

    assert [(r["width"], r["height"]) for r in image["renditions"]] == [
        (320, 213),
        (640, 427),
        (1024, 683),
        (1200, 800),
    ]
    assert image["contentType"] == "image/heic"
