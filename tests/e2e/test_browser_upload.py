"""The /demo page in a real browser: Debian's headless Chromium driven by Playwright.

Skipped only where /usr/bin/chromium is absent (scripts/bootstrap.sh installs it).
UPDATE_DEMO_SCREENSHOT=1 also saves the page after the upload to docs/images/demo-page.png.
"""

from __future__ import annotations

import io
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import BrowserContext, ConsoleMessage, Page, Route, expect, sync_playwright

from image_client.client import ImageServiceClient
from local_stack.process import RunningStack
from tests.conftest import PROJECT_ROOT, local_token

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = PROJECT_ROOT / "docs" / "images" / "demo-page.png"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

#: Any encoded image the page may fetch (renditions and thumbnails, whatever their keys).
RENDITION_URL = re.compile(r"\.(webp|avif)(\?.*)?$")

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed")


@pytest.fixture
def browser_page(tmp_path: Path) -> Iterator[Page]:
    """A page of a fresh Chromium profile (its own --user-data-dir, removed with tmp_path)."""
    with sync_playwright() as playwright:
        context: BrowserContext = playwright.chromium.launch_persistent_context(
            user_data_dir=str(tmp_path / "chromium-profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 900, "height": 640},
        )
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(60_000)
            yield page
        finally:
            context.close()


def test_the_demo_page_uploads_a_photo_and_shows_it_from_srcset_over_its_thumbhash(
    stack: RunningStack, browser_page: Page, corpus_dir: Path
) -> None:
    page = browser_page
    console_errors: list[str] = []
    # Hold every rendition request until the placeholder has been seen, then let them through.
    held: list[Route] = []

    def hold(route: Route) -> None:
        held.append(route)

    page.route(RENDITION_URL, hold)

    def record_error(message: ConsoleMessage) -> None:
        if message.type == "error":
            console_errors.append(f"{message.text} ({message.location.get('url')})")

    page.on("console", record_error)
    token = local_token(f"browser-{uuid.uuid4().hex[:8]}")

    page.goto(f"{stack.api_url}/demo?token={token}")
    expect(page.get_by_label("Access token")).to_have_value(token)
    assert "token=" not in page.url  # the page drops the token from the address bar

    page.get_by_label("Choose images, or drop them here").set_input_files(str(corpus_dir / "kite.jpg"))

    upload = page.locator("li.upload", has_text="kite.jpg")
    expect(upload).to_have_attribute("data-status", "completed", timeout=120_000)
    image_id = upload.get_attribute("data-image-id")
    assert image_id is not None and len(image_id) == 26
    image = ImageServiceClient(stack.api_url, token).get_image(image_id)
    preview = upload.get_by_role("img", name="Preview of kite.jpg")
    # While the rendition is on its way: the ThumbHash, decoded in the page, over the dominant colour.
    expect(preview).to_have_attribute("data-placeholder", "thumbhash")
    assert preview.get_attribute("data-loaded") is None
    background = preview.evaluate("img => getComputedStyle(img).backgroundImage")
    assert background.startswith('url("data:image/png;base64,')
    assert preview.evaluate("img => img.style.backgroundColor") != ""
    assert preview.get_attribute("srcset") == image["srcset"]
    assert preview.get_attribute("sizes") == "160px"
    assert held, "the rendition was requested while the placeholder showed"
    for route in held:
        route.continue_()
    page.unroute(RENDITION_URL, hold)
    expect(preview).to_have_attribute("data-loaded", "true")
    # 160 CSS px at DPR 1: the browser picked the 320 px rung of the ladder, not the 2048 px one.
    smallest = image["renditions"][0]
    assert smallest["width"] == 320
    expect(preview).to_have_js_property("currentSrc", smallest["url"])
    assert preview.evaluate("img => img.complete && img.naturalWidth > 0")
    assert preview.evaluate("img => getComputedStyle(img).backgroundImage") == "none"
    file_size = (corpus_dir / "kite.jpg").stat().st_size
    expect(upload.get_by_role("progressbar", name="Upload progress of kite.jpg")).to_have_attribute(
        "value", str(file_size)
    )
    expect(page.get_by_role("status")).to_have_text("kite.jpg: Done.")
    assert console_errors == []
    assert ImageServiceClient(stack.api_url, token).status(image_id)["status"] == "completed"  # the token's user's

    if os.environ.get("UPDATE_DEMO_SCREENSHOT") == "1":
        save_screenshot(page.screenshot(full_page=True))


def save_screenshot(png: bytes) -> None:
    """Write the screenshot, reduced to a palette PNG so it stays well under 300 KB."""
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(io.BytesIO(png)) as image:
        image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(SCREENSHOT, optimize=True)
    assert SCREENSHOT.stat().st_size < 300_000


def test_a_photo_whose_image_was_deleted_is_uploaded_again_from_the_page(
    stack: RunningStack, browser_page: Page, corpus_dir: Path
) -> None:
    import requests

    page = browser_page
    token = local_token(f"browser-{uuid.uuid4().hex[:8]}")
    page.goto(f"{stack.api_url}/demo?token={token}")
    chooser = page.get_by_label("Choose images, or drop them here")
    chooser.set_input_files(str(corpus_dir / "kite.jpg"))
    first = page.locator("li.upload", has_text="kite.jpg").nth(0)
    expect(first).to_have_attribute("data-status", "completed", timeout=120_000)
    first_id = first.get_attribute("data-image-id")
    deleted = requests.delete(
        f"{stack.api_url}/images/{first_id}", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    assert deleted.status_code == 204

    chooser.set_input_files(str(corpus_dir / "kite.jpg"))  # the same file: its key's image is gone

    second = page.locator("li.upload", has_text="kite.jpg").nth(1)
    expect(second).to_have_attribute("data-status", "completed", timeout=120_000)
    second_id = second.get_attribute("data-image-id")
    assert second_id and second_id != first_id
    assert ImageServiceClient(stack.api_url, token).status(second_id)["status"] == "completed"
