"""A small client of the Image Service HTTP API, shared by the demo, the CLI and e2e tests.

client = ImageServiceClient("http://127.0.0.1:8000", token)
created = client.create_upload(path.name, "image/jpeg", size)
client.upload(created, data)              # multipart POST straight to S3
final = client.wait_until_done(created["id"])
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests

TERMINAL = frozenset({"completed", "failed", "expired"})
# Answers a retry may cure: throttling, and the service or its gateway briefly unavailable.
RETRYABLE_STATUS = frozenset({429, 502, 503, 504})
MAX_ATTEMPTS = 5
MAX_RETRY_DELAY = 20.0
S3_ATTEMPTS = 3
CONTENT_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".gif": "image/gif",
}


class Cancelled(Exception):
    """The caller asked to stop waiting (``should_stop``)."""


class ApiError(Exception):
    """A non-2xx answer, with the API.md error body."""

    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.body = body
        error = body.get("error", {}) if isinstance(body, dict) else {}
        self.code = error.get("code", "unknown")
        super().__init__(f"HTTP {status} {self.code}: {error.get('message', body)}")


def retry_delay(response: requests.Response | None, attempt: int) -> float:
    """``Retry-After`` seconds when the answer has them (capped), else a jittered doubling."""
    if response is not None:
        try:
            return min(max(float(response.headers.get("Retry-After", "")), 0.0), MAX_RETRY_DELAY)
        except ValueError:
            pass  # absent, or an HTTP date: back off by ourselves
    backoff: float = min(0.25 * 2**attempt, MAX_RETRY_DELAY)
    return backoff * random.uniform(0.5, 1.0)


@dataclass
class ImageServiceClient:
    api_url: str
    token: str
    timeout: float = 30.0
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        self.api_url = self.api_url.rstrip("/")
        self._session = requests.Session()

    def _send(self, method: str, url: str, *, repeatable: bool, **options: Any) -> requests.Response:
        """One request, retried on 429/502/503/504 (honouring ``Retry-After``) and, when
        repeating it is harmless (a read, or a create under an Idempotency-Key), on a lost
        connection; at most ``MAX_ATTEMPTS`` tries, the last answer or error returned."""
        for attempt in range(MAX_ATTEMPTS):
            last = attempt == MAX_ATTEMPTS - 1
            try:
                response = self._session.request(method, url, timeout=self.timeout, **options)
            except (requests.ConnectionError, requests.Timeout):
                if not repeatable or last:
                    raise
                self.sleep(retry_delay(None, attempt))
                continue
            if response.status_code not in RETRYABLE_STATUS or last:
                return response
            self.sleep(retry_delay(response, attempt))
        raise AssertionError("unreachable")

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
        # Without a key, a create whose answer was lost may have made an image: not repeated.
        response = self._send(
            "POST", f"{self.api_url}/images", repeatable=idempotency_key is not None, json=body, headers=headers
        )
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
        response = self._send(
            "GET", f"{self.api_url}/images/{image_id}/status", repeatable=True, headers=self._headers()
        )
        result: dict[str, Any] = self._json(response)
        return result

    def get_image(self, image_id: str) -> dict[str, Any]:
        """``GET /images/{id}``: the whole Image (renditions, srcset, thumbhash, ... once completed)."""
        response = self._send("GET", f"{self.api_url}/images/{image_id}", repeatable=True, headers=self._headers())
        result: dict[str, Any] = self._json(response)
        return result

    def wait_until_done(
        self,
        image_id: str,
        timeout: float = 120.0,
        on_poll: Callable[[dict[str, Any]], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> dict[str, Any]:
        """Poll the status with backoff (0.1 s doubling to 2 s) until it is terminal;
        ``Cancelled`` as soon as ``should_stop()`` says so."""
        deadline = time.monotonic() + timeout
        delay = 0.1
        while True:
            if should_stop is not None and should_stop():
                raise Cancelled(image_id)
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

    # --- added for the upload CLI (scripts/upload.py) ---

    def upload_with_progress(
        self,
        created: Mapping[str, Any],
        data: bytes,
        filename: str = "upload",
        on_progress: Callable[[int, int], None] | None = None,
    ) -> None:
        """Like ``upload``, but streams the multipart body and reports ``(bytes_sent, total)``.

        ``total`` is the whole body's length (form fields included), so the last report is
        ``(total, total)`` once every byte has gone out.
        """
        form = created["upload"]
        fields = {str(name): str(value) for name, value in form["fields"].items()}
        for attempt in range(S3_ATTEMPTS):
            body = MultipartStream(
                fields, "file", filename, data, fields.get("Content-Type", "application/octet-stream")
            )
            if on_progress is not None:
                body.on_progress = on_progress
            last = attempt == S3_ATTEMPTS - 1
            try:
                response = requests.post(
                    form["url"],
                    data=body,
                    headers={"Content-Type": body.content_type, "Content-Length": str(len(body))},
                    timeout=max(self.timeout, 120),
                )
            except (requests.ConnectionError, requests.Timeout):
                if last:
                    raise
                self.sleep(retry_delay(None, attempt))
                continue
            # S3's 500 InternalError and 503 SlowDown ask for a retry; the same key is
            # simply written again.
            if response.status_code not in (500, 503) or last:
                break
            self.sleep(retry_delay(response, attempt))
        if response.status_code not in (200, 201, 204):
            raise ApiError(response.status_code, {"error": {"code": "upload_rejected", "message": response.text[:500]}})

    def list_images(self, limit: int = 100) -> list[dict[str, Any]]:
        """Every image of the caller, newest first (follows ``nextCursor`` to the end)."""
        images: list[dict[str, Any]] = []
        params: dict[str, str | int] = {"limit": limit}
        while True:
            response = self._send(
                "GET", f"{self.api_url}/images", repeatable=True, params=params, headers=self._headers()
            )
            page: dict[str, Any] = self._json(response)
            images.extend(page["images"])
            if not page.get("nextCursor"):
                return images
            params = {"limit": limit, "cursor": page["nextCursor"]}

    def health(self) -> dict[str, Any]:
        """``GET /health`` (no auth); raises ``requests.ConnectionError`` when nothing listens."""
        response = self._session.get(f"{self.api_url}/health", timeout=min(self.timeout, 10))
        result: dict[str, Any] = self._json(response)
        return result


class MultipartStream:
    """A multipart/form-data body read in chunks, reporting each chunk as it is sent.

    requests sends a file-like body with a known length as it reads it (no chunked
    encoding, which S3's POST does not accept), so ``on_progress`` sees real progress.
    """

    CHUNK = 64 * 1024

    def __init__(self, fields: Mapping[str, str], file_field: str, filename: str, data: bytes, content_type: str):
        self.boundary = f"----image-service-{uuid.uuid4().hex}"
        self.content_type = f"multipart/form-data; boundary={self.boundary}"
        head = b"".join(
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{_quote(name)}"\r\n\r\n'.encode()
            + value.encode()
            + b"\r\n"
            for name, value in fields.items()
        )
        head += (
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{_quote(file_field)}"; '
            f'filename="{_quote(filename)}"\r\nContent-Type: {content_type}\r\n\r\n'
        ).encode()
        self._parts = [head, data, f"\r\n--{self.boundary}--\r\n".encode()]
        self._total = sum(len(part) for part in self._parts)
        self._part = 0
        self._offset = 0
        self.sent = 0
        self.on_progress: Callable[[int, int], None] = lambda sent, total: None

    def __len__(self) -> int:
        return self._total

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return b"".join(iter(lambda: self.read(self.CHUNK), b""))
        size = min(size, self.CHUNK)
        while self._part < len(self._parts) and self._offset >= len(self._parts[self._part]):
            self._part, self._offset = self._part + 1, 0
        if self._part >= len(self._parts):
            return b""
        chunk = self._parts[self._part][self._offset : self._offset + size]
        self._offset += len(chunk)
        self.sent += len(chunk)
        self.on_progress(self.sent, self._total)
        return chunk


def _quote(value: str) -> str:
    """A form-data header parameter: quotes and line breaks escaped as browsers do."""
    return value.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")
