"""Renditions and duplicates through the API and the processor Lambda on moto, with real
photos of the corpus: the ladder the GET shows is what the image bucket holds, a DELETE
removes every object, and duplicateOf names the owner's earlier copy of the same photo."""

from __future__ import annotations

import io
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from PIL import Image

from tests.functional.support import Uploader


def jpeg(path: Path, long_edge: int | None = None, quality: int = 90) -> bytes:
    with Image.open(path) as image:
        picture = image.convert("RGB")
    if long_edge is not None:
        picture.thumbnail((long_edge, long_edge), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=quality)
    return out.getvalue()


def size_of(data: bytes | None) -> tuple[int, int, str | None]:
    assert data is not None
    with Image.open(io.BytesIO(data)) as image:
        return image.width, image.height, image.format


@pytest.fixture
def boats(corpus_dir: Path) -> bytes:
    return jpeg(corpus_dir / "boats.jpg")


def test_a_completed_photo_has_the_ladder_with_real_sizes_and_a_delete_removes_every_object(
    uploader: Uploader, boats: bytes
) -> None:
    image_id, _ = uploader.process(boats)

    image = uploader.get(image_id)
    assert image["status"] == "completed"
    ladder = image["renditions"]
    assert [(r["width"], r["height"], r["format"]) for r in ladder] == [
        (320, 200, "webp"),
        (640, 400, "webp"),
        (1024, 640, "webp"),
        (1600, 1000, "webp"),
        (2048, 1280, "webp"),
    ]
    keys = set()
    for rendition in ladder:
        path = unquote(urlparse(rendition["url"]).path)
        key = path[path.index("images/") :]
        keys.add(key)
        data = uploader.image_object(key)
        assert size_of(data) == (rendition["width"], rendition["height"], "WEBP")
        assert rendition["bytes"] == len(data or b"")
        head = uploader.image_head(key)
        assert head["ContentType"] == "image/webp"
        assert head["CacheControl"] == "public, max-age=31536000, immutable"
    assert image["imageUrl"] == ladder[-1]["url"]
    assert (image["width"], image["height"]) == (2048, 1280)
    assert image["srcset"] == ", ".join(f"{r['url']} {r['width']}w" for r in ladder)
    assert image["renditionVersion"] == 2
    assert image["thumbhash"] and image["dominantColor"].startswith("#")
    assert image["duplicateOf"] is None
    # The thumbnail sits beside the ladder; nothing else was written.
    assert len(uploader.image_keys(f"images/alice/{image_id}/")) == len(ladder) + 1

    uploader.delete(image_id)

    assert uploader.image_keys("images/") == set()


def test_a_recompressed_smaller_copy_is_flagged_and_a_different_photo_or_another_users_copy_is_not(
    uploader: Uploader, boats: bytes, corpus_dir: Path
) -> None:
    original, _ = uploader.process(boats)
    copy, _ = uploader.process(jpeg(corpus_dir / "boats.jpg", long_edge=1200, quality=60))
    other, _ = uploader.process(jpeg(corpus_dir / "kite.jpg"))
    bobs, _ = uploader.process(boats, user_id="bob")

    assert uploader.get(copy)["duplicateOf"] == original
    assert uploader.get(copy)["renditions"][-1]["width"] == 1200  # never enlarged
    assert uploader.get(other)["duplicateOf"] is None
    assert uploader.get(bobs, "bob")["duplicateOf"] is None
    assert uploader.get(original)["duplicateOf"] is None

    # After the original's delete, the copy no longer names it (it is now the earliest).
    third, _ = uploader.process(jpeg(corpus_dir / "boats.jpg", quality=75))
    assert uploader.get(third)["duplicateOf"] == original
    uploader.delete(original)

    assert uploader.get(copy)["duplicateOf"] is None
    assert uploader.get(third)["duplicateOf"] == copy
