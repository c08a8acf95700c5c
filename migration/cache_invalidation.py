"""Legacy cache invalidation with SCAN instead of KEYS.

``KEYS pattern`` walks the whole keyspace in one blocking call: on a large cache it
stalls every other client. ``SCAN`` walks it in small steps (``COUNT`` keys per call,
cursor-driven), so Redis keeps serving in between; matching keys are removed with
``UNLINK`` (freed in the background) in batches.
"""

from __future__ import annotations

import re
from typing import Protocol

DEFAULT_PREFIX = "gallery"
_GLOB_SPECIAL = re.compile(r"([\\*?\[\]])")


class ScanningRedis(Protocol):
    """The two commands used (``redis.Redis`` has them)."""

    def scan(self, cursor: int = 0, match: str | None = None, count: int | None = None) -> tuple[int, list[bytes]]: ...

    def unlink(self, *names: bytes | str) -> int: ...


def escape_glob(text: str) -> str:
    """``text`` matched literally inside a MATCH pattern (a user id with ``*`` stays one user)."""
    return _GLOB_SPECIAL.sub(r"\\\1", text)


def invalidate(client: ScanningRedis, pattern: str, *, count: int = 500, batch: int = 500) -> int:
    """Remove every key matching ``pattern``; returns how many were removed."""
    removed = 0
    pending: list[bytes] = []
    cursor = 0
    while True:
        cursor, keys = client.scan(cursor=cursor, match=pattern, count=count)
        pending.extend(keys)
        if len(pending) >= batch:
            removed += client.unlink(*pending)
            pending.clear()
        if cursor == 0:
            break
    if pending:
        removed += client.unlink(*pending)
    return removed


def user_patterns(user_id: str, prefix: str = DEFAULT_PREFIX) -> list[str]:
    """The legacy API's cache keys of one user: their listings and their images."""
    user = escape_glob(user_id)
    return [f"{prefix}:user:{user}:*", f"{prefix}:images:{user}:*"]


def image_patterns(image_id: str, prefix: str = DEFAULT_PREFIX) -> list[str]:
    return [f"{prefix}:image:{escape_glob(image_id)}", f"{prefix}:image:{escape_glob(image_id)}:*"]


def invalidate_user(client: ScanningRedis, user_id: str, prefix: str = DEFAULT_PREFIX, count: int = 500) -> int:
    return sum(invalidate(client, pattern, count=count) for pattern in user_patterns(user_id, prefix))


def invalidate_image(client: ScanningRedis, image_id: str, prefix: str = DEFAULT_PREFIX, count: int = 500) -> int:
    return sum(invalidate(client, pattern, count=count) for pattern in image_patterns(image_id, prefix))
