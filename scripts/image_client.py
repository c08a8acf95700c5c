"""A small client of the Image Service HTTP API, shared by the demo, the CLI and e2e tests.

client = ImageServiceClient("http://127.0.0.1:8000", token)
created = client.create_upload(path.name, "image/jpeg", size)
client.upload(created, data)              # multipart POST straight to S3
final = client.wait_until_done(created["id"])
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests

TERMINAL = frozenset({"completed", "failed", "expired"})
CONTENT_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".gif": "image/gif",
}


class ApiError(Exception):
    """A non-2xx answer, with the API.md error body."""

    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.body = body
        error = body.get("error", {}) if isinstance(body, dict) else {}
        self.code = error.get("code", "unknown")
        super().__init__(f"HTTP {status} {self.code}: {error.get('message', body)}")


@dataclass
class ImageServiceClient:
    api_url: str
    token: str
    timeout: float = 30.0

    def __post_init__(self) -> None:
        self.api_url = self.api_url.rstrip("/")
        self._session = requests.Session()

    def _headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **(extra or {})}

    def _json(self, response: requests.Response) -> Any:
        try:
            body = response.json() if response.content else None
        except ValueError:
            body = response.text
        if response.status_code >= 400:
            raise ApiError(response.status_code, body)
        return body

    def create_upload(
        self,
        filename: str,
        content_type: str,
        size: int,
        idempotency_key: str | None = None,
        **metadata: Any,
    ) -> dict[str, Any]:
        headers = self._headers({"Idempotency-Key": idempotency_key} if idempotency_key else None)
        body = {"filename": filename, "contentType": content_type, "size": size, **metadata}
        response = self._session.post(f"{self.api_url}/images", json=body, headers=headers, timeout=self.timeout)
        result: dict[str, Any] = self._json(response)
        return result

    def upload(self, created: Mapping[str, Any], data: bytes, filename: str = "upload") -> None:
        """POST the bytes to S3 with the presigned form; the file goes last, as S3 requires."""
        form = created["upload"]
        fields = list(form["fields"].items())
        files = {"file": (filename, data, form["fields"].get("Content-Type", "application/octet-stream"))}
        response = requests.post(form["url"], data=fields, files=files, timeout=max(self.timeout, 120))
        if response.status_code not in (200, 201, 204):
            raise ApiError(response.status_code, {"error": {"code": "upload_rejected", "message": response.text[:500]}})

    def status(self, image_id: str) -> dict[str, Any]:
        response = self._session.get(
            f"{self.api_url}/images/{image_id}/status", headers=self._headers(), timeout=self.timeout
        )
        result: dict[str, Any] = self._json(response)
        return result

    def wait_until_done(
        self,
        image_id: str,
        timeout: float = 120.0,
        on_poll: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Poll the status with backoff (0.1 s doubling to 2 s) until it is terminal."""
        deadline = time.monotonic() + timeout
        delay = 0.1
        while True:
            current = self.status(image_id)
            if on_poll is not None:
                on_poll(current)
            if current["status"] in TERMINAL:
                return current
            if time.monotonic() > deadline:
                raise TimeoutError(f"image {image_id} still {current['status']} after {timeout:.0f}s")
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    def subscribe_webhook(self, url: str) -> dict[str, Any]:
        response = self._session.post(
            f"{self.api_url}/webhooks", json={"url": url}, headers=self._headers(), timeout=self.timeout
        )
        result: dict[str, Any] = self._json(response)
        return result

    def fetch(self, url: str) -> bytes:
        response = self._session.get(url, timeout=self.timeout)
        response.raise_for_status()
        return response.content
