"""A failed rendition write must not leave the other write running behind the handler's back.

The processor writes the rendition and the thumbnail in parallel. When one write fails
(an S3 5xx after botocore's retries), the delivery fails and is retried; but if the other
write is still in flight, it can land *after* the handler returned: after a DELETE of the
image removed its objects, which leaves a public thumbnail of a deleted image that no
record knows about (docs/architecture.md: "never objects that no record knows about").
"""

from __future__ import annotations

import threading

import pytest

from chalicelib.errors import TransientFailure
from chalicelib.models.common import ImageStatus, format_time
from chalicelib.models.domain import ImageRecord, upload_key
from chalicelib.services.presenter import Presenter
from chalicelib.services.processing import ProcessingService, UploadedObject
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

IMAGE_ID = "01J00000000000000000000001"
DATA = b"\xff\xd8\xff\xe0 a pretend jpeg \xff\xd9"


class RenditionFailsWhileThumbnailIsSlow(FakeObjectStore):
    """The rendition PUT fails at once; the thumbnail PUT takes a while, then lands."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.thumbnail_written = threading.Event()

    def write_image(self, key: str, data: bytes, content_type: str = "image/webp") -> None:
        if "thumbnail" not in key:
            raise TransientFailure("simulated S3 500 on the rendition PUT")
        self.release.wait(0.5)
        super().write_image(key, data, content_type)
        self.thumbnail_written.set()


def world() -> tuple[ProcessingService, FakeImageRepository, RenditionFailsWhileThumbnailIsSlow]:
    clock = Clock()
    repo, store = FakeImageRepository(), RenditionFailsWhileThumbnailIsSlow()
    now = format_time(clock.now)
    repo.put(
        ImageRecord(
            id=IMAGE_ID,
            user_id="alice",
            status=ImageStatus.PENDING,
            original_filename="a.jpg",
            content_type="image/jpeg",
            file_size=len(DATA),
            created_at=now,
            updated_at=now,
        )
    )
    store.uploads[upload_key("alice", IMAGE_ID)] = DATA
    service = ProcessingService(
        repo, store, FakePublisher(), Presenter(CDN), unit_settings(), processor=FakeProcessor(), clock=clock
    )
    return service, repo, store


def test_when_one_rendition_write_fails_the_delivery_fails_only_after_the_other_write_finished():
    service, _, store = world()

    with pytest.raises(TransientFailure):
        service.handle_object(UploadedObject(UPLOAD_BUCKET, upload_key("alice", IMAGE_ID)))
    finished_before_the_failure = store.thumbnail_written.is_set()
    store.release.set()

    assert finished_before_the_failure, "the thumbnail write was still in flight when the delivery failed"


def test_a_delete_after_a_failed_delivery_leaves_no_thumbnail_behind():
    service, repo, store = world()
    with pytest.raises(TransientFailure):
        service.handle_object(UploadedObject(UPLOAD_BUCKET, upload_key("alice", IMAGE_ID)))

    # The owner deletes the image (what ImageService.delete does to the objects and record).
    store.delete_image_objects(upload_key("alice", IMAGE_ID), repo.records[IMAGE_ID].derived_keys)
    repo.records.pop(IMAGE_ID)
    store.release.set()
    service._writers.shutdown(wait=True)

    assert store.images == {}, "an orphaned thumbnail of a deleted image"
