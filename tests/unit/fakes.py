"""In-memory stand-ins for the AWS adapters, for unit tests (no IO at all).

Each fake subclasses the real adapter so mypy checks that it keeps the same method
signatures; every method the services use is overridden, and none touches a client.
Conditional writes are simulated atomically under one lock, with the same conditions
as the DynamoDB expressions in ``chalicelib.repositories.images``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.errors import ConditionFailed, TransientFailure
from chalicelib.models.common import ImageStatus, format_time, parse_time
from chalicelib.models.domain import LADDER_BOXES, IdempotencyRecord, ImageRecord, ProcessingOutcome, WebhookRecord
from chalicelib.models.responses import ImageEvent
from chalicelib.repositories.duplicates import CANDIDATES_PER_BUCKET, Candidate, DuplicateIndex
from chalicelib.repositories.events import EventPublisher
from chalicelib.repositories.images import (
    DELETE_FINISH_DELAY,
    EXPIRED_MESSAGE,
    OUTCOME_FIELDS,
    RERENDER_FIELDS,
    STALLED_CODE,
    STALLED_MESSAGE,
    IdempotencyKeyTaken,
    ImageQueries,
    ImageRepository,
    Page,
    TransactionConflict,
    WriteRejected,
    record_to_item,
    sweep_due,
)
from chalicelib.repositories.keys import phash_partition, phash_sort, phash_sort_image_id, sweep_partition
from chalicelib.repositories.queue import UploadQueue
from chalicelib.repositories.storage import ObjectStore, UploadForm
from chalicelib.repositories.webhooks import SubscribeRefused, SubscriptionGateway, SubscriptionState, WebhookRepository
from chalicelib.settings import Settings
from processors import EncodedImage, ImageRejected, Limits, ProcessedImage

UPLOAD_BUCKET = "uploads-unit"
IMAGE_BUCKET = "images-unit"
CDN = "https://cdn.example.test"
SECRET = "unit-test-secret-that-is-long-enough-0123456789"
SNS_ALREADY_EXISTS = "Invalid parameter: Attributes Reason: Subscription already exists with different attributes"


def unit_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "stage": "local",
        "auth_mode": "local",
        "local_jwt_secret": SECRET,
        "cursor_secret": "cursor-" + SECRET,
        "upload_bucket": UPLOAD_BUCKET,
        "image_bucket": IMAGE_BUCKET,
        "image_base_url": CDN,
    }
    values.update(overrides)
    return Settings(**values)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 3, 14, 9, 26, 53, 589000, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now = self.now + timedelta(**delta)
        return self.now


class Ids:
    """Deterministic ULID-shaped ids: 01J0...01, 01J0...02, ..."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.issued: list[str] = []

    def __call__(self) -> str:
        with self._lock:
            value = f"01J{len(self.issued) + 1:023d}"
            self.issued.append(value)
            return value


class FakeImageRepository(ImageRepository):
    """Image records and Idempotency-Keys in dicts; every write is atomic and conditional.

    The table's indexes are modelled as the items' key attributes would place a record in
    them: the user index (GSI1, and GSI2 for a record with an album) until its delete
    begins, and the sparse sweep index (GSI3), whose partition and sort key each write sets
    or removes exactly as the update expressions of the real repository do.
    ``tests/contract`` runs the same cases against both.
    """

    def __init__(self, *, before_create: Callable[[], object] | None = None) -> None:
        # The real __init__ only stores a client; the fake has none on purpose.
        self.records: dict[str, ImageRecord] = {}
        self.keys: dict[tuple[str, str], IdempotencyRecord] = {}
        self.create_calls = 0
        self.fail_mark_published = 0  # how many mark_event_published calls fail first
        self.listed: set[str] = set()  # records with the user index keys (GSI1PK/GSI1SK)
        self.sweep_partitioned: set[str] = set()  # records with GSI3PK
        self.sweep_sort: dict[str, str] = {}  # GSI3SK: when the sweep looks at the record
        self.purged: set[str] = set()  # tombstones of imported images whose delete finished
        self._before_create = before_create
        self._lock = threading.Lock()

    # -- reads ---------------------------------------------------------------------

    def get(self, image_id: str) -> ImageRecord | None:
        with self._lock:
            return self.records.get(image_id)

    def get_idempotency(self, user_id: str, key: str) -> IdempotencyRecord | None:
        with self._lock:
            return self.keys.get((user_id, key))

    def put(self, record: ImageRecord) -> None:
        """Test setup: store a record as it is, with the index keys ``record_to_item`` gives it."""
        with self._lock:
            self._store_new(record)

    def due_for_sweep(self, partition: str, now: str, limit: int) -> list[ImageRecord]:
        with self._lock:
            due = sorted(
                (self.sweep_sort[image_id], image_id)
                for image_id in self.sweep_partitioned
                if image_id in self.records
                and image_id in self.sweep_sort
                and sweep_partition(image_id) == partition
                and self.sweep_sort[image_id] <= now
            )
            return [self.records[image_id] for _, image_id in due[:limit]]

    def in_sweep_index(self, image_id: str) -> str | None:
        """The record's due time in the sweep index, or None when it is not in it."""
        with self._lock:
            if image_id in self.sweep_partitioned and image_id in self.records:
                return self.sweep_sort.get(image_id)
            return None

    # -- writes --------------------------------------------------------------------

    def create(self, record: ImageRecord, idempotency: IdempotencyRecord | None, now_epoch: int) -> None:
        if self._before_create is not None:
            self._before_create()
        with self._lock:
            self.create_calls += 1
            if idempotency is not None:
                existing = self.keys.get((idempotency.user_id, idempotency.key))
                # attribute_not_exists(PK) OR ttl < :now
                if existing is not None and not existing.expires_at_epoch < now_epoch:
                    raise IdempotencyKeyTaken(existing)
                if record.id in self.records:
                    raise TransactionConflict()  # the image's condition cancelled the transaction
                self.keys[(idempotency.user_id, idempotency.key)] = idempotency
            elif record.id in self.records:
                raise ConditionFailed(record.id)
            self._store_new(record)

    def refresh_upload_window(self, image_id: str, expires_at: str, now: str) -> ImageRecord:
        return self._apply(
            image_id,
            (ImageStatus.PENDING,),
            {"upload_expires_at": expires_at, "updated_at": now},
            sweep_sort=expires_at,
        )

    def start_processing(self, image_id: str, now: str, deadline: str) -> ImageRecord:
        with self._lock:
            current = self.records.get(image_id)
            uploaded_at = current.uploaded_at if current is not None and current.uploaded_at else now
            return self._apply_locked(
                image_id,
                (ImageStatus.PENDING, ImageStatus.PROCESSING),
                {"status": ImageStatus.PROCESSING, "updated_at": now, "uploaded_at": uploaded_at},
                sweep=deadline,
            )

    def finish_processing(self, image_id: str, outcome: ProcessingOutcome, event_id: str, now: str) -> ImageRecord:
        values = _terminal(outcome.status, event_id, now, outcome.error_code, outcome.error_message)
        values.update({name: getattr(outcome, name) for name in OUTCOME_FIELDS})
        # ``version`` counts metadata edits (PATCH), not processing.
        return self._apply(image_id, (ImageStatus.PROCESSING,), values, sweep=now)

    def switch_renditions(self, image_id: str, outcome: ProcessingOutcome) -> ImageRecord:
        target = outcome.rendition_version
        assert target is not None
        return self._apply(
            image_id,
            (ImageStatus.COMPLETED,),
            {name: getattr(outcome, name) for name in RERENDER_FIELDS}
            | {"rerender_error": None, "rerender_error_at": None},
            condition=lambda current: current.rendition_version is None or current.rendition_version < target,
        )

    def mark_rerender_error(self, image_id: str, code: str, now: str) -> ImageRecord:
        return self._apply(image_id, (ImageStatus.COMPLETED,), {"rerender_error": code, "rerender_error_at": now})

    def expire(self, image_id: str, event_id: str, closed_before: str, now: str) -> ImageRecord:
        values = _terminal(ImageStatus.EXPIRED, event_id, now, "upload_expired", EXPIRED_MESSAGE)
        return self._apply(
            image_id,
            (ImageStatus.PENDING,),
            values,
            sweep=now,
            # uploadExpiresAt < :closedBefore (false when the record has none)
            condition=lambda r: r.upload_expires_at is not None and r.upload_expires_at < closed_before,
        )

    def fail_stalled(self, image_id: str, event_id: str, now: str) -> ImageRecord:
        values = _terminal(ImageStatus.FAILED, event_id, now, STALLED_CODE, STALLED_MESSAGE)
        return self._apply(
            image_id,
            (ImageStatus.PROCESSING,),
            values,
            sweep=now,
            # GSI3SK <= :now: an attempt that started again moved the deadline on (and a
            # record with no deadline at all has none that passed).
            condition=lambda r: self.sweep_sort.get(r.id) is not None and self.sweep_sort[r.id] <= now,
        )

    def postpone_sweep(self, image_id: str, due: str) -> ImageRecord:
        return self._apply(image_id, (ImageStatus.PENDING,), {}, sweep_sort=due)

    def mark_event_published(self, image_id: str, event_id: str) -> None:
        with self._lock:
            if self.fail_mark_published > 0:
                self.fail_mark_published -= 1
                raise TransientFailure("simulated crash before the record says 'published'")
            current = self.records.get(image_id)
            # eventId = :event AND attribute_not_exists(deletedAt)
            if current is None or current.event_id != event_id or current.deleted_at is not None:
                raise ConditionFailed(image_id)
            self.records[image_id] = current.model_copy(update={"event_published": True})
            self._leave_sweep_index(image_id)

    # -- the table's state ---------------------------------------------------------

    def _store_new(self, record: ImageRecord) -> None:
        self.records[record.id] = record
        self.listed.add(record.id)
        self.purged.discard(record.id)
        self._leave_sweep_index(record.id)
        due = sweep_due(record)
        if due is not None:
            self.sweep_partitioned.add(record.id)
            self.sweep_sort[record.id] = due

    def _leave_sweep_index(self, image_id: str) -> None:
        self.sweep_partitioned.discard(image_id)
        self.sweep_sort.pop(image_id, None)

    def _apply(
        self,
        image_id: str,
        expected: Iterable[ImageStatus],
        values: dict[str, Any],
        *,
        sweep: str | None = None,
        sweep_sort: str | None = None,
        condition: Callable[[ImageRecord], bool] | None = None,
    ) -> ImageRecord:
        with self._lock:
            return self._apply_locked(
                image_id, expected, values, sweep=sweep, sweep_sort=sweep_sort, condition=condition
            )

    def _apply_locked(
        self,
        image_id: str,
        expected: Iterable[ImageStatus],
        values: dict[str, Any],
        *,
        sweep: str | None = None,
        sweep_sort: str | None = None,
        condition: Callable[[ImageRecord], bool] | None = None,
    ) -> ImageRecord:
        """One conditional update. ``sweep`` sets both sweep index keys (the record is due
        then); ``sweep_sort`` sets only the sort key (GSI3SK), as the expressions that set
        only that attribute do, so a record without a partition stays out of the index."""
        current = self.records.get(image_id)
        # attribute_exists(PK) AND attribute_not_exists(deletedAt) AND #status IN (...) [AND ...]
        if (
            current is None
            or current.deleted_at is not None
            or current.status not in tuple(expected)
            or (condition is not None and not condition(current))
        ):
            raise ConditionFailed(image_id)
        updated = current.model_copy(update=values)
        self.records[image_id] = updated
        if sweep is not None:
            self.sweep_partitioned.add(image_id)
            self.sweep_sort[image_id] = sweep
        if sweep_sort is not None:
            self.sweep_sort[image_id] = sweep_sort
        return updated


def _terminal(
    status: ImageStatus, event_id: str, now: str, error_code: str | None, error_message: str | None
) -> dict[str, Any]:
    """What every terminal transition writes (the event not yet published, the error if any)."""
    return {
        "status": status,
        "updated_at": now,
        "event_id": event_id,
        "event_occurred_at": now,
        "event_published": False,
        "error_code": error_code,
        "error_message": error_message,
    }


# What a purged tombstone no longer keeps (``ImageQueries.finish_delete``), as record fields.
_DROPPED_ON_PURGE = (
    "title",
    "description",
    "tags",
    "album_id",
    "width",
    "height",
    "placeholder",
    "legacy_thumbnail_key",
    "uploaded_at",
    "upload_expires_at",
    "error_code",
    "error_message",
    "event_id",
    "event_occurred_at",
    "renditions",
    "rendition_version",
    "thumbhash",
    "dominant_color",
    "perceptual_hash",
    "duplicate_of",
)


def _cleared(name: str) -> Any:
    """The value a record field reads as once its attribute is removed: its default."""
    return ImageRecord.model_fields[name].get_default(call_default_factory=True)


def _index_position(record: ImageRecord, index: str) -> dict[str, Any]:
    """The LastEvaluatedKey DynamoDB gives for ``record`` on ``index``: the table's keys and the index's."""
    item = record_to_item(record)
    return {name: item[name] for name in ("PK", "SK", f"{index}PK", f"{index}SK")}


def _order(position: Mapping[str, Any], index: str) -> tuple[str, str, str]:
    # An index sorts by its sort key, then (for equal ones) by the table's keys.
    return (position[f"{index}SK"]["S"], position["PK"]["S"], position["SK"]["S"])


class FakeImageQueries(ImageQueries):
    """Listing and metadata writes over a ``FakeImageRepository``'s records and indexes,
    with the conditions of the real ``ImageQueries``."""

    def __init__(self, images: FakeImageRepository) -> None:
        # The real __init__ only stores a client; the fake has none on purpose.
        self._images = images

    def list_for_user(self, user_id: str, limit: int, start: dict[str, Any] | None, album_id: str | None) -> Page:
        repo = self._images
        index = "GSI1" if album_id is None else "GSI2"
        with repo._lock:
            members = [
                repo.records[image_id]
                for image_id in repo.listed
                if image_id in repo.records
                and repo.records[image_id].user_id == user_id
                and (album_id is None or repo.records[image_id].album_id == album_id)
            ]
        positions = sorted(
            ((_index_position(r, index), r) for r in members), key=lambda pair: _order(pair[0], index), reverse=True
        )
        if start is not None:  # newest first: everything after the start key sorts before it
            positions = [pair for pair in positions if _order(pair[0], index) < _order(start, index)]
        page = positions[:limit]
        # Like moto, a key only when more items follow (DynamoDB may also give one for a
        # page that ends exactly at the last item; the service then serves an empty page).
        last_key = page[-1][0] if len(positions) > limit else None
        return Page(records=[r for _, r in page], last_key=last_key)

    def update_metadata(
        self, image_id: str, user_id: str, changes: Mapping[str, Any], expected_version: int, now: str
    ) -> ImageRecord:
        repo = self._images
        with repo._lock:
            current = repo.records.get(image_id)
            # attribute_exists(PK) AND attribute_not_exists(deletedAt) AND userId = :me AND version = :expected
            if (
                current is None
                or current.deleted_at is not None
                or current.user_id != user_id
                or current.version != expected_version
            ):
                raise WriteRejected(current)
            update = {name: _cleared(name) if value is None else value for name, value in changes.items()}
            updated = current.model_copy(update={**update, "version": current.version + 1, "updated_at": now})
            repo.records[image_id] = updated
            return updated

    def begin_delete(self, image_id: str, user_id: str, now: str) -> ImageRecord:
        repo = self._images
        with repo._lock:
            current = repo.records.get(image_id)
            # attribute_exists(PK) AND attribute_not_exists(purged) AND userId = :me
            if current is None or image_id in repo.purged:
                raise WriteRejected(None)
            if current.user_id != user_id:
                raise WriteRejected(current)
            updated = current.model_copy(update={"deleted_at": current.deleted_at or now})
            repo.records[image_id] = updated
            repo.listed.discard(image_id)
            repo.sweep_partitioned.add(image_id)
            repo.sweep_sort[image_id] = format_time(parse_time(now) + DELETE_FINISH_DELAY)
            return updated

    def finish_delete(self, image_id: str) -> None:
        repo = self._images
        with repo._lock:
            current = repo.records.get(image_id)
            if current is None or current.deleted_at is None:
                return  # already gone, or not being deleted
            repo.listed.discard(image_id)
            repo._leave_sweep_index(image_id)
            if current.legacy_image_key is None:
                del repo.records[image_id]
                return
            # An imported image: a purged tombstone, so no import re-creates it.
            update = {name: _cleared(name) for name in _DROPPED_ON_PURGE}
            repo.records[image_id] = current.model_copy(update={**update, "original_filename": ""})
            repo.purged.add(image_id)


class FakeDuplicateIndex(DuplicateIndex):
    """Bucket items and back-references in dicts, read as the real Queries read them.

    ``images`` is the fake table's records, so ``repoint`` sees the same records as the
    repository does (one table in DynamoDB).
    """

    def __init__(self, images: FakeImageRepository) -> None:
        self.buckets: dict[str, dict[str, str]] = {}  # partition -> sort -> perceptual hash
        self.back: dict[str, set[str]] = {}  # target id -> duplicate ids
        self.queries = 0
        self._images = images
        self._lock = threading.Lock()

    def candidates(self, user_id: str, buckets: Iterable[str], before: str) -> list[Candidate]:
        found: dict[str, Candidate] = {}
        with self._lock:
            for bucket in buckets:
                self.queries += 1
                items = self.buckets.get(phash_partition(user_id, bucket), {})
                for sort in sorted(s for s in items if s < before)[:CANDIDATES_PER_BUCKET]:
                    found[sort] = Candidate(phash_sort_image_id(sort), items[sort], sort)
        return [found[sort] for sort in sorted(found)]

    def add(self, user_id: str, image_id: str, perceptual_hash: str, buckets: Iterable[str], completed_at: str) -> None:
        with self._lock:
            for bucket in buckets:
                self.buckets.setdefault(phash_partition(user_id, bucket), {})[phash_sort(completed_at, image_id)] = (
                    perceptual_hash
                )

    def remove(self, user_id: str, image_id: str, buckets: Iterable[str], completed_at: str) -> None:
        with self._lock:
            for bucket in buckets:
                self.buckets.get(phash_partition(user_id, bucket), {}).pop(phash_sort(completed_at, image_id), None)

    def add_back_reference(self, target_id: str, duplicate_id: str) -> None:
        with self._lock:
            self.back.setdefault(target_id, set()).add(duplicate_id)

    def remove_back_reference(self, target_id: str, duplicate_id: str) -> None:
        with self._lock:
            self.back.get(target_id, set()).discard(duplicate_id)

    def back_references(self, target_id: str) -> list[str]:
        with self._lock:
            return sorted(self.back.get(target_id, set()))

    def repoint(self, image_id: str, old: str, new: str | None) -> bool:
        repo = self._images
        with repo._lock:
            current = repo.records.get(image_id)
            if current is None or current.deleted_at is not None or current.duplicate_of != old:
                return False
            repo.records[image_id] = current.model_copy(update={"duplicate_of": new})
            return True

    def item_count(self) -> int:
        with self._lock:
            return sum(len(items) for items in self.buckets.values()) + sum(len(ids) for ids in self.back.values())


@dataclass
class PresignCall:
    key: str
    content_type: str
    size: int
    expires_in: int


class FakeObjectStore(ObjectStore):
    """Uploads and renditions in dicts; presigning records its arguments."""

    def __init__(self) -> None:
        self.uploads: dict[str, bytes] = {}
        self.images: dict[str, bytes] = {}
        self.content_types: dict[str, str] = {}
        self.processed: set[str] = set()  # uploads re-tagged as processed
        self.presigned: list[PresignCall] = []
        self.reads = 0
        self.fail_reads = 0  # how many read_upload calls fail (transiently) first
        self._lock = threading.Lock()

    @property
    def upload_bucket(self) -> str:
        return UPLOAD_BUCKET

    def presign_upload(self, key: str, content_type: str, size: int, expires_in: int) -> UploadForm:
        with self._lock:
            self.presigned.append(PresignCall(key, content_type, size, expires_in))
            serial = len(self.presigned)
        return UploadForm(
            url=f"https://{UPLOAD_BUCKET}.s3.example.test/",
            fields={"key": key, "Content-Type": content_type, "policy": f"policy-{serial}"},
        )

    def upload_size(self, key: str) -> int | None:
        data = self.uploads.get(key)
        return None if data is None else len(data)

    def read_upload(self, key: str) -> bytes | None:
        with self._lock:
            self.reads += 1
            if self.fail_reads > 0:
                self.fail_reads -= 1
                raise TransientFailure("simulated S3 throttling")
        return self.uploads.get(key)

    def read_image(self, key: str) -> bytes | None:
        with self._lock:
            return self.images.get(key)

    def write_image(self, key: str, data: bytes, content_type: str = "image/webp") -> None:
        with self._lock:
            self.images[key] = data
            self.content_types[key] = content_type

    def mark_processed(self, key: str) -> bool:
        with self._lock:
            if key not in self.uploads:
                return False
            self.processed.add(key)
            return True

    def delete_upload(self, key: str) -> None:
        with self._lock:
            self.uploads.pop(key, None)

    def delete_image_objects(self, original_key: str, derived_keys: list[str]) -> None:
        with self._lock:
            self.uploads.pop(original_key, None)
            for key in derived_keys:
                self.images.pop(key, None)

    def delete_renditions(self, keys: list[str]) -> None:
        with self._lock:
            for key in keys:
                self.images.pop(key, None)


class FakeUploadQueue(UploadQueue):
    """Records what the sweeper hands back to the upload queue."""

    def __init__(self) -> None:
        self.resubmitted: list[tuple[str, str]] = []

    def resubmit(self, bucket: str, key: str) -> None:
        self.resubmitted.append((bucket, key))


@dataclass
class FakePublisher(EventPublisher):
    """Collects published events; the first ``failures`` publishes raise a transient error."""

    failures: int = 0
    published: list[ImageEvent] = field(default_factory=list)
    attempts: list[ImageEvent] = field(default_factory=list)

    def publish(self, event: ImageEvent) -> None:
        self.attempts.append(event)
        if self.failures > 0:
            self.failures -= 1
            raise TransientFailure("simulated SNS outage")
        self.published.append(event)


@dataclass
class FakeProcessor:
    """Stands in for ``processors.process_image``: records calls, returns fixed outputs.

    The ladder follows the real one's sizes (fitted inside 320..2048, never enlarged,
    collapsed at the original size); ``perceptual_hash`` is what every call reports, so
    tests choose which uploads are the same photo.
    """

    width: int = 1600
    height: int = 900
    reject: ImageRejected | None = None
    crash: Exception | None = None
    perceptual_hash: str = "0123456789abcdef"
    calls: list[tuple[bytes, Limits]] = field(default_factory=list)

    def __call__(self, data: bytes, limits: Limits) -> ProcessedImage:
        self.calls.append((data, limits))
        if self.crash is not None:
            raise self.crash
        if self.reject is not None:
            raise self.reject
        ladder = tuple(
            EncodedImage(data=b"RENDITION" + data[:8] + b"@%d" % w, width=w, height=h)
            for w, h in fake_ladder(self.width, self.height)
        )
        return ProcessedImage(
            rendition=ladder[-1],
            thumbnail=EncodedImage(data=b"THUMBNAIL" + data[:8], width=400, height=400),
            placeholder="data:image/webp;base64,UklGRg==",
            source_format="JPEG",
            source_width=self.width,
            source_height=self.height,
            renditions=ladder,
            thumbhash="HBkSHYSIeHiPiHh8eJd4eTN0EEQG",
            dominant_color="#4a6b8c",
            perceptual_hash=self.perceptual_hash,
        )


def fake_ladder(width: int, height: int) -> list[tuple[int, int]]:
    """The ladder's sizes as processors.pipeline.ladder_sizes gives them."""
    sizes: list[tuple[int, int]] = []
    for side in LADDER_BOXES:
        scale = min(1.0, side / max(width, height))
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        if size not in sizes:
            sizes.append(size)
    return sizes


class FakeWebhookRepository(WebhookRepository):
    def __init__(self) -> None:
        self.items: dict[str, WebhookRecord] = {}

    def add(self, record: WebhookRecord) -> None:
        if record.id in self.items:
            raise ConditionFailed()
        self.items[record.id] = record

    def list_for_user(self, user_id: str, limit: int) -> list[WebhookRecord]:
        records = sorted((r for r in self.items.values() if r.user_id == user_id), key=lambda r: r.created_at)
        return records[:limit]

    def get(self, webhook_id: str) -> WebhookRecord | None:
        return self.items.get(webhook_id)

    def remove(self, webhook_id: str) -> None:
        self.items.pop(webhook_id, None)


@dataclass
class FakeSubscription:
    endpoint: str
    user_id: str
    attributes: dict[str, str]
    confirmed: bool


class FakeSubscriptionGateway(SubscriptionGateway):
    """SNS's rules as the service meets them: a subscription is identified by its endpoint
    (one topic; the protocol is the endpoint's scheme), and a Subscribe naming an existing
    one returns it when the attributes match and is refused (InvalidParameter) otherwise;
    a pending subscription cannot be unsubscribed (the real adapter ignores that refusal).
    ``refuse`` makes the next Subscribe fail with that (code, message)."""

    def __init__(self, confirm: bool = True) -> None:
        self.subscriptions: dict[str, FakeSubscription] = {}
        self.confirm = confirm
        self.refuse: tuple[str, str] | None = None
        self._arns = iter(range(1, 1_000_000))

    def subscribe(self, endpoint: str, user_id: str) -> str:
        if self.refuse is not None:
            code, message = self.refuse
            self.refuse = None
            raise SubscribeRefused(code, message)
        attributes = {"FilterPolicy": json.dumps({"userId": [user_id]}), "FilterPolicyScope": "MessageAttributes"}
        for arn, existing in self.subscriptions.items():
            if existing.endpoint == endpoint:
                if existing.attributes != attributes:
                    raise SubscribeRefused("InvalidParameter", SNS_ALREADY_EXISTS)
                return arn
        arn = f"arn:aws:sns:us-east-1:123456789012:events:{next(self._arns)}"
        self.subscriptions[arn] = FakeSubscription(endpoint, user_id, attributes, self.confirm)
        return arn

    def state(self, subscription_arn: str) -> SubscriptionState:
        subscription = self.subscriptions.get(subscription_arn)
        if subscription is None:
            return SubscriptionState.GONE
        return SubscriptionState.CONFIRMED if subscription.confirmed else SubscriptionState.PENDING

    def unsubscribe(self, subscription_arn: str) -> None:
        subscription = self.subscriptions.get(subscription_arn)
        if subscription is not None and subscription.confirmed:
            del self.subscriptions[subscription_arn]

    def owners_by_endpoint(self) -> dict[str, str]:
        return {s.endpoint: s.user_id for s in self.subscriptions.values()}
