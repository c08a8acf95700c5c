"""The shipped client and CLI against a scripted HTTP server: retries, re-uploads, stops."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from image_client import upload
from image_client.client import MAX_ATTEMPTS, ApiError, Cancelled, ImageServiceClient

IMAGE_ID = "01JD3ZK4Q8N6W2T1R5Y7B9C0DE"


@dataclass
class Scripted:
    """Answers, in order, per (method, path prefix); records every request it saw."""

    answers: dict[tuple[str, str], list[tuple[int, dict[str, str], Any]]] = field(default_factory=dict)
    seen: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""

    def on(self, method: str, prefix: str, *answers: tuple[int, dict[str, str], Any]) -> None:
        self.answers.setdefault((method, prefix), []).extend(answers)

    def answer(self, method: str, path: str) -> tuple[int, dict[str, str], Any]:
        for (verb, prefix), queue in self.answers.items():
            if verb == method and path.startswith(prefix) and queue:
                return queue.pop(0) if len(queue) > 1 else queue[0]
        return 500, {}, {"error": {"code": "unscripted"}}


@pytest.fixture
def server() -> Iterator[Scripted]:
    scripted = Scripted()

    class Handler(BaseHTTPRequestHandler):
        def _reply(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            scripted.seen.append((self.command, self.path, dict(self.headers), body))
            status, headers, payload = scripted.answer(self.command, self.path)
            data = json.dumps(payload).encode() if payload is not None else b""
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _reply

        def log_message(self, format: str, *args: Any) -> None:
            return

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    scripted.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield scripted
    finally:
        httpd.shutdown()
        httpd.server_close()


def client(server: Scripted, naps: list[float]) -> ImageServiceClient:
    return ImageServiceClient(server.url, "token", timeout=5, sleep=naps.append)


def status(value: str, **extra: Any) -> tuple[int, dict[str, str], Any]:
    return 200, {}, {"id": IMAGE_ID, "status": value, "updatedAt": "2026-12-01T00:00:00.000Z", **extra}


def created(server: Scripted, value: str = "pending", with_form: bool = True, **image: Any) -> Any:
    body: dict[str, Any] = {"id": IMAGE_ID, "status": value, "image": {"id": IMAGE_ID, "status": value, **image}}
    if with_form:
        body["upload"] = {
            "method": "POST",
            "url": f"{server.url}/s3/",
            "fields": {"key": "k", "Content-Type": "image/png"},
        }
    return body


def test_a_503_with_retry_after_is_retried_after_that_many_seconds(server: Scripted) -> None:
    server.on("GET", f"/images/{IMAGE_ID}/status", (503, {"Retry-After": "1"}, {"error": {}}), status("completed"))
    naps: list[float] = []

    assert client(server, naps).status(IMAGE_ID)["status"] == "completed"
    assert naps == [1.0]


def test_retrying_gives_up_after_the_last_attempt_with_the_last_answer(server: Scripted) -> None:
    server.on("GET", "/images", (429, {}, {"error": {"code": "too_many_requests"}}))
    naps: list[float] = []

    with pytest.raises(ApiError) as raised:
        client(server, naps).status(IMAGE_ID)

    assert (raised.value.status, raised.value.code) == (429, "too_many_requests")
    assert len(server.seen) == MAX_ATTEMPTS and len(naps) == MAX_ATTEMPTS - 1
    assert all(0 < nap <= 20 for nap in naps)


def test_a_4xx_is_never_retried(server: Scripted) -> None:
    server.on("POST", "/images", (400, {}, {"error": {"code": "validation_error"}}))

    with pytest.raises(ApiError):
        client(server, []).create_upload("a.png", "image/png", 10, "key-1")
    assert len(server.seen) == 1


def test_a_create_without_a_key_is_not_repeated_after_a_lost_connection() -> None:
    naps: list[float] = []
    nobody = ImageServiceClient("http://127.0.0.1:9", "token", timeout=2, sleep=naps.append)  # nothing listens

    with pytest.raises(Exception, match="Connection"):
        nobody.create_upload("a.png", "image/png", 10)
    assert naps == []
    with pytest.raises(Exception, match="Connection"):
        nobody.create_upload("a.png", "image/png", 10, "key-1")  # with a key: repeated
    assert len(naps) == MAX_ATTEMPTS - 1


def test_s3_slow_down_is_retried_with_the_whole_form_again(server: Scripted) -> None:
    server.on("POST", "/s3/", (503, {}, None), (204, {}, None))

    client(server, []).upload_with_progress(created(server), b"\x89PNG-bytes", "a.png")

    posts = [body for method, path, _, body in server.seen if path.startswith("/s3/")]
    assert len(posts) == 2  # each a complete form: the fields, then the file, then the end
    assert all(b'name="key"' in body and b"\x89PNG-bytes" in body and body.rstrip().endswith(b"--") for body in posts)


def test_an_expired_or_deleted_image_is_uploaded_again_under_the_next_key(server: Scripted, tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(b"\x89PNG-bytes")
    server.on(
        "POST",
        "/images",
        (200, {}, created(server, "expired", with_form=False)),  # the first run's upload never arrived
        (404, {}, {"error": {"code": "not_found"}}),  # the second run's image was deleted
        (201, {}, created(server)),
    )

    result = upload.create_or_replay(client(server, []), path, path.read_bytes())

    keys = [headers["Idempotency-Key"] for _, _, headers, _ in server.seen]
    base = upload.idempotency_key("a.png", b"\x89PNG-bytes")
    assert keys == [base, f"{base}-r1", f"{base}-r2"]
    assert result["upload"]


def test_a_file_that_failed_for_its_content_is_not_uploaded_again(server: Scripted, tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(b"not a png")
    failed = created(server, "failed", with_form=False, error={"code": "corrupt_image", "message": "damaged"})
    server.on("POST", "/images", (200, {}, failed))

    assert upload.create_or_replay(client(server, []), path, path.read_bytes())["status"] == "failed"
    assert len(server.seen) == 1


def test_on_a_timeout_the_outcome_is_the_last_status_seen(server: Scripted, tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(b"\x89PNG-bytes")
    server.on("POST", "/images", (200, {}, created(server, "pending", with_form=False)))
    server.on("GET", "/images", status("processing"))

    progress = upload.Progress(io.StringIO())
    outcome = upload.upload_file(client(server, []), path, progress, progress.add("a.png"), timeout=0.01)

    assert (outcome.status, outcome.error and outcome.error["code"]) == ("processing", "timeout")


def test_a_stop_ends_the_wait_at_the_next_poll(server: Scripted) -> None:
    server.on("GET", "/images", status("processing"))
    stop = threading.Event()
    polls: list[str] = []

    def polled(current: dict[str, Any]) -> None:
        polls.append(current["status"])
        stop.set()

    with pytest.raises(Cancelled):
        client(server, []).wait_until_done(IMAGE_ID, timeout=60, on_poll=polled, should_stop=stop.is_set)
    assert polls == ["processing"]


COMPLETED_IMAGE = {
    "id": IMAGE_ID,
    "status": "completed",
    "imageUrl": "http://s3/i/640.webp",
    "thumbnailUrl": "http://s3/i/thumb.webp",
    "renditions": [
        {"width": 320, "height": 240, "format": "webp", "url": "http://s3/i/320.webp", "bytes": 900},
        {"width": 640, "height": 480, "format": "webp", "url": "http://s3/i/640.webp", "bytes": 2100},
    ],
    "srcset": "http://s3/i/320.webp 320w, http://s3/i/640.webp 640w",
    "thumbhash": "3OcRJYB4d3h/iIeHeEh3eIhw+j2w",
    "dominantColor": "#c82828",
    "duplicateOf": "01JD3ZK4Q8N6W2T1R5Y7B9C0AA",
}


def test_a_completed_outcome_carries_the_images_ladder_and_placeholders(server: Scripted, tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(b"\x89PNG-bytes")
    server.on("POST", "/images", (200, {}, created(server, "pending", with_form=False)))
    server.on("GET", f"/images/{IMAGE_ID}/status", status("completed", imageUrl="http://s3/i/640.webp"))
    server.on("GET", f"/images/{IMAGE_ID}", (200, {}, COMPLETED_IMAGE))

    progress = upload.Progress(io.StringIO())
    outcome = upload.upload_file(client(server, []), path, progress, progress.add("a.png"), timeout=5)

    result = outcome.as_json()
    assert result["status"] == "completed" and result["error"] is None
    for name in ("imageUrl", "thumbnailUrl", "renditions", "srcset", "thumbhash", "dominantColor", "duplicateOf"):
        assert result[name] == COMPLETED_IMAGE[name], name


def test_a_completed_image_that_cannot_be_read_is_still_reported_completed(
    server: Scripted, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(b"\x89PNG-bytes")
    server.on("POST", "/images", (200, {}, created(server, "pending", with_form=False)))
    server.on("GET", f"/images/{IMAGE_ID}/status", status("completed", imageUrl="http://s3/i/640.webp"))
    server.on("GET", f"/images/{IMAGE_ID}", (404, {}, {"error": {"code": "not_found", "message": "gone"}}))

    progress = upload.Progress(io.StringIO())
    outcome = upload.upload_file(client(server, []), path, progress, progress.add("a.png"), timeout=5)

    result = outcome.as_json()
    assert (result["status"], result["imageUrl"], result["renditions"], result["srcset"]) == (
        "completed",
        "http://s3/i/640.webp",
        None,
        None,
    )
    assert "completed, but GET /images/" in capsys.readouterr().err
