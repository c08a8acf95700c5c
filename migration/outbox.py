"""The dual-write's outbox: where a dropped dual-write is kept until it is replayed.

A dual-write is dropped when its bounded retries run out (timeouts, 429, 5xx) or the
Image Service refuses it (400, 401, 403): the legacy row is committed but the Image
Service does not have it. The dropped write is recorded here, durably, and
``python -m migration.replay_outbox`` sends those images' rows again.

Only the image id is kept (with when and why): a replay reads the row as it is *then*
and sends that, so it never sends an older state than PostgreSQL's, and the import
endpoint's newer-wins makes any replay safe to repeat.

``PostgresOutbox`` (recommended): the table ``gallery_dual_write_outbox``
(``dual_write_outbox.sql``) in the legacy database, one row per image: shared by every
process and host of the legacy API, backed up with the rest of its data, and readable
with SQL. Its own small autocommit connection (2 s timeouts); when the table cannot be
written (PostgreSQL unreachable just after the legacy commit), the entry goes to the
fallback file instead.

``FileOutbox``: JSON lines (``{"id", "reason", "failedAt"}``) appended and fsync'ed
under an exclusive lock, next to the process; the default when no outbox DSN is set,
and the fallback of ``PostgresOutbox``.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TextIO

import psycopg

OUTBOX_TABLE = "gallery_dual_write_outbox"
OUTBOX_SCHEMA = Path(__file__).with_name("dual_write_outbox.sql")
DEFAULT_FILE = Path("dual-write-outbox.jsonl")
_MAX_REASON = 1000


class Outbox(Protocol):
    def record(self, image_id: str, reason: str) -> None:
        """Keep a dropped dual-write of ``image_id`` durably; raise if it cannot."""


@dataclass(frozen=True)
class OutboxEntry:
    image_id: str
    failed_at: datetime  # the last drop (a replay removes the entry only if it is still this one)
    failures: int
    reason: str


# -- a file of JSON lines -------------------------------------------------------------------


class FileOutbox:
    """Appends one JSON line per dropped write, flushed and fsync'ed, under ``flock``."""

    def __init__(self, path: Path = DEFAULT_FILE) -> None:
        self.path = path
        self._lock = threading.Lock()

    def record(self, image_id: str, reason: str, failed_at: datetime | None = None) -> None:
        line = json.dumps(
            {"id": image_id, "reason": reason[:_MAX_REASON], "failedAt": (failed_at or _now()).isoformat()}
        )
        with self._lock, self._locked_append() as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    @contextmanager
    def _locked_append(self) -> Iterator[TextIO]:
        """The live file, opened for appending and locked. A replay renames the file to
        claim it: a writer that opened the old one before the rename opens it again."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            handle = self.path.open("a")
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                current = os.stat(self.path)
            except FileNotFoundError:
                current = None
            if current is not None and current.st_ino == os.fstat(handle.fileno()).st_ino:
                break
            handle.close()  # claimed by a replay meanwhile: append to the new file
        try:
            yield handle
        finally:
            handle.close()

    def claim(self) -> Path | None:
        """Take the entries written so far for a replay: the file is renamed (new drops
        go to a new file), then locked once so that no writer is still appending to it.
        A claim a crashed replay left is taken again first. None when there is nothing."""
        claimed = self.path.with_name(self.path.name + ".replaying")
        if claimed.exists():
            return claimed
        try:
            os.rename(self.path, claimed)
        except FileNotFoundError:
            return None
        with claimed.open("a") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        return claimed

    @staticmethod
    def read(path: Path) -> list[OutboxEntry]:
        """The entries of a claimed file, one per image (its last drop)."""
        entries: dict[str, OutboxEntry] = {}
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            try:
                values = json.loads(line)
                image_id = str(values["id"])
                failed_at = datetime.fromisoformat(str(values["failedAt"]))
                reason = str(values.get("reason", ""))
            except (ValueError, KeyError, TypeError):
                continue  # a line torn by a crash mid-write: the rest is still good
            before = entries.get(image_id)
            entries[image_id] = OutboxEntry(image_id, failed_at, before.failures + 1 if before else 1, reason)
        return list(entries.values())


# -- a table in the legacy database -----------------------------------------------------------

_UPSERT = f"""
INSERT INTO {OUTBOX_TABLE} (image_id, failed_at, reason) VALUES (%s::uuid, now(), %s)
ON CONFLICT (image_id) DO UPDATE
   SET failed_at = excluded.failed_at, reason = excluded.reason, failures = {OUTBOX_TABLE}.failures + 1
"""  # noqa: S608 - a constant table name


class OutboxUnavailable(Exception):
    """Neither the table nor the fallback file could keep the entry."""


class PostgresOutbox:
    """``gallery_dual_write_outbox`` in the legacy database (``dual_write_outbox.sql``)."""

    def __init__(self, dsn: str, fallback: FileOutbox | None = None, timeout_seconds: int = 2) -> None:
        self._dsn = dsn
        self._fallback = fallback
        self._timeout = timeout_seconds
        self._connection: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()

    def _connect(self) -> psycopg.Connection[Any]:
        if self._connection is None or self._connection.closed:
            self._connection = psycopg.connect(
                self._dsn,
                autocommit=True,
                connect_timeout=self._timeout,
                application_name="gallery-dual-write-outbox",
                options=f"-c statement_timeout={self._timeout * 1000}",
            )
        return self._connection

    def _execute(self, query: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                with self._connect().cursor() as cursor:
                    cursor.execute(query, params)
                    return cursor.fetchall() if cursor.description else [(cursor.rowcount,)]
            except psycopg.Error:
                self.close()  # a broken connection is opened again next time
                raise

    def record(self, image_id: str, reason: str) -> None:
        try:
            self._execute(_UPSERT, (image_id, reason[:_MAX_REASON]))
        except psycopg.Error as exc:
            if self._fallback is None:
                raise OutboxUnavailable(f"{OUTBOX_TABLE}: {str(exc).strip().splitlines()[0]}") from exc
            self._fallback.record(image_id, f"{reason} (outbox table unavailable: {type(exc).__name__})")

    def entries(self, limit: int = 500, after: str | None = None) -> list[OutboxEntry]:
        """Up to ``limit`` entries, in image id order after ``after``."""
        rows = self._execute(
            f"SELECT image_id::text, failed_at, failures, reason FROM {OUTBOX_TABLE} "  # noqa: S608
            "WHERE %s::uuid IS NULL OR image_id > %s::uuid ORDER BY image_id LIMIT %s",
            (after, after, limit),
        )
        return [OutboxEntry(str(i), failed_at, int(failures), str(reason)) for i, failed_at, failures, reason in rows]

    def remove(self, entry: OutboxEntry) -> bool:
        """Remove the entry if it is still the one read (no drop recorded since)."""
        rows = self._execute(
            f"DELETE FROM {OUTBOX_TABLE} WHERE image_id = %s::uuid AND failed_at = %s",  # noqa: S608
            (entry.image_id, entry.failed_at),
        )
        return bool(rows and rows[0][0])

    def still_failing(self, entry: OutboxEntry, reason: str) -> None:
        """A replay that failed again: keep the entry, with the new reason."""
        self._execute(
            f"UPDATE {OUTBOX_TABLE} SET reason = %s, failures = failures + 1 "  # noqa: S608
            "WHERE image_id = %s::uuid AND failed_at = %s",
            (reason[:_MAX_REASON], entry.image_id, entry.failed_at),
        )

    def table_exists(self) -> bool:
        rows = self._execute("SELECT to_regclass(%s) IS NOT NULL", (OUTBOX_TABLE,))
        return bool(rows and rows[0][0])

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _now() -> datetime:
    return datetime.now(UTC)
