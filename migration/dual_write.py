"""Dual-write: the legacy gallery API calls this after each PostgreSQL write commits.

    writer = DualWriter.from_environ(os.environ, token=service_token)
    ...  # the legacy INSERT/UPDATE of gallery_images commits
    writer.after_legacy_write(row)         # never raises; returns what happened

With ``ENABLE_DYNAMODB_DUAL_WRITE`` true, the row goes to ``PUT /internal/images/{id}``
with a short timeout and a few retries (tenacity: exponential backoff with jitter, and an
overall time budget) on timeouts, connection errors, 429 and 5xx. A write dropped after
those retries, or refused (400, 401, 403), is logged, counted, and kept in the outbox
(``migration/outbox.py``: the legacy database's ``gallery_dual_write_outbox``
with ``DUAL_WRITE_OUTBOX_DSN``, else the JSON-lines file ``DUAL_WRITE_OUTBOX_FILE``), which
``python -m migration.replay_outbox`` sends again; the user's request goes on
whatever happens. 409 ``stale_update`` means a newer record is already stored (or the
image was deleted through the service), which is fine.

Call it after the commit, not inside the transaction: a write that is rolled back must
not reach the Image Service, and the backfill's guard relies on the order (see
migration/backfill.py).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)
from tenacity.wait import wait_base

from migration.legacy import LegacyRow, RowRejected, row_to_body
from migration.outbox import DEFAULT_FILE, FileOutbox, Outbox, PostgresOutbox

ENV_FLAG = "ENABLE_DYNAMODB_DUAL_WRITE"
ENV_URL = "IMAGE_SERVICE_URL"
ENV_OUTBOX_DSN = "DUAL_WRITE_OUTBOX_DSN"  # the legacy database (recommended)
ENV_OUTBOX_FILE = "DUAL_WRITE_OUTBOX_FILE"  # the file (default dual-write-outbox.jsonl), and the table's fallback

logger = logging.getLogger("gallery.dual_write")


class DualWriteOutcome(StrEnum):
    DISABLED = "disabled"
    WRITTEN = "written"  # created, replaced, or already stored (same updatedAt)
    STALE = "stale"  # a newer record is stored; nothing to do
    FAILED = "failed"  # logged, counted and kept in the outbox, for a replay


@dataclass
class DualWriteStats:
    """Counters for the legacy API's metrics (thread-safe)."""

    written: int = 0
    stale: int = 0
    failed: int = 0
    kept: int = 0  # failed writes the outbox holds
    lost: int = 0  # failed writes the outbox could not keep (logged at ERROR with the image id)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, outcome: DualWriteOutcome) -> None:
        with self._lock:
            if outcome is DualWriteOutcome.WRITTEN:
                self.written += 1
            elif outcome is DualWriteOutcome.STALE:
                self.stale += 1
            elif outcome is DualWriteOutcome.FAILED:
                self.failed += 1

    def count_outbox(self, kept: bool) -> None:
        with self._lock:
            if kept:
                self.kept += 1
            else:
                self.lost += 1


class _Retryable(Exception):
    """A failure a later attempt may not have (timeout, connection, 429, 5xx)."""


class _Permanent(Exception):
    """The service refused the row (4xx other than 409/429): retrying cannot help."""


def env_flag(environ: Mapping[str, str], name: str, default: bool = False) -> bool:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be true or false, got {raw!r}")


class DualWriter:
    def __init__(
        self,
        base_url: str,
        token: Callable[[], str],
        *,
        enabled: bool = True,
        connect_timeout: float = 0.5,
        read_timeout: float = 2.0,
        attempts: int = 3,
        budget_seconds: float = 5.0,
        wait: wait_base | None = None,
        session: requests.Session | None = None,
        outbox: Outbox | None = None,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._token = token
        self.enabled = enabled
        self._timeout = (connect_timeout, read_timeout)
        self._attempts = attempts
        self._budget = budget_seconds
        self._wait = wait or wait_random_exponential(multiplier=0.1, max=1.0)
        self._session = session or requests.Session()
        self.outbox = outbox  # from_environ always sets one
        self.stats = DualWriteStats()

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], token: Callable[[], str], **options: Any) -> DualWriter:
        """``ENABLE_DYNAMODB_DUAL_WRITE`` (default false), ``IMAGE_SERVICE_URL``, and the
        outbox: ``DUAL_WRITE_OUTBOX_DSN`` (the legacy database's table, falling back to the
        file) or ``DUAL_WRITE_OUTBOX_FILE`` alone (default ``dual-write-outbox.jsonl``)."""
        enabled = env_flag(environ, ENV_FLAG)
        base_url = environ.get(ENV_URL, "")
        if enabled and not base_url.startswith(("http://", "https://")):
            raise ValueError(f"{ENV_FLAG} is on but {ENV_URL} is not an http(s) URL: {base_url!r}")
        if "outbox" not in options:
            options["outbox"] = outbox_from_environ(environ)
        return cls(base_url, token, enabled=enabled, **options)

    def after_legacy_write(self, row: LegacyRow | Mapping[str, Any]) -> DualWriteOutcome:
        """Send the committed row to the Image Service; a dropped write goes to the
        outbox. Never raises."""
        if not self.enabled:
            return DualWriteOutcome.DISABLED
        image_id, outcome, reason = self.deliver(row)
        if outcome is DualWriteOutcome.FAILED:
            logger.warning("dual-write failed", extra={"imageId": image_id, "reason": reason, "outcome": outcome.value})
            self._keep(image_id, reason or "failed")
        else:
            logger.info("dual-write", extra={"imageId": image_id, "outcome": outcome.value})
        self.stats.count(outcome)
        return outcome

    def deliver(self, row: LegacyRow | Mapping[str, Any]) -> tuple[str, DualWriteOutcome, str | None]:
        """The image id, the outcome of one dual-write of ``row`` (with its bounded
        retries), and why it failed. Never raises; records nothing."""
        image_id = "?"
        try:
            legacy = row if isinstance(row, LegacyRow) else LegacyRow.from_mapping(row)
            image_id = legacy.id
            return image_id, self._send(legacy), None
        except Exception as exc:  # the user's request must go on whatever happens here
            return image_id, DualWriteOutcome.FAILED, _describe(exc)

    def _keep(self, image_id: str, reason: str) -> None:
        kept = False
        if self.outbox is not None and image_id != "?":
            try:
                self.outbox.record(image_id, reason)
                kept = True
            except Exception as exc:  # never the user's problem; but say loudly what is lost
                reason = f"{reason}; outbox: {type(exc).__name__}: {exc}"
        if not kept:
            logger.error("dual-write lost: not in the outbox", extra={"imageId": image_id, "reason": reason})
        self.stats.count_outbox(kept)

    def _send(self, row: LegacyRow) -> DualWriteOutcome:
        body = row_to_body(row)  # RowRejected for a row the model refuses: not retried
        url = f"{self._base}/internal/images/{quote(row.id, safe='')}"
        retrying = Retrying(
            retry=retry_if_exception_type(_Retryable),
            stop=stop_after_attempt(self._attempts) | stop_after_delay(self._budget),
            wait=self._wait,
        )
        result: DualWriteOutcome = DualWriteOutcome.FAILED
        for attempt in retrying:
            with attempt:
                result = self._put(url, body)
        return result

    def _put(self, url: str, body: dict[str, Any]) -> DualWriteOutcome:
        try:
            response = self._session.put(
                url, json=body, timeout=self._timeout, headers={"Authorization": f"Bearer {self._token()}"}
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise _Retryable(type(exc).__name__) from exc
        if response.status_code in (200, 201):
            return DualWriteOutcome.WRITTEN
        if response.status_code == 409:
            return DualWriteOutcome.STALE
        if response.status_code == 429 or response.status_code >= 500:
            raise _Retryable(f"HTTP {response.status_code}")
        raise _Permanent(f"HTTP {response.status_code}: {response.text[:300]}")


def outbox_from_environ(environ: Mapping[str, str]) -> Outbox:
    """The table when ``DUAL_WRITE_OUTBOX_DSN`` is set (the file as its fallback), else the file."""
    file = FileOutbox(Path(environ.get(ENV_OUTBOX_FILE) or DEFAULT_FILE))
    dsn = environ.get(ENV_OUTBOX_DSN, "").strip()
    return PostgresOutbox(dsn, fallback=file) if dsn else file


def _describe(exc: BaseException) -> str:
    if isinstance(exc, RetryError):
        last = exc.last_attempt.exception()
        return f"gave up after {exc.last_attempt.attempt_number} attempt(s): {last}"
    if isinstance(exc, RowRejected):
        return f"row does not fit the import model: {exc.reason}"
    return f"{type(exc).__name__}: {exc}"
