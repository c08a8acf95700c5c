"""ProcessingService with in-memory fakes: outcomes, retries, duplicates and events."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote_plus

import pytest

from chalicelib.errors import TransientFailure
from chalicelib.models.common import ImageStatus, format_time
from chalicelib.models.domain import (
    RENDITION_VERSION,
    ImageRecord,
    event_id_for,
    ladder_key,
    upload_key,
    versioned_thumbnail_key,
)
from chalicelib.services.presenter import Presenter
from chalicelib.services.processing import Outcome, ProcessingService
from processors import ImageRejected
from tests.unit.fakes import (
    CDN,
    UPLOAD_BUCKET,
    Clock,
    FakeImageRepository,
    FakeObjectStore,
    FakeProcessor,
    FakePublisher,
    unit_settings,
)

USER = "alice"
IMAGE_ID = "01J00000000000000000000001"
UPLOAD = b"\xff\xd8\xff\xe0 pretend-jpeg-bytes \xff\xd9"


def s3_message(key: str, bucket: str = UPLOAD_BUCKET, event_name: str = "ObjectCreated:Post") -> str:
    return json.dumps(
        {
            "Records": [
                {
                    "eventName": event_name,
                    "s3": {"bucket": {"name": bucket}, "object": {"key": quote_plus(key, safe="/")}},
                }
            ]
        }
    )


class World:
    def __init__(self, declared_size: int = len(UPLOAD), **settings: Any) -> None:
        self.repo = FakeImageRepository()
        self.store = FakeObjectStore()
        self.publisher = FakePublisher()
        self.processor = FakeProcessor()
        self.clock = Clock()
        self.settings = unit_settings(**settings)
        self.declared_size = declared_size
        self.service = self.build()

    def build(self) -> ProcessingService:
        return ProcessingService(
            self.repo,
            self.store,
            self.publisher,
            Presenter(CDN),
            self.settings,
            processor=self.processor,
            clock=self.clock,
        )

    def pending(self, user_id: str = USER, image_id: str = IMAGE_ID, **fields: Any) -> ImageRecord:
        now = format_time(self.clock.now)
        values: dict[str, Any] = {
            "id": image_id,
            "user_id": user_id,
            "status": ImageStatus.PENDING,
            "original_filename": "castle.jpg",
            "content_type": "image/jpeg",
            "file_size": self.declared_size,
            "created_at": now,
            "updated_at": now,
        }
        values.update(fields)
        record = ImageRecord(**values)
        self.repo.put(record)
        return record

    def upload(self, data: bytes = UPLOAD, user_id: str = USER, image_id: str = IMAGE_ID) -> str:
        key = upload_key(user_id, image_id)
        self.store.uploads[key] = data
        return key

    def record(self, image_id: str = IMAGE_ID) -> ImageRecord:
        return self.repo.records[image_id]


@pytest.fixture
def world() -> World:
    world = World()
    world.pending()
    return world


def test_a_valid_upload_completes_with_both_renditions_and_one_event(world: World) -> None:
    key = world.upload()
    world.clock.advance(seconds=3)

    outcomes = world.service.handle_message(s3_message(key))

    assert outcomes == [Outcome.COMPLETED]
    record = world.record()
    assert record.status is ImageStatus.COMPLETED
    assert (record.width, record.height) == (world.processor.width, world.processor.height)
    assert record.placeholder is not None
    assert record.uploaded_at == format_time(world.clock.now)
    assert record.updated_at == format_time(world.clock.now)
    assert record.event_published is True
    # The 1600x900 image: the ladder collapses 1600 and 2048 into one rendition at 1600.
    ladder = [ladder_key(USER, IMAGE_ID, RENDITION_VERSION, box, "webp") for box in (320, 640, 1024, 1600)]
    thumbnail = versioned_thumbnail_key(USER, IMAGE_ID, RENDITION_VERSION)
    assert set(world.store.images) == {*ladder, thumbnail}
    assert world.store.images[ladder[-1]].startswith(b"RENDITION")
    assert world.store.images[thumbnail].startswith(b"THUMBNAIL")
    assert set(world.store.content_types.values()) == {"image/webp"}
    assert record.renditions is not None
    assert [(r.width, r.height, r.key) for r in record.renditions] == [
        (320, 180, ladder[0]),
        (640, 360, ladder[1]),
        (1024, 576, ladder[2]),
        (1600, 900, ladder[3]),
    ]
    assert [r.bytes for r in record.renditions] == [len(world.store.images[key]) for key in ladder]
    assert (record.rendition_key, record.thumbnail_key) == (ladder[-1], thumbnail)
    assert record.rendition_version == RENDITION_VERSION
    assert (record.thumbhash, record.dominant_color) == ("HBkSHYSIeHiPiHh8eJd4eTN0EEQG", "#4a6b8c")
    assert record.perceptual_hash == world.processor.perceptual_hash
    assert record.duplicate_of is None
    assert [data for data, _ in world.processor.calls] == [UPLOAD]


def test_the_processor_gets_the_configured_limits() -> None:
    world = World(max_upload_bytes=5000, max_image_pixels=1234)
    world.pending()

    world.service.handle_message(s3_message(world.upload()))

    limits = world.processor.calls[0][1]
    assert (limits.max_bytes, limits.max_pixels) == (5000, 1234)


def test_the_completed_event_has_the_api_shape_and_a_derived_event_id(world: World) -> None:
    world.service.handle_message(s3_message(world.upload()))

    assert len(world.publisher.published) == 1
    event = world.publisher.published[0].model_dump(mode="json", by_alias=True)
    assert event["eventId"] == event_id_for(IMAGE_ID, ImageStatus.COMPLETED)
    assert event["type"] == "image.completed"
    assert event["occurredAt"] == world.record().updated_at
    base = f"{CDN}/images/{USER}/{IMAGE_ID}/v{RENDITION_VERSION}"
    ladder = [(320, 180), (640, 360), (1024, 576), (1600, 900)]
    assert event["image"] == {
        "id": IMAGE_ID,
        "userId": USER,
        "status": "completed",
        "imageUrl": f"{base}/1600.webp",
        "thumbnailUrl": f"{base}/thumbnail.webp",
        "width": world.processor.width,
        "height": world.processor.height,
        # Enough to render the image without asking the API.
        "renditions": [
            {
                "width": w,
                "height": h,
                "format": "webp",
                "url": f"{base}/{w}.webp",
                "bytes": len(world.store.images[key]),
            }
            for (w, h), key in zip(ladder, (r.key for r in world.record().renditions or ()), strict=True)
        ],
        "srcset": ", ".join(f"{base}/{w}.webp {w}w" for w, _ in ladder),
        "thumbhash": "HBkSHYSIeHiPiHh8eJd4eTN0EEQG",
        "dominantColor": "#4a6b8c",
    }


def test_a_rejected_image_fails_with_the_processors_reason_and_is_acknowledged(world: World) -> None:
    world.processor.reject = ImageRejected("unsupported_format", "The file is not a JPEG, PNG, WebP or GIF image.")

    outcomes = world.service.handle_message(s3_message(world.upload(b"hello, I am text")))

    assert outcomes == [Outcome.FAILED]
    record = world.record()
    assert record.status is ImageStatus.FAILED
    assert record.error_code == "unsupported_format"
    assert record.error_message == "The file is not a JPEG, PNG, WebP or GIF image."
    assert world.store.images == {}
    [event] = world.publisher.published
    assert event.type == "image.failed"
    assert event.event_id == event_id_for(IMAGE_ID, ImageStatus.FAILED)
    assert event.image.error is not None
    assert event.image.error.code == "unsupported_format"
    assert event.image.image_url is None


def test_an_upload_larger_than_declared_fails_as_size_mismatch_without_decoding() -> None:
    world = World(declared_size=10)
    world.pending()

    outcomes = world.service.handle_message(s3_message(world.upload(b"x" * 11)))

    assert outcomes == [Outcome.FAILED]
    assert world.record().status is ImageStatus.FAILED
    assert world.record().error_code == "size_mismatch"
    assert world.processor.calls == []
    assert world.store.reads == 0


def test_an_upload_larger_than_the_service_limit_fails_as_image_too_large() -> None:
    world = World(declared_size=100, max_upload_bytes=50)
    world.pending()

    world.service.handle_message(s3_message(world.upload(b"x" * 60)))

    assert world.record().error_code == "image_too_large"
    assert world.processor.calls == []


def test_an_upload_smaller_than_declared_is_processed(world: World) -> None:
    smaller = UPLOAD[:-4]

    assert world.service.handle_message(s3_message(world.upload(smaller))) == [Outcome.COMPLETED]
    assert world.processor.calls[0][0] == smaller


def test_a_processor_crash_is_retried_and_leaves_the_record_resumable(world: World) -> None:
    key = world.upload()
    world.processor.crash = MemoryError("out of memory")

    with pytest.raises(MemoryError):
        world.service.handle_message(s3_message(key))

    assert world.record().status is ImageStatus.PROCESSING
    assert world.publisher.attempts == []
    world.processor.crash = None
    assert world.service.handle_message(s3_message(key)) == [Outcome.COMPLETED]
    assert world.record().status is ImageStatus.COMPLETED
    assert len(world.publisher.published) == 1


def test_a_transient_read_failure_raises_and_a_retry_completes(world: World) -> None:
    key = world.upload()
    world.store.fail_reads = 1

    with pytest.raises(TransientFailure):
        world.service.handle_message(s3_message(key))

    assert world.record().status is ImageStatus.PROCESSING
    assert world.service.handle_message(s3_message(key)) == [Outcome.COMPLETED]


def test_an_upload_replaced_between_size_and_read_is_a_transient_failure(world: World) -> None:
    key = world.upload()

    class Replacing(FakeObjectStore):
        def read_upload(self, key: str) -> bytes | None:
            return b"different length"

    world.store = Replacing()
    world.store.uploads[key] = UPLOAD
    service = world.build()

    with pytest.raises(TransientFailure):
        service.handle_message(s3_message(key))
    assert world.record().status is ImageStatus.PROCESSING
    assert world.publisher.attempts == []


def test_a_crash_after_the_transition_before_the_publish_publishes_once_on_redelivery(world: World) -> None:
    key = world.upload()
    world.publisher.failures = 1

    with pytest.raises(TransientFailure):
        world.service.handle_message(s3_message(key))

    assert world.record().status is ImageStatus.COMPLETED
    assert world.record().event_published is False
    assert world.publisher.published == []
    version = world.record().version

    assert world.service.handle_message(s3_message(key)) == [Outcome.DUPLICATE]
    assert world.service.handle_message(s3_message(key)) == [Outcome.DUPLICATE]

    [event] = world.publisher.published
    assert event == world.publisher.attempts[0]  # same eventId, same occurredAt, same body
    assert event.event_id == event_id_for(IMAGE_ID, ImageStatus.COMPLETED)
    assert world.record().event_published is True
    assert world.record().version == version
    assert len(world.processor.calls) == 1


def test_a_crash_after_publishing_republishes_with_the_same_event_id(world: World) -> None:
    key = world.upload()
    world.repo.fail_mark_published = 1

    with pytest.raises(TransientFailure):
        world.service.handle_message(s3_message(key))
    world.service.handle_message(s3_message(key))
    world.service.handle_message(s3_message(key))

    assert len(world.publisher.published) == 2
    assert {e.event_id for e in world.publisher.published} == {event_id_for(IMAGE_ID, ImageStatus.COMPLETED)}
    assert world.publisher.published[0] == world.publisher.published[1]


def test_a_duplicate_delivery_changes_nothing_and_publishes_nothing(world: World) -> None:
    key = world.upload()
    world.service.handle_message(s3_message(key))
    before = world.record()
    world.clock.advance(minutes=1)

    assert world.service.handle_message(s3_message(key)) == [Outcome.DUPLICATE]

    assert world.record() == before
    assert len(world.publisher.published) == 1
    assert len(world.processor.calls) == 1


def test_the_same_record_twice_in_one_message_is_processed_once(world: World) -> None:
    key = world.upload()
    body = json.loads(s3_message(key))
    body["Records"] = body["Records"] * 2

    assert world.service.handle_message(json.dumps(body)) == [Outcome.COMPLETED, Outcome.DUPLICATE]
    assert len(world.publisher.published) == 1


def test_a_delivery_that_loses_the_final_write_to_another_worker_is_a_duplicate(world: World) -> None:
    key = world.upload()
    winner = World()
    winner.repo = world.repo
    winner.store = world.store
    winner_service = winner.build()

    class RacingProcessor(FakeProcessor):
        def __call__(self, data: bytes, limits: Any) -> Any:
            # Another delivery of the same upload finishes while this one is decoding.
            winner_service.handle_message(s3_message(key))
            return super().__call__(data, limits)

    world.processor = RacingProcessor()
    loser = world.build()

    assert loser.handle_message(s3_message(key)) == [Outcome.DUPLICATE]
    assert world.record().status is ImageStatus.COMPLETED
    assert len(winner.publisher.published) == 1
    assert world.publisher.published == []


@pytest.mark.parametrize("status", [ImageStatus.COMPLETED, ImageStatus.FAILED, ImageStatus.EXPIRED])
def test_an_event_for_a_terminal_image_is_a_duplicate_and_never_reprocessed(status: ImageStatus) -> None:
    world = World()
    world.pending(status=status, event_id=event_id_for(IMAGE_ID, status), event_published=True, version=2)

    assert world.service.handle_message(s3_message(world.upload())) == [Outcome.DUPLICATE]

    assert world.record().status is status
    assert world.record().version == 2
    assert world.processor.calls == []
    assert world.publisher.attempts == []


def test_an_expired_upload_that_arrives_late_publishes_its_pending_expiry_event_once() -> None:
    world = World()
    world.pending(status=ImageStatus.EXPIRED, event_id=event_id_for(IMAGE_ID, ImageStatus.EXPIRED))

    world.service.handle_message(s3_message(world.upload()))
    world.service.handle_message(s3_message(world.upload()))

    [event] = world.publisher.published
    assert event.type == "image.expired"
    assert world.processor.calls == []


def test_an_event_for_an_unknown_image_is_ignored(world: World) -> None:
    key = world.upload(image_id="01J00000000000000000000777")

    assert world.service.handle_message(s3_message(key)) == [Outcome.IGNORED]
    assert world.processor.calls == []
    assert world.record().status is ImageStatus.PENDING


def test_an_event_for_an_image_being_deleted_is_ignored() -> None:
    world = World()
    world.pending(deleted_at=format_time(world.clock.now))

    assert world.service.handle_message(s3_message(world.upload())) == [Outcome.IGNORED]
    assert world.processor.calls == []
    assert world.store.images == {}
    assert world.publisher.attempts == []


def test_an_event_whose_key_names_another_user_is_ignored(world: World) -> None:
    key = world.upload(user_id="mallory")

    assert world.service.handle_message(s3_message(key)) == [Outcome.IGNORED]
    assert world.record().status is ImageStatus.PENDING


def test_an_event_from_a_foreign_bucket_is_ignored(world: World) -> None:
    key = world.upload()

    assert world.service.handle_message(s3_message(key, bucket="someone-elses-bucket")) == [Outcome.IGNORED]
    assert world.record().status is ImageStatus.PENDING
    assert world.processor.calls == []


@pytest.mark.parametrize(
    "key",
    [f"images/{USER}/{IMAGE_ID}.webp", f"uploads/{USER}/{IMAGE_ID}/extra", f"uploads/{IMAGE_ID}", "uploads/alice/x"],
)
def test_an_event_for_a_key_outside_the_upload_layout_is_ignored(world: World, key: str) -> None:
    world.store.uploads[key] = UPLOAD

    assert world.service.handle_message(s3_message(key)) == [Outcome.IGNORED]
    assert world.record().status is ImageStatus.PENDING


def test_an_event_whose_object_is_gone_is_ignored_and_the_image_stays_pending(world: World) -> None:
    assert world.service.handle_message(s3_message(upload_key(USER, IMAGE_ID))) == [Outcome.IGNORED]
    assert world.record().status is ImageStatus.PENDING
    assert world.publisher.attempts == []


def test_the_s3_test_event_is_ignored(world: World) -> None:
    body = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": UPLOAD_BUCKET})

    assert world.service.handle_message(body) == []


def test_an_url_encoded_key_of_an_unusual_user_id_is_decoded_and_processed() -> None:
    user = "a b+c%é"
    world = World()
    world.pending(user_id=user)
    key = world.upload(user_id=user)

    assert world.service.handle_message(s3_message(key)) == [Outcome.COMPLETED]
    assert ladder_key(user, IMAGE_ID, RENDITION_VERSION, 1600, "webp") in world.store.images


# --- the image's time budget -------------------------------------------------------------


class Timer:
    """A monotonic clock the test moves: each call returns the next reading."""

    def __init__(self, *readings: float) -> None:
        self._readings = list(readings)

    def __call__(self) -> float:
        return self._readings.pop(0) if len(self._readings) > 1 else self._readings[0]


def _timed_service(world: World, timer: Timer) -> ProcessingService:
    return ProcessingService(
        world.repo, world.store, world.publisher, Presenter(CDN), world.settings, world.processor, world.clock,
        timer=timer,
    )  # fmt: skip


def test_the_processor_gets_what_the_read_left_of_the_images_time_budget() -> None:
    world = World(image_timeout_seconds=30)
    world.pending()
    service = _timed_service(world, Timer(100.0, 104.5))  # the read took 4.5 s

    assert service.handle_message(s3_message(world.upload())) == [Outcome.COMPLETED]

    assert world.processor.calls[0][1].max_seconds == pytest.approx(25.5)


def test_a_read_that_used_up_the_budget_is_retried_not_failed() -> None:
    world = World(image_timeout_seconds=30)
    world.pending()
    service = _timed_service(world, Timer(100.0, 131.0))

    with pytest.raises(TransientFailure):
        service.handle_message(s3_message(world.upload()))

    assert world.record().status is ImageStatus.PROCESSING  # the retry (or the sweep) ends it
    assert world.processor.calls == []
    assert world.publisher.published == []


@pytest.mark.parametrize("code", ["processing_timeout", "image_too_complex"])
def test_an_image_over_its_work_bounds_ends_failed_with_its_code_and_one_event(world: World, code: str) -> None:
    world.processor.reject = ImageRejected(code, "Open it in an image editor, save it again and upload it.")

    assert world.service.handle_message(s3_message(world.upload())) == [Outcome.FAILED]

    record = world.record()
    assert (record.status, record.error_code) == (ImageStatus.FAILED, code)
    assert world.store.images == {}
    [event] = world.publisher.published
    assert event.model_dump(mode="json", by_alias=True)["image"]["error"]["code"] == code
