"""User ids over HTTP against the local stack (issue 15, item 3): a token whose subject
would break object keys and URLs is refused with 401; any other subject uploads,
completes, and gets an ``imageUrl``/``thumbnailUrl`` a plain HTTP client fetches."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable
from urllib.parse import unquote, urlsplit

import pytest
import requests
from PIL import Image

from image_client.client import ImageServiceClient

REFUSED = {
    "dot": ".",
    "dot-dot": "..",
    "newline": "alice\nbob",
    "carriage return": "alice\r",
    "nul": "a\x00b",
    "escape": "\x1b[2J",
    "del": "a\x7f",
    "c1": "a\x85b",
    "slash": "a/b",
    "129 characters": "x" * 129,
}
# A unique suffix keeps each run's images apart; each id stays within 128 characters.
ACCEPTED = {
    "percent": "100%25%",
    "hash and question mark": "#who?&x=1",
    "spaces and plus": " a + b ",
    "backslash": "a\\b",
    "three dots": "...",
    "encoded dot-dot": "%2e%2e",
    "unicode": "Zoë 日本 🧱",
    "128 characters": "u" * 119,  # + "-" and 8 hex characters: 128
}


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 120, 200)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("subject", REFUSED.values(), ids=REFUSED.keys())
def test_a_subject_that_would_break_keys_or_urls_is_refused_with_401(
    client_for: Callable[[str], ImageServiceClient], subject: str
) -> None:
    client = client_for(subject)

    response = requests.post(
        f"{client.api_url}/images",
        json={"filename": "a.png", "contentType": "image/png", "size": 100},
        headers={"Authorization": f"Bearer {client.token}"},
        timeout=30,
    )

    assert response.status_code == 401, response.text
    error = response.json()["error"]
    assert error["code"] == "unauthorized"
    assert "subject" in error["message"] and "user id" in error["message"]


@pytest.mark.parametrize("subject", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_any_other_subject_completes_and_its_image_urls_are_fetchable(
    client_for: Callable[[str], ImageServiceClient], subject: str
) -> None:
    user_id = f"{subject}-{uuid.uuid4().hex[:8]}"
    assert len(user_id) <= 128
    client = client_for(user_id)
    data = _png()

    created = client.create_upload("a.png", "image/png", len(data))
    client.upload(created, data, "a.png")
    final = client.wait_until_done(created["id"], timeout=120)

    assert final["status"] == "completed", final
    for url in (final["imageUrl"], final["thumbnailUrl"]):
        assert unquote(urlsplit(url).path).split("/")[2] == user_id  # /images/{userId}/...
        response = requests.get(url, timeout=30)  # urllib3 removes dot segments, as browsers do
        assert response.status_code == 200, (url, response.status_code)
        assert Image.open(io.BytesIO(response.content)).format == "WEBP"
    listed = client.list_images()
    assert [(image["id"], image["userId"]) for image in listed] == [(created["id"], user_id)]
