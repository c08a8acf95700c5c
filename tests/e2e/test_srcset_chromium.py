"""A completed image's ``srcset`` in a real browser: Debian's headless Chromium (Playwright).

The page is ``<img srcset="<the Image's srcset>" sizes="100vw">``; at a 360 px wide
viewport (DPR 1) the browser must pick a small rung, at 1600 px a large one, each fetched
from the local stack's S3 (so every URL the API names is fetchable and the value parses).
Skipped only where /usr/bin/chromium is absent (scripts/bootstrap.sh installs it).
"""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Request, expect, sync_playwright

from image_client.client import ImageServiceClient
from local_stack.process import RunningStack
from tests.conftest import local_token
from tests.e2e.test_browser_upload import CHROMIUM, CHROMIUM_FLAGS

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed")

ENCODED_IMAGE = re.compile(r"\.(webp|avif)(\?.*)?$")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def completed_image(stack: RunningStack, corpus_dir: Path) -> dict[str, Any]:
    """kite.jpg (2560x1600) uploaded and processed: the whole ladder, 320 to 2048."""
    client = ImageServiceClient(stack.api_url, local_token(f"srcset-{uuid.uuid4().hex[:8]}"))
    data = (corpus_dir / "kite.jpg").read_bytes()
    created = client.create_upload("kite.jpg", "image/jpeg", len(data))
    client.upload(created, data, "kite.jpg")
    assert client.wait_until_done(created["id"])["status"] == "completed"
    return client.get_image(created["id"])


def render(browser: Browser, image: dict[str, Any], width: int) -> tuple[str, list[str]]:
    """The ``currentSrc`` of the image at a viewport ``width`` px wide, and the image URLs
    the page requested (a fresh context each time: no cache shared between widths)."""
    context = browser.new_context(viewport={"width": width, "height": 800}, device_scale_factor=1)
    try:
        page = context.new_page()
        requested: list[str] = []

        def record(request: Request) -> None:
            if ENCODED_IMAGE.search(request.url):
                requested.append(request.url)

        page.on("request", record)
        page.set_content(
            "<!doctype html><meta name=viewport content='width=device-width'>"
            "<style>body{margin:0} img{display:block;width:100%;height:auto}</style>"
            f'<img alt="kite" sizes="100vw" srcset="{html.escape(image["srcset"])}" '
            f'width="{image["width"]}" height="{image["height"]}">'
        )
        img = page.get_by_role("img", name="kite")
        expect(img).to_have_js_property("complete", True, timeout=60_000)
        assert img.evaluate("img => img.naturalWidth") > 0  # fetched and decoded
        return img.evaluate("img => img.currentSrc"), requested
    finally:
        context.close()


def test_srcset_is_a_browsers_and_two_viewport_widths_fetch_two_renditions(
    browser: Browser, completed_image: dict[str, Any]
) -> None:
    ladder = {r["url"]: r["width"] for r in completed_image["renditions"] if r["format"] == "webp"}
    assert sorted(ladder.values()) == [320, 640, 1024, 1600, 2048]

    narrow, narrow_requests = render(browser, completed_image, 360)
    wide, wide_requests = render(browser, completed_image, 1600)

    # 360 CSS px at DPR 1: the smallest rung at least that wide; 1600: the 1600 px rung.
    assert ladder.get(narrow) == 640, narrow
    assert ladder.get(wide) == 1600, wide
    assert narrow_requests == [narrow]  # only the rung it shows, nothing larger
    assert wide_requests == [wide]
