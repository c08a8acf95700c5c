"""The verification behind ``scripts/verify_migration.py``: every row (or a random
sample) of ``gallery_images`` against its DynamoDB record, field by field; then (full
runs) every imported record of the table against ``gallery_images``, so a record whose
row is gone is a difference too."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from botocore.exceptions import ClientError
from tqdm import tqdm

from chalicelib.errors import TransientFailure
from chalicelib.models.domain import ImageRecord
from chalicelib.repositories.imports import ROW_FIELDS
from migration.backfill import backfill_retrying
from migration.batch_repository import BatchImportRepository
from migration.errors import MigrationError
from migration.legacy import TABLE, LegacyRow, LegacySource, RowRejected, row_to_record
from migration.stage import StageTable

# Every field a legacy row determines: the backfill's content digest covers the same ones.
COMPARED_FIELDS: tuple[str, ...] = ROW_FIELDS
BATCH = 100
SCAN_SEGMENTS = 4  # parallel Scan segments of the orphan scan


@dataclass
class VerifyReport:
    stage: str
    table: str
    sample: int | None
    checked: int = 0
    matched: int = 0
    missing: list[str] = field(default_factory=list)
    mismatched: list[dict[str, Any]] = field(default_factory=list)
    unmappable: list[dict[str, str]] = field(default_factory=list)
    # Rows whose image was deleted through the Image Service (the row is still there).
    deleted: list[str] = field(default_factory=list)
    # Live imported records with no gallery_images row; None when not scanned (--sample).
    orphaned: list[str] | None = None
    imported_scanned: int = 0
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return not (self.missing or self.mismatched or self.unmappable or self.deleted or self.orphaned)

    @property
    def differing_ids(self) -> list[str]:
        return (
            self.missing
            + [m["id"] for m in self.mismatched]
            + [u["id"] for u in self.unmappable]
            + self.deleted
            + (self.orphaned or [])
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "table": self.table,
            "sample": self.sample,
            "checked": self.checked,
            "matched": self.matched,
            "ok": self.ok,
            "missing": self.missing,
            "mismatched": self.mismatched,
            "unmappable": self.unmappable,
            "deleted": self.deleted,
            "orphaned": self.orphaned,
            "importedScanned": self.imported_scanned,
            "elapsedSeconds": round(self.elapsed, 3),
        }


def compare(expected: ImageRecord, actual: ImageRecord) -> dict[str, dict[str, Any]]:
    """The fields that differ, each with what PostgreSQL says and what DynamoDB holds."""
    differences = {
        name: {"expected": getattr(expected, name), "actual": getattr(actual, name)}
        for name in COMPARED_FIELDS
        if getattr(expected, name) != getattr(actual, name)
    }
    return {name: {k: _plain(v) for k, v in values.items()} for name, values in differences.items()}


def _plain(value: Any) -> Any:
    return value.value if hasattr(value, "value") else value


class Verification:
    def __init__(
        self,
        source: LegacySource,
        table: StageTable,
        sample: int | None,
        progress: bool = True,
        scan_segments: int = SCAN_SEGMENTS,
    ) -> None:
        self._source = source
        self._table = table
        self._sample = sample
        self._progress = progress
        self._segments = scan_segments
        self._repository = BatchImportRepository(table.client, table.table_name, backfill_retrying())

    def _batches(self) -> Iterator[list[LegacyRow]]:
        if self._sample is not None:
            return self._source.sample(self._sample, BATCH)
        return self._source.stream_after(None, BATCH)

    def run(self, on_difference: Callable[[str], None] | None = None) -> VerifyReport:
        """The report; a DynamoDB or PostgreSQL problem that stops the verification is a
        one-line ``MigrationError`` (exit status 2), never a difference (1)."""
        try:
            return self._run(on_difference)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            message = " ".join(str(error.get("Message", "")).split())[:200]
            operation = getattr(exc, "operation_name", "a request")
            raise MigrationError(
                f"DynamoDB refused {operation}: {error.get('Code', '?')}: {message}; the verification stopped "
                "(fix the credentials or permissions and run it again)"
            ) from exc
        except TransientFailure as exc:
            raise MigrationError(f"DynamoDB kept failing ({exc.message}); run the verification again") from exc
        except psycopg.Error as exc:
            raise MigrationError(f"reading {TABLE} failed: {str(exc).strip().splitlines()[0]}") from exc

    def _run(self, on_difference: Callable[[str], None] | None) -> VerifyReport:
        report = VerifyReport(stage=self._table.stage, table=self._table.table_name, sample=self._sample)
        began = time.monotonic()
        total = self._sample if self._sample is not None else self._source.count_after(None)
        with tqdm(
            total=total, unit="rows", unit_scale=True, disable=not self._progress, file=sys.stderr, desc="verify"
        ) as progress:
            for rows in self._batches():
                self._check(rows, report, on_difference)
                progress.update(len(rows))
        if self._sample is None:  # a sample says nothing about the records without a row
            report.orphaned = []
            self._find_orphans(report, on_difference)
        report.elapsed = time.monotonic() - began
        return report

    def _check(
        self, rows: Sequence[LegacyRow], report: VerifyReport, on_difference: Callable[[str], None] | None
    ) -> None:
        expected: dict[str, ImageRecord] = {}
        for row in rows:
            try:
                expected[row.id] = row_to_record(row)
            except RowRejected as exc:
                report.unmappable.append({"id": exc.image_id, "reason": exc.reason})
                if on_difference:
                    on_difference(f"UNMAPPABLE {exc.image_id}: {exc.reason}")
        stored = self._repository.get_many(list(expected), (*COMPARED_FIELDS, "deleted_at"))
        report.checked += len(rows)
        for image_id, record in expected.items():
            actual = stored.get(image_id)
            if actual is None:
                report.missing.append(image_id)
                if on_difference:
                    on_difference(f"MISSING {image_id}")
                continue
            if actual.deleted_at is not None:
                report.deleted.append(image_id)
                if on_difference:
                    on_difference(
                        f"DELETED {image_id}: deleted through the Image Service at {actual.deleted_at}, "
                        "but the gallery_images row is still there"
                    )
                continue
            differences = compare(record, actual)
            if differences:
                report.mismatched.append({"id": image_id, "fields": differences})
                if on_difference:
                    described = "; ".join(
                        f"{name}: expected {d['expected']!r}, found {d['actual']!r}" for name, d in differences.items()
                    )
                    on_difference(f"MISMATCH {image_id}: {described}")
            else:
                report.matched += 1

    def _find_orphans(self, report: VerifyReport, on_difference: Callable[[str], None] | None) -> None:
        """A parallel Scan of the live imported records (``scan_segments`` segments, one
        page in flight each); each page's ids are looked up in PostgreSQL (latest
        committed data), and those without a row are read again, strongly consistent,
        before they are reported (the Scan is eventually consistent)."""
        segments = self._segments
        repository = self._repository
        with (
            ThreadPoolExecutor(max_workers=segments, thread_name_prefix="verify-scan") as pool,
            tqdm(unit="records", disable=not self._progress, file=sys.stderr, desc="imported records") as progress,
        ):
            pending: dict[Future[tuple[list[str], dict[str, Any] | None]], int] = {
                pool.submit(repository.imported_ids_page, segment, segments, None): segment
                for segment in range(segments)
            }
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    segment = pending.pop(future)
                    ids, last = future.result()
                    if last is not None:
                        pending[pool.submit(repository.imported_ids_page, segment, segments, last)] = segment
                    report.imported_scanned += len(ids)
                    progress.update(len(ids))
                    self._orphans(ids, report, on_difference)

    def _orphans(self, ids: Sequence[str], report: VerifyReport, on_difference: Callable[[str], None] | None) -> None:
        if not ids:
            return
        present = self._source.updated_at_of(ids)
        candidates = [image_id for image_id in ids if image_id not in present]
        if not candidates:
            return
        stored = self._repository.stored_versions(candidates)
        for image_id in candidates:
            current = stored.get(image_id)
            if current is None or current.deleted or not current.imported:
                continue  # deleted meanwhile: not an orphan
            assert report.orphaned is not None
            report.orphaned.append(image_id)
            if on_difference:
                on_difference(f"ORPHAN {image_id}: an imported record with no gallery_images row")


def write_report(path: Path, report: VerifyReport) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.as_json(), indent=2, default=str) + "\n")
