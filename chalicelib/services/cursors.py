"""Opaque, tamper-evident pagination cursors.

A cursor is ``base64url(json) "." base64url(HMAC-SHA256)`` over DynamoDB's
``LastEvaluatedKey``, bound to the user and the query it came from: an edited, truncated
or foreign cursor fails verification and is answered with ``400 invalid_cursor``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from chalicelib.errors import InvalidCursor

# Longer than any cursor ``encode`` makes (about 3,000 characters for the longest user and
# album ids, 128 four-byte characters each); anything longer is refused before decoding.
MAX_CURSOR_LENGTH = 4096


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CursorCodec:
    def __init__(self, secret: str) -> None:
        if len(secret) < 32:
            raise ValueError("the cursor secret must be at least 32 characters")
        self._key = secret.encode()

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()

    def encode(self, position: dict[str, Any], user_id: str, scope: str) -> str:
        # UTF-8 rather than \uXXXX escapes: a cursor of non-ASCII ids stays well within the bound.
        payload = json.dumps(
            {"k": position, "u": user_id, "s": scope}, separators=(",", ":"), sort_keys=True, ensure_ascii=False
        ).encode()
        return f"{_b64encode(payload)}.{_b64encode(self._sign(payload))}"

    def decode(self, cursor: str, user_id: str, scope: str) -> dict[str, Any]:
        if len(cursor) > MAX_CURSOR_LENGTH:
            raise InvalidCursor()
        try:
            payload_text, signature_text = cursor.split(".")
            payload = _b64decode(payload_text)
            signature = _b64decode(signature_text)
        except (ValueError, UnicodeEncodeError) as exc:
            raise InvalidCursor() from exc
        if not hmac.compare_digest(signature, self._sign(payload)):
            raise InvalidCursor()
        try:
            data = json.loads(payload)
        except ValueError as exc:
            raise InvalidCursor() from exc
        if data.get("u") != user_id or data.get("s") != scope or not isinstance(data.get("k"), dict):
            raise InvalidCursor()
        position: dict[str, Any] = data["k"]
        return position
