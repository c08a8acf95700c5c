"""Use case: create an upload (``POST /images``) and read its status."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import NamedTuple

from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_random_exponential
from ulid import ULID

from chalicelib import logs
from chalicelib.errors import (
    ConditionFailed,
    IdempotencyKeyReused,
    NotFound,
    PayloadTooLarge,
    TransientFailure,
    UnsupportedMediaType,
)
from chalicelib.metrics import NO_METRICS, Metrics
from chalicelib.models.common import ALLOWED_CONTENT_TYPES, ImageStatus, format_time, utc_now
from chalicelib.models.domain import IdempotencyRecord, ImageRecord, upload_key
from chalicelib.models.requests import CreateImageRequest
from chalicelib.repositories.images import IdempotencyKeyTaken, ImageRepository, TransactionConflict
from chalicelib.repositories.storage import ObjectStore, UploadForm
from chalicelib.settings import Settings


class UploadTicket(NamedTuple):
    """A created (or replayed) upload: the record and, while pending, a fresh form."""

    record: ImageRecord
    form: UploadForm | None
    expires_at: str | None
    replayed: bool


def new_image_id() -> str:
    return str(ULID())


class UploadService:
    def __init__(
        self,
        images: ImageRepository,
        store: ObjectStore,
        settings: Settings,
        clock: Callable[[], datetime] = utc_now,
        new_id: Callable[[], str] = new_image_id,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self._images = images
        self._store = store
        self._settings = settings
        self._clock = clock
        self._new_id = new_id
        self._metrics = metrics

    def create(self, user_id: str, request: CreateImageRequest, idempotency_key: str | None) -> UploadTicket:
        if request.content_type.lower() not in ALLOWED_CONTENT_TYPES:
            # Any string may arrive here (empty, or thousands of characters): quote only its start.
            shown = request.content_type if len(request.content_type) <= 80 else request.content_type[:80] + "..."
            raise UnsupportedMediaType(f"contentType must be one of {', '.join(ALLOWED_CONTENT_TYPES)}; got {shown!r}.")
        if request.size > self._settings.max_upload_bytes:
            raise PayloadTooLarge(f"size {request.size} exceeds the limit of {self._settings.max_upload_bytes} bytes.")
        try:
            return self._create_with_retry(user_id, request, idempotency_key)
        except TransactionConflict as exc:
            # Still racing after five tries: the client retries the same request (same key).
            raise TransientFailure("Another request with this Idempotency-Key is in progress; retry.") from exc

    @retry(
        retry=retry_if_exception_type(TransactionConflict),
        stop=stop_after_attempt(5),
        wait=wait_random_exponential(multiplier=0.02, max=0.5),
        reraise=True,
    )
    def _create_with_retry(
        self, user_id: str, request: CreateImageRequest, idempotency_key: str | None
    ) -> UploadTicket:
        now = self._clock()
        image_id = self._new_id()
        expires = now + timedelta(seconds=self._settings.upload_url_ttl_seconds)
        record = ImageRecord(
            id=image_id,
            user_id=user_id,
            status=ImageStatus.PENDING,
            original_filename=request.filename,
            content_type=request.content_type.lower(),
            file_size=request.size,
            title=request.title,
            description=request.description,
            tags=list(request.tags),
            album_id=request.album_id,
            created_at=format_time(now),
            updated_at=format_time(now),
            upload_expires_at=format_time(expires),
        )
        idempotency = None
        if idempotency_key is not None:
            idempotency = IdempotencyRecord(
                user_id=user_id,
                key=idempotency_key,
                image_id=image_id,
                fingerprint=request.fingerprint(),
                expires_at_epoch=int(now.timestamp()) + self._settings.idempotency_ttl_seconds,
            )
        try:
            self._images.create(record, idempotency, now_epoch=int(now.timestamp()))
        except IdempotencyKeyTaken as taken:
            return self._replay(user_id, request, taken.existing)
        logs.info("upload created", imageId=image_id, size=request.size, contentType=record.content_type)
        self._metrics.emit("UploadsCreated", 1)
        return UploadTicket(record=record, form=self._form(record), expires_at=format_time(expires), replayed=False)

    def _replay(self, user_id: str, request: CreateImageRequest, existing: IdempotencyRecord) -> UploadTicket:
        if existing.user_id != user_id or existing.fingerprint != request.fingerprint():
            raise IdempotencyKeyReused()
        record = self._images.get(existing.image_id)
        if record is None or record.deleted_at is not None:  # deleted since
            raise NotFound("The image created with this Idempotency-Key has been deleted.")
        logs.info("idempotent replay", imageId=record.id, status=record.status.value)
        self._metrics.emit("IdempotentReplays", 1)
        if record.status is not ImageStatus.PENDING:
            return UploadTicket(record=record, form=None, expires_at=None, replayed=True)
        now = self._clock()
        expires = now + timedelta(seconds=self._settings.upload_url_ttl_seconds)
        try:
            record = self._images.refresh_upload_window(record.id, format_time(expires), format_time(now))
        except ConditionFailed:  # the upload arrived meanwhile: no form needed any more
            record = self._images.get(record.id) or record
            return UploadTicket(record=record, form=None, expires_at=None, replayed=True)
        return UploadTicket(record=record, form=self._form(record), expires_at=format_time(expires), replayed=True)

    def _form(self, record: ImageRecord) -> UploadForm:
        return self._store.presign_upload(
            key=upload_key(record.user_id, record.id),
            content_type=record.content_type,
            size=record.file_size,
            expires_in=self._settings.upload_url_ttl_seconds,
        )
