"""The backfill engine behind ``scripts/migrate_gallery.py``.

Rows stream from PostgreSQL in (created_at, id) order through a server-side cursor, in
batches. Each batch is mapped, written, and only then is the checkpoint moved to the
batch's last row. A crash loses at most the batch in flight, which ``--resume`` writes
again; writing a row twice stores the same item (same key, same updatedAt), so nothing
is lost or duplicated.

Newer wins, and two write modes keep that promise differently (docs/migration.md):

``conditional`` (default)
    BatchGetItem reads the stored ``updatedAt``/``version`` of every row; rows stored as
    new or newer are counted without a write; the rest go out as TransactWriteItems of up
    to 100 puts (``BatchImportRepository.put_all_if_unchanged``), each on condition that its
    stored record is still exactly the one seen (absent, or that ``updatedAt`` and
    ``version``). A write can never replace a newer record, by construction: whatever
    lands between the read and the transaction fails that row's condition, and DynamoDB
    then cancels the whole transaction (all or nothing); its rows are written again one by
    one with the endpoint's conditional upsert (``BatchImportRepository.upsert``), which decides
    each from the record found. Transaction conflicts and throttling are retried with the
    same ClientRequestToken.

``batch``
    BatchWriteItem has no conditions, so the batch is guarded: (1) BatchGetItem reads the
    stored ``updatedAt`` of every row, and rows whose stored record is as new or newer are
    skipped; (2) the rest are written with BatchWriteItem, UnprocessedItems retried;
    (3) PostgreSQL is asked again (a fresh read, not the cursor's snapshot) for the written
    rows' ``updated_at``: a row changed since the snapshot may have been dual-written
    between (1) and (2) and overwritten by the older copy, so it is rewritten from its
    fresh row with the conditional upsert, and a row deleted meanwhile is removed again.
    A newer record can be replaced for the milliseconds between (2) and (3), never for
    longer: the repair runs before the checkpoint moves, so even a crash there is
    repaired by ``--resume``. The dual-write must run after the legacy transaction
    commits (it does: the legacy API calls it after its PostgreSQL write).
"""

from __future__ import annotations

import json
import queue
import resource
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import psycopg
from botocore.exceptions import ClientError
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential
from tqdm import tqdm

from chalicelib.errors import TransientFailure
from chalicelib.models.common import format_time
from chalicelib.models.domain import ImageRecord
from chalicelib.repositories.imports import StoredVersion, UpsertOutcome, content_digest
from migration import checkpoint as checkpoints
from migration.batch_repository import (
    BATCH_GET_LIMIT,
    BATCH_WRITE_LIMIT,
    TRANSACT_WRITE_LIMIT,
    BatchImportRepository,
    chunked,
    refuses_the_request,
)
from migration.checkpoint import Checkpoint
from migration.errors import MigrationError
from migration.legacy import TABLE, LegacyRow, LegacySource, Position, RowRejected, row_to_record
from migration.stage import StageTable

MAX_LISTED_FAILURES = 20
OWNERSHIP_CONFLICT = "the stored record was not imported, or has another owner: not replaced (see docs/migration.md)"


class WriteMode(StrEnum):
    CONDITIONAL = "conditional"
    BATCH = "batch"


def backfill_retrying() -> Retrying:
    """Throttling, 5xx and UnprocessedItems: exponential backoff with full jitter, bounded."""
    return Retrying(
        retry=retry_if_exception_type(TransientFailure),
        stop=stop_after_attempt(10),
        wait=wait_random_exponential(multiplier=0.1, max=20),
        reraise=True,
    )


@dataclass
class Counts:
    read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped_older: int = 0
    skipped_deleted: int = 0  # deleted through the service since: the tombstone stays
    failed: int = 0
    repaired: int = 0
    removed: int = 0

    @property
    def written(self) -> int:
        return self.created + self.updated

    def add(self, other: Counts) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, values: dict[str, int]) -> Counts:
        return cls(**{k: int(v) for k, v in values.items() if k in cls.__dataclass_fields__})

    def count(self, outcome: UpsertOutcome) -> None:
        if outcome is UpsertOutcome.CREATED:
            self.created += 1
        elif outcome is UpsertOutcome.UPDATED:
            self.updated += 1
        elif outcome is UpsertOutcome.UNCHANGED:
            self.unchanged += 1
        elif outcome is UpsertOutcome.DELETED:
            self.skipped_deleted += 1
        else:
            self.skipped_older += 1


@dataclass(frozen=True)
class Failure:
    image_id: str
    reason: str


@dataclass
class BatchResult:
    counts: Counts = field(default_factory=Counts)
    failures: list[Failure] = field(default_factory=list)

    def fail(self, image_id: str, reason: str) -> None:
        self.counts.failed += 1
        self.failures.append(Failure(image_id, reason))


def _permanent(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    return f"DynamoDB refused the item: {error.get('Code', '?')}: {error.get('Message', '')}".strip()


Seen = tuple[ImageRecord, StoredVersion | None]  # a record to write, and what the table held


def partition(
    repository: BatchImportRepository, pool: ThreadPoolExecutor, records: Sequence[ImageRecord], repair: bool = False
) -> tuple[list[Seen], BatchResult]:
    """Read the stored versions (BatchGetItem) and keep the records that are newer.

    Records already stored with the same ``updatedAt`` count as unchanged, records whose
    stored copy is newer as skipped, records deleted through the service (a tombstone,
    whatever its ``updatedAt``) as skipped, deleted, records whose stored copy was not
    imported or has another owner as failed; the rest come back with the
    ``version`` they will have when written, each with the stored version seen (``None``
    when there was no record). With ``repair`` (--restart, --retry-failures), a record
    stored with the same ``updatedAt`` but other content (``content_digest``: two legacy
    updates within one millisecond) is written too, on the same condition.
    """
    result = BatchResult()
    stored: dict[str, StoredVersion] = {}
    # Refused here, before any write: BatchWriteItem cannot carry the ownership condition.
    chunks = [[r.id for r in c] for c in chunked(records, BATCH_GET_LIMIT)]
    for part in pool.map(lambda ids: repository.stored_versions(ids, with_digest=repair), chunks):
        stored.update(part)
    to_write: list[Seen] = []
    for record in records:
        current = stored.get(record.id)
        if current is None:
            to_write.append((record.model_copy(update={"version": 1}), None))
        elif not current.imported or current.user_id != record.user_id:
            result.fail(record.id, OWNERSHIP_CONFLICT)
        elif current.deleted:
            result.counts.skipped_deleted += 1
        elif current.updated_at > record.updated_at:
            result.counts.skipped_older += 1
        elif current.updated_at == record.updated_at and not (repair and current.digest != content_digest(record)):
            result.counts.unchanged += 1
        else:
            to_write.append((record.model_copy(update={"version": current.version + 1}), current))
    return to_write, result


def _count_written(counts: Counts, records: Sequence[ImageRecord]) -> None:
    for record in records:
        counts.count(UpsertOutcome.CREATED if record.version == 1 else UpsertOutcome.UPDATED)


class ConditionalWriter:
    """Rows already current are skipped after one BatchGetItem; the others are written by
    TransactWriteItems of up to 100 puts, each on condition that its stored record is
    still the one the BatchGetItem saw, ``workers`` transactions at a time. A transaction
    that DynamoDB cancels (another writer got in between, or an item was refused) wrote
    nothing; its rows are then written one by one with the conditional upsert."""

    def __init__(
        self,
        repository: BatchImportRepository,
        pool: ThreadPoolExecutor,
        before_write: Callable[[Sequence[ImageRecord]], None] | None = None,
        repair: bool = False,
    ) -> None:
        self._repository = repository
        self._pool = pool
        self._before_write = before_write
        self._repair = repair

    def write(self, records: Sequence[ImageRecord]) -> BatchResult:
        to_write, result = partition(self._repository, self._pool, records, self._repair)
        if self._before_write is not None:
            self._before_write([record for record, _ in to_write])
        chunks = list(chunked(to_write, TRANSACT_WRITE_LIMIT))
        refused: list[ImageRecord] = []
        for chunk, written in zip(chunks, self._pool.map(self._repository.put_all_if_unchanged, chunks), strict=True):
            if written:
                _count_written(result.counts, [record for record, _ in chunk])
            else:
                refused.extend(record for record, _ in chunk)
        if refused:
            one_by_one = self.upsert_each(refused)
            result.counts.add(one_by_one.counts)
            result.failures.extend(one_by_one.failures)
        return result

    def upsert_each(self, records: Sequence[ImageRecord]) -> BatchResult:
        result = BatchResult()
        for record, outcome in zip(records, self._pool.map(self._upsert, records), strict=True):
            if outcome is UpsertOutcome.CONFLICT:
                result.fail(record.id, OWNERSHIP_CONFLICT)
            elif isinstance(outcome, UpsertOutcome):
                result.counts.count(outcome)
            else:
                result.fail(record.id, outcome)
        return result

    def _upsert(self, record: ImageRecord) -> UpsertOutcome | str:
        try:
            return self._repository.upsert(record, self._repair).outcome
        except ClientError as exc:  # not transient (those are TransientFailure)
            if refuses_the_request(exc):
                raise  # credentials, permissions, the table: no row is to blame, the run stops
            return _permanent(exc)  # this item is bad


class GuardedBatchWriter:
    """BatchGetItem, BatchWriteItem, then a fresh PostgreSQL re-check (module docstring)."""

    def __init__(
        self,
        repository: BatchImportRepository,
        source: LegacySource,
        pool: ThreadPoolExecutor,
        before_write: Callable[[Sequence[ImageRecord]], None] | None = None,
        repair: bool = False,
    ) -> None:
        self._repository = repository
        self._source = source
        self._pool = pool
        self._before_write = before_write
        self._repair = repair
        self._conditional = ConditionalWriter(repository, pool, repair=repair)

    def write(self, records: Sequence[ImageRecord]) -> BatchResult:
        seen, result = partition(self._repository, self._pool, records, self._repair)
        to_write = [record for record, _ in seen]
        if self._before_write is not None:
            self._before_write(to_write)
        chunks = list(chunked(to_write, BATCH_WRITE_LIMIT))
        rejected: list[ImageRecord] = []
        for chunk, refused in zip(chunks, self._pool.map(self._put, chunks), strict=True):
            if refused:
                rejected.extend(chunk)
            else:
                _count_written(result.counts, chunk)
        if rejected:  # DynamoDB refused a chunk: write its rows one by one to find the bad one
            retried = self._conditional.upsert_each(rejected)
            result.counts.add(retried.counts)
            result.failures.extend(retried.failures)
        rejected_ids = {r.id for r in rejected}
        self._recheck([r for r in to_write if r.id not in rejected_ids], result)
        return result

    def _put(self, chunk: Sequence[ImageRecord]) -> bool:
        """False when written; True when DynamoDB refused the chunk (not transiently)."""
        try:
            self._repository.put_many(chunk)
        except ClientError as exc:
            if refuses_the_request(exc):
                raise
            return True
        return False

    def _recheck(self, written: Sequence[ImageRecord], result: BatchResult) -> None:
        if not written:
            return
        latest = self._source.updated_at_of([r.id for r in written])
        changed = [r.id for r in written if r.id in latest and format_time(latest[r.id]) != r.updated_at]
        for record in written:
            if record.id not in latest and self._repository.delete_if_unchanged(record.id, record.updated_at):
                result.counts.removed += 1
        for row in self._source.rows_by_id(changed):
            try:
                outcome = self._repository.upsert(row_to_record(row), self._repair).outcome
            except RowRejected as exc:
                result.fail(exc.image_id, exc.reason)
                continue
            if outcome is UpsertOutcome.CONFLICT:
                result.fail(row.id, OWNERSHIP_CONFLICT)
            elif outcome in (UpsertOutcome.UPDATED, UpsertOutcome.CREATED):
                result.counts.repaired += 1


@dataclass(frozen=True)
class BackfillOptions:
    stage: str
    checkpoint_path: Path
    batch_size: int = 500
    workers: int = 16
    write_mode: WriteMode = WriteMode.CONDITIONAL
    dry_run: bool = False
    resume: bool = False
    restart: bool = False
    retry_failures: bool = False
    progress: bool = True

    @property
    def failures_path(self) -> Path:
        return self.checkpoint_path.with_name(self.checkpoint_path.name + ".failures.jsonl")


@dataclass
class Summary:
    """One run's counts, and the whole migration's (``total``: the checkpoint's counts,
    over every run since the first row; what the exit status is decided from)."""

    counts: Counts
    elapsed: float
    peak_rss_mib: float
    failures: list[Failure]
    dry_run: bool
    started_after: Position | None
    interrupted: str | None = None
    total: Counts = field(default_factory=Counts)
    earlier_failed: int = 0  # rows failed in earlier runs (resumed runs)
    failures_path: Path | None = None
    error: str | None = None  # DynamoDB refused the requests themselves: the run stopped
    retried: int | None = None  # --retry-failures: rows taken from the failures file
    vanished: int = 0  # --retry-failures: of those, rows no longer in PostgreSQL

    @property
    def rows_per_second(self) -> float:
        return self.counts.read / self.elapsed if self.elapsed > 0 else 0.0

    def lines(self) -> list[str]:
        c = self.counts
        written = f"{c.written} (created {c.created}, updated {c.updated})"
        lines = [
            "backfill summary" + (" (dry run: nothing written)" if self.dry_run else ""),
            f"  rows read            {c.read}",
            f"  written              {'0 (would write ' + str(c.read - c.failed) + ')' if self.dry_run else written}",
            f"  skipped, older       {c.skipped_older}",
            f"  skipped, deleted     {c.skipped_deleted}",
            f"  unchanged            {c.unchanged}",
            f"  repaired             {c.repaired}",
            f"  removed (deleted)    {c.removed}",
            f"  failed               {c.failed}",
            f"  elapsed              {self.elapsed:.1f} s",
            f"  rate                 {self.rows_per_second:.0f} rows/s",
            f"  peak memory (RSS)    {self.peak_rss_mib:.1f} MiB",
        ]
        if self.started_after is not None:
            lines.insert(
                1, f"  resumed after        {self.started_after.created_at.isoformat()} {self.started_after.id}"
            )
        if self.retried is not None:
            lines[0] = "backfill summary (--retry-failures)"
            lines.insert(1, f"  retried rows         {self.retried} (no longer in PostgreSQL: {self.vanished})")
        lines += [f"  failed row {f.image_id}: {f.reason}" for f in self.failures[:MAX_LISTED_FAILURES]]
        if len(self.failures) > MAX_LISTED_FAILURES:
            lines.append(f"  ... {len(self.failures) - MAX_LISTED_FAILURES} more failed rows")
        if self.earlier_failed:
            lines.append(
                f"  failed in earlier runs {self.earlier_failed}, listed in {self.failures_path} "
                "(retry them with --retry-failures)"
            )
        if self.started_after is not None or self.retried is not None or self.earlier_failed:
            t = self.total
            lines.append(f"  whole migration      read {t.read}, written {t.written}, failed {t.failed}")
        elif self.total.failed and self.failures_path is not None and not self.dry_run:
            lines.append(f"  failed rows are listed in {self.failures_path}")
        if self.interrupted:
            lines.append(f"  stopped early: {self.interrupted}")
        if self.error:
            lines.append(f"  stopped: {self.error}")
        return lines

    def as_json(self) -> dict[str, Any]:
        return {
            **self.counts.as_dict(),
            "written": self.counts.written,
            "elapsedSeconds": round(self.elapsed, 3),
            "rowsPerSecond": round(self.rows_per_second, 1),
            "peakRssMiB": round(self.peak_rss_mib, 1),
            "dryRun": self.dry_run,
            "failures": [{"id": f.image_id, "reason": f.reason} for f in self.failures],
            "interrupted": self.interrupted,
            "error": self.error,
            "total": {**self.total.as_dict(), "written": self.total.written},
            "earlierFailed": self.earlier_failed,
            "failuresFile": str(self.failures_path) if self.failures_path else None,
            "retried": self.retried,
            "vanished": self.vanished,
        }


@dataclass(frozen=True)
class _Prepared:
    """A batch read and mapped, waiting to be written."""

    rows: list[LegacyRow]
    records: list[ImageRecord]
    rejected: list[Failure]


def _prepare(rows: list[LegacyRow]) -> _Prepared:
    records: list[ImageRecord] = []
    rejected: list[Failure] = []
    for row in rows:
        try:
            records.append(row_to_record(row))
        except RowRejected as exc:
            rejected.append(Failure(exc.image_id, exc.reason))
    return _Prepared(rows=rows, records=records, rejected=rejected)


_READ_AHEAD = 2  # batches read and mapped ahead of the one being written


def peak_rss_mib() -> float:
    """This process's peak resident set size (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Backfill:
    def __init__(
        self,
        source: LegacySource,
        table: StageTable | None,
        options: BackfillOptions,
        before_write: Callable[[Sequence[ImageRecord]], None] | None = None,
    ) -> None:
        if table is None and not options.dry_run:
            raise ValueError("a backfill that writes needs the stage's table")
        self._source = source
        self._table = table
        self._options = options
        self._before_write = before_write

    def _start(self) -> Checkpoint:
        options = self._options
        table_name = self._table.table_name if self._table else "(dry run)"
        saved = checkpoints.load(options.checkpoint_path)
        if saved is not None and not options.dry_run and not (options.resume or options.restart):
            where = f"{saved.position.created_at.isoformat()} {saved.position.id}" if saved.position else "the start"
            raise MigrationError(
                f"checkpoint {options.checkpoint_path} exists ({saved.rows_committed} rows committed, up to {where}); "
                "pass --resume to continue from it or --restart to start over"
            )
        if saved is None or options.restart or not options.resume:
            fresh = Checkpoint(stage=options.stage, table=table_name)
            if not options.dry_run:
                # From the first row again: the failures of earlier runs are not this
                # migration's any more (the file is appended to, batch by batch), and the
                # old checkpoint goes with them, so that a --resume after this run stops
                # early continues this run, not the old one.
                options.failures_path.unlink(missing_ok=True)
                if saved is not None:
                    checkpoints.save(options.checkpoint_path, fresh)
            return fresh
        self._check_owner(saved, table_name)
        return saved

    def _check_owner(self, saved: Checkpoint, table_name: str) -> None:
        options = self._options
        if self._table is not None and (saved.stage, saved.table) != (options.stage, table_name):
            raise MigrationError(
                f"checkpoint {options.checkpoint_path} belongs to stage {saved.stage!r} table {saved.table!r}, "
                f"not {options.stage!r} {table_name!r}"
            )

    def run(self) -> Summary:
        if self._options.retry_failures:
            return self._retry_failures()
        options = self._options
        state = self._start()
        started_after = state.position
        earlier_failed = Counts.from_dict(state.counts).failed
        error: str | None = None
        counts = Counts()
        failures: list[Failure] = []
        began = time.monotonic()
        interrupted: str | None = None
        remaining = self._source.count_after(state.position)
        progress = tqdm(
            total=remaining,
            unit="rows",
            unit_scale=True,
            smoothing=0.05,
            mininterval=0.5,
            disable=not options.progress,
            file=sys.stderr,
            desc="dry run" if options.dry_run else f"backfill {options.stage}",
        )
        pool = ThreadPoolExecutor(max_workers=options.workers, thread_name_prefix="backfill")
        writer = self._writer(pool)
        # The next batches are read and mapped while this one is written; the queue is
        # bounded, so memory stays flat whatever the table size.
        batches: queue.Queue[_Prepared | BaseException | None] = queue.Queue(maxsize=_READ_AHEAD)
        stop = threading.Event()
        reader = threading.Thread(
            target=self._read, args=(state.position, batches, stop), name="backfill-reader", daemon=True
        )
        reader.start()
        try:
            while (batch := batches.get()) is not None:
                if isinstance(batch, BaseException):
                    raise batch
                result = self._write(batch, writer)
                counts.add(result.counts)
                failures.extend(result.failures)
                last = batch.rows[-1]
                state.position = Position(created_at=last.created_at, id=last.id)
                state.rows_committed += len(batch.rows)
                merged = Counts.from_dict(state.counts)
                merged.add(result.counts)
                state.counts = merged.as_dict()
                if not options.dry_run:
                    self._record_failures(result.failures)
                    checkpoints.save(options.checkpoint_path, state)
                progress.update(len(batch.rows))
        except TransientFailure as exc:
            interrupted = (
                f"DynamoDB kept failing ({exc.message}); {state.rows_committed} rows are committed, "
                "run again with --resume"
            )
        except KeyboardInterrupt:
            interrupted = f"interrupted; {state.rows_committed} rows are committed, run again with --resume"
        except ClientError as exc:  # not transient, and not about one row (those are failed rows)
            error = _refusal(exc, f"{state.rows_committed} rows are committed")
        except psycopg.Error as exc:
            raise MigrationError(f"reading {TABLE} failed: {str(exc).strip().splitlines()[0]}") from exc
        finally:
            stop.set()
            progress.close()
            pool.shutdown(wait=True, cancel_futures=True)
        return Summary(
            counts=counts,
            elapsed=time.monotonic() - began,
            peak_rss_mib=peak_rss_mib(),
            failures=failures,
            dry_run=options.dry_run,
            started_after=started_after,
            interrupted=interrupted,
            total=Counts.from_dict(state.counts),
            earlier_failed=earlier_failed,
            failures_path=options.failures_path,
            error=error,
        )

    def _retry_failures(self) -> Summary:
        """Write again exactly the rows of the failures file, read afresh from PostgreSQL,
        then replace the file with the rows that still fail (atomically, only when every
        row was tried) and the checkpoint's ``failed`` count with their number. The
        checkpoint's position does not move."""
        options = self._options
        table_name = self._table.table_name if self._table else "(dry run)"
        saved = checkpoints.load(options.checkpoint_path)
        if saved is not None:
            self._check_owner(saved, table_name)
        state = saved or Checkpoint(stage=options.stage, table=table_name)
        earlier_failed = Counts.from_dict(state.counts).failed
        image_ids = read_failed_ids(options.failures_path)
        counts = Counts()
        failures: list[Failure] = []
        began = time.monotonic()
        interrupted: str | None = None
        error: str | None = None
        vanished = 0
        pool = ThreadPoolExecutor(max_workers=options.workers, thread_name_prefix="backfill")
        writer = self._writer(pool)
        try:
            for chunk in chunked(image_ids, options.batch_size):
                rows = self._source.rows_by_id(chunk)
                vanished += len(chunk) - len(rows)  # deleted since: nothing left to migrate
                result = self._write(_prepare(rows), writer)
                counts.add(result.counts)
                failures.extend(result.failures)
        except TransientFailure as exc:
            interrupted = f"DynamoDB kept failing ({exc.message}); the failures file is unchanged, retry again"
        except KeyboardInterrupt:
            interrupted = "interrupted; the failures file is unchanged, retry again"
        except ClientError as exc:
            error = _refusal(exc, "the failures file is unchanged", again="--retry-failures")
        except psycopg.Error as exc:
            raise MigrationError(f"reading {TABLE} failed: {str(exc).strip().splitlines()[0]}") from exc
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        total = Counts.from_dict(state.counts)
        if interrupted is None and error is None:
            replace_failures(options.failures_path, failures)
            for name in ("created", "updated", "unchanged", "skipped_older", "skipped_deleted", "repaired", "removed"):
                setattr(total, name, getattr(total, name) + getattr(counts, name))
            total.failed = len({f.image_id for f in failures})
            state.counts = total.as_dict()
            if saved is not None:
                checkpoints.save(options.checkpoint_path, state)
        return Summary(
            counts=counts,
            elapsed=time.monotonic() - began,
            peak_rss_mib=peak_rss_mib(),
            failures=failures,
            dry_run=False,
            started_after=None,
            interrupted=interrupted,
            total=total,
            earlier_failed=0 if interrupted is None and error is None else earlier_failed,
            failures_path=options.failures_path,
            error=error,
            retried=len(image_ids),
            vanished=vanished,
        )

    def _read(
        self,
        position: Position | None,
        batches: queue.Queue[_Prepared | BaseException | None],
        stop: threading.Event,
    ) -> None:
        """The reader thread: stream, map, and hand over batches in order."""
        try:
            for rows in self._source.stream_after(position, self._options.batch_size):
                prepared = _prepare(rows)
                while not stop.is_set():
                    try:
                        batches.put(prepared, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            batches.put(None)
        except BaseException as exc:  # handed to the main thread, which raises it
            batches.put(exc)

    def _writer(self, pool: ThreadPoolExecutor) -> ConditionalWriter | GuardedBatchWriter | None:
        if self._options.dry_run or self._table is None:
            return None
        repository = BatchImportRepository(self._table.client, self._table.table_name, backfill_retrying())
        # The repairing runs: a same-millisecond difference is written too (``partition``).
        repair = self._options.restart or self._options.retry_failures
        if self._options.write_mode is WriteMode.BATCH:
            return GuardedBatchWriter(repository, self._source, pool, self._before_write, repair)
        return ConditionalWriter(repository, pool, self._before_write, repair)

    def _write(self, batch: _Prepared, writer: ConditionalWriter | GuardedBatchWriter | None) -> BatchResult:
        result = BatchResult()
        result.counts.read = len(batch.rows)
        for failure in batch.rejected:
            result.fail(failure.image_id, failure.reason)
        if writer is not None and batch.records:
            written = writer.write(batch.records)
            result.counts.add(written.counts)
            result.failures.extend(written.failures)
        return result

    def _record_failures(self, failures: Sequence[Failure]) -> None:
        if not failures:
            return
        with self._options.failures_path.open("a") as handle:
            for failure in failures:
                handle.write(json.dumps({"id": failure.image_id, "reason": failure.reason}) + "\n")


def read_failed_ids(path: Path) -> list[str]:
    """The ids of the failures file, each once, in the order they failed (a batch whose
    checkpoint a crash prevented is written, and its failures listed, twice)."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return []
    ids: dict[str, None] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            ids[str(json.loads(line)["id"])] = None
        except (ValueError, KeyError, TypeError) as exc:
            raise MigrationError(f"{path} line {number} is not a failure record ({exc})") from exc
    return list(ids)


def replace_failures(path: Path, failures: Sequence[Failure]) -> None:
    """The failures file, replaced atomically by ``failures`` (removed when there are none)."""
    if not failures:
        path.unlink(missing_ok=True)
        return
    checkpoints.replace_file(path, "".join(json.dumps({"id": f.image_id, "reason": f.reason}) + "\n" for f in failures))


def _refusal(exc: ClientError, committed: str, again: str = "--resume") -> str:
    """One line for a request DynamoDB refused for the caller's sake (AccessDenied,
    ExpiredToken, ...): no row is to blame, so the run stops before its checkpoint moves."""
    error = exc.response.get("Error", {})
    message = " ".join(str(error.get("Message", "")).split())[:200]
    operation = getattr(exc, "operation_name", "a request")
    return (
        f"DynamoDB refused {operation}: {error.get('Code', '?')}: {message} (not about one row: the run stopped "
        f"before the batch's checkpoint; {committed}); fix the credentials or permissions, then run again with {again}"
    )
