"""In-memory stand-ins for the AWS adapters, for unit tests (no IO at all).

Each fake subclasses the real adapter so mypy checks that it keeps the same method
signatures; every method the services use is overridden, and none touches a client.
Conditional writes are simulated atomically under one lock, with the same conditions
as the DynamoDB expressions in ``chalicelib.repositories.images``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.errors import ConditionFailed, TransientFailure
from chalicelib.models.common import ImageStatus
from chalicelib.models.domain import IdempotencyRecord, ImageRecord, ProcessingOutcome, WebhookRecord
from chalicelib.models.responses import ImageEvent
from chalicelib.repositories.events import EventPublisher
from chalicelib.repositories.images import STALLED_CODE, STALLED_MESSAGE, IdempotencyKeyTaken, ImageRepository
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
    """Image records and Idempotency-Keys in dicts; every write is atomic and conditional."""

    def __init__(self, *, before_create: Callable[[], object] | None = None) -> None:
        # The real __init__ only stores a client; the fake has none on purpose.
        self.records: dict[str, ImageRecord] = {}
        self.keys: dict[tuple[str, str], IdempotencyRecord] = {}
        self.create_calls = 0
        self.deadlines: dict[str, str] = {}  # processing deadlines, as the sweep index holds them
        self.fail_mark_published = 0  # how many mark_event_published calls fail first
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
        """Test setup: store a record as it is."""
        with self._lock:
            self.records[record.id] = record

    # -- writes --------------------------------------------------------------------

    def create(self, record: ImageRecord, idempotency: IdempotencyRecord | None, now_epoch: int) -> None:
        if self._before_create is not None:
            self._before_create()
        with self._lock:
            self.create_calls += 1
            if record.id in self.records:
                raise ConditionFailed(record.id)
            if idempotency is not None:
                existing = self.keys.get((idempotency.user_id, idempotency.key))
                # attribute_not_exists(PK) OR ttl < :now
                if existing is not None and not existing.expires_at_epoch < now_epoch:
                    raise IdempotencyKeyTaken(existing)
                self.keys[(idempotency.user_id, idempotency.key)] = idempotency
            self.records[record.id] = record

    def refresh_upload_window(self, image_id: str, expires_at: str, now: str) -> ImageRecord:
        return self._apply(
            image_id, (ImageStatus.PENDING,), {"upload_expires_at": expires_at, "updated_at": now}, bump=False
        )

    def start_processing(self, image_id: str, now: str, deadline: str) -> ImageRecord:
        with self._lock:
            current = self.records.get(image_id)
            uploaded_at = current.uploaded_at if current is not None and current.uploaded_at else now
            self.deadlines[image_id] = deadline
        return self._apply(
            image_id,
            (ImageStatus.PENDING, ImageStatus.PROCESSING),
            {"status": ImageStatus.PROCESSING, "updated_at": now, "uploaded_at": uploaded_at},
            bump=False,
        )

    def finish_processing(self, image_id: str, outcome: ProcessingOutcome, event_id: str, now: str) -> ImageRecord:
        return self._apply(
            image_id,
            (ImageStatus.PROCESSING,),
            {
                "status": outcome.status,
                "updated_at": now,
                "event_id": event_id,
                "event_occurred_at": now,
                "event_published": False,
                "width": outcome.width,
                "height": outcome.height,
                "placeholder": outcome.placeholder,
                "error_code": outcome.error_code,
                "error_message": outcome.error_message,
            },
            bump=False,  # ``version`` counts metadata edits (PATCH), not processing
        )

    def fail_stalled(self, image_id: str, event_id: str, now: str) -> ImageRecord:
        with self._lock:
            # GSI3SK <= :now: an attempt that started again moved the deadline on.
            if self.deadlines.get(image_id, now) > now:
                raise ConditionFailed(image_id)
        return self._apply(
            image_id,
            (ImageStatus.PROCESSING,),
            {
                "status": ImageStatus.FAILED,
                "updated_at": now,
                "event_id": event_id,
                "event_occurred_at": now,
                "event_published": False,
                "error_code": STALLED_CODE,
                "error_message": STALLED_MESSAGE,
            },
            bump=False,
        )

    def postpone_sweep(self, image_id: str, due: str) -> ImageRecord:
        with self._lock:
            self.deadlines[image_id] = due
        return self._apply(image_id, (ImageStatus.PENDING,), {}, bump=False)

    def mark_event_published(self, image_id: str, event_id: str) -> None:
        with self._lock:
            if self.fail_mark_published > 0:
                self.fail_mark_published -= 1
                raise TransientFailure("simulated crash before the record says 'published'")
            current = self.records.get(image_id)
            if current is None or current.event_id != event_id:
                raise ConditionFailed(image_id)
            self.records[image_id] = current.model_copy(update={"event_published": True})

    def _apply(
        self, image_id: str, expected: Iterable[ImageStatus], values: dict[str, Any], *, bump: bool
    ) -> ImageRecord:
        with self._lock:
            current = self.records.get(image_id)
            # attribute_exists(PK) AND attribute_not_exists(deletedAt) AND #status IN (...)
            if current is None or current.deleted_at is not None or current.status not in tuple(expected):
                raise ConditionFailed(image_id)
            update = dict(values)
            if bump:
                update["version"] = current.version + 1
            updated = current.model_copy(update=update)
            self.records[image_id] = updated
            return updated


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
        self.processed: set[str] = set()  # uploads re-tagged as processed
        self.presigned: list[PresignCall] = []
        self.reads = 0
        self.fail_reads = 0  # how many read_upload calls fail (transiently) first
        self._lock = threading.Lock()

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

    def write_image(self, key: str, data: bytes) -> None:
        with self._lock:
            self.images[key] = data

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
    """Stands in for ``processors.process_image``: records calls, returns fixed outputs."""

    width: int = 1600
    height: int = 900
    reject: ImageRejected | None = None
    crash: Exception | None = None
    calls: list[tuple[bytes, Limits]] = field(default_factory=list)

    def __call__(self, data: bytes, limits: Limits) -> ProcessedImage:
        self.calls.append((data, limits))
        if self.crash is not None:
            raise self.crash
        if self.reject is not None:
            raise self.reject
        return ProcessedImage(
            rendition=EncodedImage(data=b"RENDITION" + data[:8], width=self.width, height=self.height),
            thumbnail=EncodedImage(data=b"THUMBNAIL" + data[:8], width=400, height=400),
            placeholder="data:image/webp;base64,UklGRg==",
            source_format="JPEG",
            source_width=self.width,
            source_height=self.height,
        )


# -- webhooks ------------------------------------------------------------------------------


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
