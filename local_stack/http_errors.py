"""The local stack's HTTP servers answer their own errors with API.md's error body.

http.server refuses some requests before any handler sees them (a request line over
64 KiB: 414; a header line over 64 KiB or more than 100 headers: 431; a malformed request
line: 400; an HTTP version it does not speak: 505) and answers with an HTML page. API.md
wants every 4xx/5xx as ``{"error": {"code", "message", "requestId"}}``, as the AWS
stages' gateway responses give (scripts/gateway_responses.py), so both the API and the
CDN stand-in send that body instead.
"""

from __future__ import annotations

import json
import socket
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler

from chalicelib.errors import DomainError, NotFound

JSON_CONTENT_TYPE = "application/json; charset=utf-8"
# Codes for the statuses http.server produces itself; anything else is a plain bad_request.
ERROR_CODES: dict[int, tuple[str, str]] = {
    400: ("bad_request", "The request could not be read."),
    404: (NotFound.code, NotFound.default_message),
    414: ("uri_too_long", "The request URL is too long."),
    431: ("request_header_fields_too_large", "The request's header fields are too large."),
    500: (DomainError.code, DomainError.default_message),
    502: ("bad_gateway", "The origin did not answer. Retry."),
    505: ("http_version_not_supported", "The HTTP version is not supported. Use HTTP/1.1."),
}
# How much of an oversized request is read and dropped before closing: closing a socket
# with unread bytes sends a reset that can reach the client before the answer does.
DRAIN_BYTES = 1 << 20
DRAIN_SECONDS = 1.0


def error_body(status: int, message: str | None = None, request_id: str | None = None) -> bytes:
    code, default = ERROR_CODES.get(status, ("bad_request" if status < 500 else DomainError.code, ""))
    text = message or default or HTTPStatus(status).phrase
    body = {"error": {"code": code, "message": text, "requestId": request_id or str(uuid.uuid4())}}
    return json.dumps(body, separators=(",", ":")).encode()


class JsonErrors(BaseHTTPRequestHandler):
    """Replaces ``send_error``'s HTML page with API.md's error body (mix in first)."""

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # ``message`` and ``explain`` are http.server's own wording (e.g. "Line too long");
        # the client gets the contract's message for the status.
        del message, explain
        oversized = code in (HTTPStatus.REQUEST_URI_TOO_LONG, HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
        body = error_body(code)
        self.log_error("code %d", code)
        self.send_response(code)
        self.send_header("Content-Type", JSON_CONTENT_TYPE)
        self.send_header("Content-Length", str(len(body)))
        if oversized or code >= 500 or not getattr(self, "command", ""):
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if getattr(self, "command", "") != "HEAD":
            self.wfile.write(body)
        if oversized:
            self.wfile.flush()
            self._drain()

    def _drain(self) -> None:
        """Read (bounded) what is left of an oversized request so the close is not a reset."""
        try:
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(DRAIN_SECONDS)
            left = DRAIN_BYTES
            while left > 0:
                chunk = self.connection.recv(min(left, 65536))
                if not chunk:
                    break
                left -= len(chunk)
        except OSError:
            pass
