"""A small webhook receiver for the local stack: collects SNS HTTP deliveries in memory.

Used by ``make demo``, the load test and the end-to-end tests. It stores what arrives
as it is: the callers verify each message's signature with ``image_client/sns_verify.py`` (as a
real subscriber must), fetching moto's signing certificate from the local stack
(``local_certificates``). ``events()`` skips what is not a JSON notification.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import requests

from local_stack.supervisor import SNS_CERTIFICATES


def local_certificates(cdn_url: str) -> Callable[[str], bytes]:
    """A certificate fetcher for the local stack: the pinned SigningCertURL's file, served locally."""

    def fetch(url: str) -> bytes:
        name = urlsplit(url).path.rsplit("/", 1)[-1]
        response = requests.get(f"{cdn_url}/{SNS_CERTIFICATES}{name}", timeout=5)
        response.raise_for_status()
        return response.content

    return fetch


class WebhookReceiver:
    def __init__(self) -> None:
        self.deliveries: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0") or 0)
                raw = self.rfile.read(min(length, 1_000_000))
                try:
                    delivery = json.loads(raw)
                except ValueError:
                    self.send_response(400)
                    self.end_headers()
                    return
                with receiver._lock:
                    receiver.deliveries.append(delivery)
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def events(self) -> list[dict[str, Any]]:
        """The image events received (the JSON ``Message`` of each notification)."""
        with self._lock:
            deliveries = list(self.deliveries)
        events = []
        for delivery in deliveries:
            if not isinstance(delivery, dict) or delivery.get("Type") != "Notification":
                continue
            try:
                event = json.loads(delivery.get("Message", ""))
            except (TypeError, ValueError):
                continue  # not an image event: a real subscriber would refuse it too
            if isinstance(event, dict):
                events.append(event)
        return events

    def wait_for(self, count: int, timeout: float) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            events = self.events()
            if len(events) >= count:
                return events
            time.sleep(0.1)
        return self.events()

    @contextmanager
    def running(self) -> Iterator[WebhookReceiver]:
        thread = threading.Thread(target=self._server.serve_forever, name="webhook-receiver", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
