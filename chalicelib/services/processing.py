"""Use case: turn an uploaded object into its renditions and a terminal state.

Every step is safe to repeat: deliveries come twice, late, or after a crash.
State only moves forward through conditional writes; the outputs have deterministic
keys; the event id is derived from the transition; and the event is published until
the record says it was.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import unquote_plus

from chalicelib import logs, tracing
from chalicelib.errors import ConditionFailed, TransientFailure
from chalicelib.metrics import NO_METRICS, Metrics
from chalicelib.models.common import ImageStatus, format_time, is_image_id, utc_now
from chalicelib.models.domain import (
    RENDITION_VERSION,
    ImageRecord,
    ProcessingOutcome,
    Rendition,
    event_id_for,
    ladder_box,
    ladder_key,
    versioned_thumbnail_key,
)
from chalicelib.repositories.events import EventPublisher
from chalicelib.repositories.images import ImageRepository
from chalicelib.repositories.storage import ObjectStore
from chalicelib.services.announcer import EventAnnouncer
from chalicelib.services.duplicates import DuplicateFinder
from chalicelib.services.presenter import Presenter
from chalicelib.settings import Settings

if TYPE_CHECKING:
    from processors import Limits, ProcessedImage

ImageProcessor = Callable[[bytes, "Limits"], "ProcessedImage"]


class UploadedObject(NamedTuple):
    bucket: str
    key: str


class Outcome(StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"
    DUPLICATE = "duplicate"  # already terminal; nothing changed
    IGNORED = "ignored"  # not an upload of ours, or no such image/object


def parse_notification(body: str) -> list[UploadedObject]:
    """The ObjectCreated records of an S3 event notification (an SQS message body).

    ``s3:TestEvent`` (sent when the notification is configured) and other events give
    no records. Keys arrive URL-encoded (``+`` for spaces, ``%XX`` for the rest).
    """
    try:
        message = json.loads(body)
    except json.JSONDecodeError:
        logs.warning("upload queue message is not JSON; dropped")
        return []
    if not isinstance(message, dict) or message.get("Event") == "s3:TestEvent":
        return []
    records = message.get("Records")
    if not isinstance(records, list):
        logs.warning("upload queue message has no S3 records; dropped")
        return []
    objects = []
    for record in records:
        # A message of the wrong shape is not an upload: drop it rather than retry it.
        if not isinstance(record, dict) or not str(record.get("eventName", "")).startswith("ObjectCreated"):
            continue
        s3 = record.get("s3")
        bucket = s3.get("bucket") if isinstance(s3, dict) else None
        obj = s3.get("object") if isinstance(s3, dict) else None
        name = bucket.get("name") if isinstance(bucket, dict) else None
        key = obj.get("key") if isinstance(obj, dict) else None
        if isinstance(name, str) and isinstance(key, str):
            objects.append(UploadedObject(bucket=name, key=unquote_plus(key)))
    return objects


def parse_upload_key(key: str) -> tuple[str, str] | None:
    """``uploads/{userId}/{imageId}`` -> (userId, imageId), or None for any other key."""
    parts = key.split("/")
    if len(parts) != 3 or parts[0] != "uploads" or not parts[1] or not is_image_id(parts[2]):
        return None
    return parts[1], parts[2]


def _default_processor(data: bytes, limits: Limits) -> ProcessedImage:
    # Imported here so the API path never loads Pillow (cold starts).
    from processors import process_image

    return process_image(data, limits)


def _avif_processor(data: bytes, limits: Limits) -> ProcessedImage:
    from processors import process_image

    return process_image(data, limits, avif=True)


class _Written(NamedTuple):
    """The objects one processing wrote, and what the record is to say about them."""

    renditions: list[Rendition]
    thumbnail_key: str

    @property
    def keys(self) -> list[str]:
        return [*(r.key for r in self.renditions), self.thumbnail_key]


class ProcessingService:
    def __init__(
        self,
        images: ImageRepository,
        store: ObjectStore,
        publisher: EventPublisher,
        presenter: Presenter,
        settings: Settings,
        processor: ImageProcessor | None = None,
        clock: Callable[[], datetime] = utc_now,
        metrics: Metrics = NO_METRICS,
        timer: Callable[[], float] = time.monotonic,
        duplicates: DuplicateFinder | None = None,
    ) -> None:
        self._images = images
        self._store = store
        self._publisher = publisher
        self._presenter = presenter
        self._settings = settings
        # None: the real processor, with AVIF renditions where the stage enables them.
        self._processor = processor or (_avif_processor if settings.avif_renditions else _default_processor)
        self._clock = clock
        self._metrics = metrics
        self._timer = timer
        self._duplicates = duplicates  # None: duplicateOf is not looked for
        self._announcer = EventAnnouncer(images, publisher, presenter, metrics)
        self._writers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="rendition-writer")

    def handle_message(self, body: str) -> list[Outcome]:
        return [self.handle_object(obj) for obj in parse_notification(body)]

    def handle_object(self, obj: UploadedObject) -> Outcome:
        parsed = parse_upload_key(obj.key)
        if obj.bucket != self._settings.upload_bucket or parsed is None:
            logs.warning("object is not an upload of this stage; ignored", bucket=obj.bucket)
            return Outcome.IGNORED
        user_id, image_id = parsed
        with logs.log_context(imageId=image_id, userId=user_id):
            return self._process(user_id, image_id, obj.key)

    def _process(self, user_id: str, image_id: str, key: str) -> Outcome:
        record = self._images.get(image_id)
        if record is None or record.user_id != user_id or record.deleted_at is not None:
            logs.warning("no live image record for this upload; ignored")
            return Outcome.IGNORED
        if record.status.is_terminal:
            if record.status is ImageStatus.COMPLETED:
                # The same upload form may have been posted again: its fresh copy arrived
                # tagged unprocessed, and the lifecycle rule would remove the kept original.
                self._store.mark_processed(key)
                if not record.event_published:
                    # A crash may have come between the transition and the index writes
                    # (they precede the publish, so a published event means they were done).
                    self._index_duplicates(record)
            self._announce(record)  # a crash may have come between the transition and the publish
            return Outcome.DUPLICATE
        size = self._store.upload_size(key)
        if size is None:
            logs.warning("upload object is gone; ignored")
            return Outcome.IGNORED
        now = self._clock()
        deadline = now + timedelta(seconds=self._settings.processing_deadline_seconds)
        try:
            record = self._images.start_processing(image_id, format_time(now), format_time(deadline))
        except ConditionFailed:
            return self._duplicate(image_id)
        try:
            outcome = self._outcome(record, key, size)
        except _UploadVanished as vanished:
            return self._abandon(record, vanished.written)
        written = [r.key for r in outcome.renditions or ()]
        if outcome.renditions:
            written.append(versioned_thumbnail_key(user_id, image_id, outcome.rendition_version or RENDITION_VERSION))
        event_id = event_id_for(image_id, outcome.status)
        finished_at = format_time(self._clock())
        if self._duplicates is not None and outcome.perceptual_hash is not None:
            duplicate_of = self._duplicates.find(user_id, image_id, outcome.perceptual_hash, finished_at)
            outcome = outcome.model_copy(update={"duplicate_of": duplicate_of})
        try:
            record = self._images.finish_processing(image_id, outcome, event_id, finished_at)
        except ConditionFailed:
            # Another delivery finished first and owns the event, the sweeper failed the
            # image after its deadline, or it was deleted meanwhile.
            current = self._images.get(image_id)
            if current is None or current.deleted_at is not None:
                self._store.delete_image_objects(record.upload_key, [*written, *record.derived_keys])
                return Outcome.IGNORED
            if outcome.status is ImageStatus.COMPLETED and current.status is not ImageStatus.COMPLETED and written:
                # The renditions just written belong to no completed image.
                self._store.delete_renditions(written)
            return self._duplicate(image_id)
        logs.info("processing finished", status=outcome.status.value, errorCode=outcome.error_code)
        if outcome.error_code is not None:
            self._metrics.emit("ProcessingFailures", 1, Reason=outcome.error_code)
        else:
            self._metrics.emit("ImagesCompleted", 1)
            self._index_duplicates(record)
        self._announce(record)
        return Outcome(outcome.status.value)

    def _abandon(self, record: ImageRecord, written: list[str]) -> Outcome:
        """The original vanished mid-processing: a DELETE got there first, or it will."""
        current = self._images.get(record.id)
        if current is None or current.deleted_at is not None:
            self._store.delete_image_objects(record.upload_key, [*written, *record.derived_keys])
            logs.info("image deleted while it was processed; its renditions were removed")
            return Outcome.IGNORED
        # A live image without its original: retry; the sweeper fails it at its deadline.
        raise TransientFailure("the upload object disappeared while it was processed")

    def _duplicate(self, image_id: str) -> Outcome:
        current = self._images.get(image_id)
        if current is not None and current.status.is_terminal:
            self._announce(current)
        return Outcome.DUPLICATE

    def _outcome(self, record: ImageRecord, key: str, size: int) -> ProcessingOutcome:
        limit = self._settings.max_upload_bytes
        if size > limit:
            return _failed("image_too_large", f"The file is {size} bytes; the limit is {limit} bytes.")
        if size > record.file_size:
            return _failed(
                "size_mismatch",
                f"The file is {size} bytes, larger than the {record.file_size} bytes declared for this upload.",
            )
        # The image's time budget starts with the read; the processor gets what is left and
        # stops with processing_timeout when it runs out (processors.Limits.max_seconds).
        started = self._timer()
        with tracing.subsegment("read_upload"):
            data = self._store.read_upload(key)
        if data is None or len(data) != size:
            # Replaced or removed between the two reads: retry from a consistent view.
            raise TransientFailure("upload object changed while it was read")
        left = self._settings.image_timeout_seconds - (self._timer() - started)
        if left <= 0:
            # S3 was that slow, not the image: try again.
            raise TransientFailure("reading the upload took the image's whole time budget")
        from processors import ImageRejected, Limits

        limits = Limits(max_bytes=limit, max_pixels=self._settings.max_image_pixels, max_seconds=left)
        try:
            with tracing.subsegment("process_image"):
                result = self._processor(data, limits)
        except ImageRejected as rejected:
            return _failed(rejected.code, rejected.message)
        for step, milliseconds in result.timings_ms.items():
            self._metrics.emit("ProcessingDuration", milliseconds, "Milliseconds", Step=step)
        written = self._write_renditions(record, result)
        if not self._store.mark_processed(key):
            raise _UploadVanished(written.keys)
        return ProcessingOutcome(
            status=ImageStatus.COMPLETED,
            width=result.rendition.width,
            height=result.rendition.height,
            placeholder=result.placeholder,
            renditions=written.renditions,
            rendition_version=RENDITION_VERSION,
            thumbhash=result.thumbhash or None,
            dominant_color=result.dominant_color or None,
            perceptual_hash=result.perceptual_hash or None,
        )

    def _write_renditions(self, record: ImageRecord, result: ProcessedImage) -> _Written:
        """Every rendition of the ladder and the thumbnail, under keys of the current spec.

        The keys are derived (spec version, ladder box, format), so a retried delivery
        rewrites the same keys with the same bytes, and a DELETE knows every key the image
        may own even when a delivery crashed before recording them (``derived_keys``).
        """
        ladder = result.renditions or (result.rendition,)
        renditions = [
            Rendition(
                width=encoded.width,
                height=encoded.height,
                format=encoded.format,
                key=ladder_key(
                    record.user_id,
                    record.id,
                    RENDITION_VERSION,
                    ladder_box(encoded.width, encoded.height),
                    encoded.format,
                ),
                bytes=len(encoded.data),
            )
            for encoded in ladder
        ]
        thumbnail = versioned_thumbnail_key(record.user_id, record.id, RENDITION_VERSION)
        objects = [(r.key, encoded.data, r.format) for r, encoded in zip(renditions, ladder, strict=True)]
        objects.append((thumbnail, result.thumbnail.data, "webp"))
        with tracing.subsegment("write_renditions"):
            writes = [
                self._writers.submit(self._store.write_image, object_key, data, f"image/{image_format}")
                for object_key, data, image_format in objects
            ]
            # Wait for all before raising: a write still running after a failed delivery
            # could land after the image was deleted, and leave an object nobody knows.
            wait(writes)
            for write in writes:
                write.result()  # re-raises a failed write; the message is retried
        return _Written(renditions=renditions, thumbnail_key=thumbnail)

    def _index_duplicates(self, record: ImageRecord) -> None:
        if self._duplicates is not None:
            self._duplicates.index(record)

    def _announce(self, record: ImageRecord) -> None:
        self._announcer.announce(record)


class _UploadVanished(Exception):
    """The upload object was removed after it was read (by a DELETE, as a rule)."""

    def __init__(self, written: list[str]) -> None:
        super().__init__("upload vanished")
        self.written = written


def _failed(code: str, message: str) -> ProcessingOutcome:
    return ProcessingOutcome(status=ImageStatus.FAILED, error_code=code, error_message=message)
