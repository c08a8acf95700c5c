"""A tiny HTTP server on 127.0.0.1 that answers badly on purpose (no mocks of our code)."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import urlsplit


class _LoopbackServer:
    """Serves ``handler`` on a free 127.0.0.1 port while used as a context manager."""

    def _serve(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()


_BROKEN_BODIES = {
    "cut_off": b"",
    "bad_encoding": b"this is not gzip at all",
    "not_json": b"<html><body>502 Bad Gateway</body></html>",
    "json_not_object": b"null",
}


class MisbehavingServer(_LoopbackServer):
    """``mode``: "slow" (answers after ``delay`` s), "error" (503), "bad_request" (400),
    "not_found" (404), "throttled" (429), "ok" (200 with ``body``), "cut_off" (200, the
    connection closed in the middle of a chunked body), "bad_encoding" (200, gzip that is
    not), "not_json" (200 with an HTML page), "json_not_object" (200 with ``null``).
    ``requests`` counts what arrived."""

    def __init__(self, mode: str, delay: float = 1.0, body: Any = None) -> None:
        self.mode = mode
        self.requests: list[tuple[str, str]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._answer()

            def do_PUT(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                self._answer()

            def _answer(self) -> None:
                owner.requests.append((self.command, self.path))
                if owner.mode == "slow":
                    time.sleep(delay)
                if owner.mode in _BROKEN_BODIES:
                    self._broken()
                    return
                status = {"error": 503, "bad_request": 400, "not_found": 404, "throttled": 429}.get(owner.mode, 200)
                payload = json.dumps(body if status == 200 else {"error": {"code": owner.mode}}).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout): that was the point

            def _broken(self) -> None:
                self.close_connection = True
                self.send_response(200)
                if owner.mode == "cut_off":
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    self.wfile.write(b'20\r\n{"id": "half an ans')  # 32 bytes announced, fewer sent
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                payload = _BROKEN_BODIES[owner.mode]
                self.send_header("Content-Type", "text/html" if owner.mode == "not_json" else "application/json")
                if owner.mode == "bad_encoding":
                    self.send_header("Content-Encoding", "gzip")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._serve(Handler)


class ScriptedDynamoDB(_LoopbackServer):
    """Plays DynamoDB's JSON protocol badly on purpose: the n-th request gets the n-th
    ``(status, body)`` of ``answers`` (the last one once they run out). ``requests``
    holds each request's ``X-Amz-Target`` and decoded JSON body."""

    def __init__(self, answers: list[tuple[int, dict[str, Any]]]) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
                owner.requests.append((self.headers.get("X-Amz-Target", ""), body))
                status, answer = answers[min(len(owner.requests), len(answers)) - 1]
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.0")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._serve(Handler)


class RefusingDynamoDB(_LoopbackServer):
    """Passes DynamoDB's JSON protocol on to ``upstream`` (the local stack), except the
    requests whose operation is in ``refuse``: once ``allow`` of them have gone through,
    they are answered ``code`` (400), as DynamoDB answers a caller whose permissions or
    credentials do not (any longer) allow them. ``requests`` holds every operation seen."""

    def __init__(self, upstream: str, refuse: set[str], code: str, allow: int = 0) -> None:
        self.requests: list[str] = []
        owner = self
        target = urlsplit(upstream)
        passed: dict[str, int] = {}
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                operation = self.headers.get("X-Amz-Target", "").rsplit(".", 1)[-1]
                with lock:
                    owner.requests.append(operation)
                    refused = operation in refuse and passed.get(operation, 0) >= allow
                    if operation in refuse and not refused:
                        passed[operation] = passed.get(operation, 0) + 1
                if refused:
                    error = {"__type": f"com.amazon.coral.service#{code}", "message": f"{code} for {operation}"}
                    self._send(400, "application/x-amz-json-1.0", json.dumps(error).encode())
                    return
                connection = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port, timeout=30)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                    connection.request("POST", self.path, body=body, headers=headers)
                    response = connection.getresponse()
                    payload = response.read()
                    self._send(
                        response.status,
                        response.getheader("Content-Type", "application/x-amz-json-1.0"),
                        payload,
                        {k: v for k, v in response.getheaders() if k.lower() in ("x-amz-crc32", "x-amzn-requestid")},
                    )
                finally:
                    connection.close()

            def _send(self, status: int, kind: str, payload: bytes, extra: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(payload)))
                for name, value in (extra or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._serve(Handler)
