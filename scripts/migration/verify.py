"""The verification behind ``scripts/verify_migration.py``: every row (or a random
sample) of ``gallery_images`` against its DynamoDB record, field by field."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from chalicelib.models.domain import ImageRecord
from chalicelib.repositories.imports import ImportRepository
from scripts.migration.backfill import backfill_retrying
from scripts.migration.legacy import LegacyRow, LegacySource, RowRejected, row_to_record
from scripts.migration.stage import StageTable

# Every field a legacy row determines (``version`` and ``uploadedAt`` are the service's).
COMPARED_FIELDS: tuple[str, ...] = (
    "user_id",
    "status",
    "album_id",
    "title",
    "description",
    "tags",
    "original_filename",
    "content_type",
    "file_size",
    "legacy_image_key",
    "legacy_thumbnail_key",
    "width",
    "height",
    "created_at",
    "updated_at",
)
BATCH = 100


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
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return not (self.missing or self.mismatched or self.unmappable)

    @property
    def differing_ids(self) -> list[str]:
        return self.missing + [m["id"] for m in self.mismatched] + [u["id"] for u in self.unmappable]

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
            "elapsedSeconds": round(self.elapsed, 3),
        }


def compare(expected: ImageRecord, actual: ImageRecord) -> dict[str, dict[str, Any]]:
    """The fields that differ, each with what PostgreSQL says and what DynamoDB holds."""
    differences = {
        name: {"expected": getattr(expected, name), "actual": getattr(actual, name)}
        for name in COMPARED_FIELDS
        if getattr(expected, name) != getattr(actual, name)
    }
    if actual.deleted_at is not None:
        differences["deleted_at"] = {"expected": None, "actual": actual.deleted_at}
    return {name: {k: _plain(v) for k, v in values.items()} for name, values in differences.items()}


def _plain(value: Any) -> Any:
    return value.value if hasattr(value, "value") else value


class Verification:
    def __init__(self, source: LegacySource, table: StageTable, sample: int | None, progress: bool = True) -> None:
        self._source = source
        self._table = table
        self._sample = sample
        self._progress = progress
        self._repository = ImportRepository(table.client, table.table_name, backfill_retrying())

    def _batches(self) -> Iterator[list[LegacyRow]]:
        if self._sample is not None:
            return self._source.sample(self._sample, BATCH)
        return self._source.stream_after(None, BATCH)

    def run(self, on_difference: Callable[[str], None] | None = None) -> VerifyReport:
        report = VerifyReport(stage=self._table.stage, table=self._table.table_name, sample=self._sample)
        began = time.monotonic()
        total = self._sample if self._sample is not None else self._source.count_after(None)
        with tqdm(
            total=total, unit="rows", unit_scale=True, disable=not self._progress, file=sys.stderr, desc="verify"
        ) as progress:
            for rows in self._batches():
                self._check(rows, report, on_difference)
                progress.update(len(rows))
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


def write_report(path: Path, report: VerifyReport) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.as_json(), indent=2, default=str) + "\n")
