"""Structured JSON logs with request, user and image ids from the current context.

Never log tokens, presigned URLs or policies: callers pass ids, not payloads.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

_context: ContextVar[dict[str, str]] = ContextVar("log_context", default={})  # noqa: B039 - never mutated

logger = logging.getLogger("image_service")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "level": record.levelname,
            "message": record.getMessage(),
            "logger": record.name,
        }
        entry.update(_context.get())
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(level: int = logging.INFO) -> None:
    """Install the JSON formatter once (Lambda adds its own handler; reuse it)."""
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler(sys.stderr))
    for handler in root.handlers:
        handler.setFormatter(JsonFormatter())
    logger.setLevel(level)


@contextmanager
def log_context(**values: str | None) -> Iterator[None]:
    """Add ids to every log line written inside the block."""
    merged = {**_context.get(), **{k: v for k, v in values.items() if v is not None}}
    token = _context.set(merged)
    try:
        yield
    finally:
        _context.reset(token)


def bind(**values: str | None) -> None:
    """Add ids to the current context until it ends (e.g. the user id once known)."""
    _context.set({**_context.get(), **{k: v for k, v in values.items() if v is not None}})


def current(name: str) -> str | None:
    """An id of the current context (e.g. the request id for an error body)."""
    return _context.get().get(name)


def info(message: str, **fields: Any) -> None:
    logger.info(message, extra={"fields": fields})


def warning(message: str, **fields: Any) -> None:
    logger.warning(message, extra={"fields": fields})


def error(message: str, exc_info: bool = False, **fields: Any) -> None:
    logger.error(message, exc_info=exc_info, extra={"fields": fields})
