"""``ObjectStore``, ``UploadQueue`` and ``EventPublisher``: what the services write and read
through them, the same cases on the fakes and on S3, SQS and SNS (moto)."""

from __future__ import annotations

import pytest

from chalicelib.models.common import ImageStatus
from chalicelib.models.domain import rendition_key, thumbnail_key, upload_key
from chalicelib.services.presenter import Presenter
from chalicelib.services.processing import UploadedObject
from tests.contract.backends import Backend
from tests.contract.test_image_repository import ID, OTHER, pending

UPLOAD = upload_key("alice", ID)
RENDITION = rendition_key("alice", ID)
THUMBNAIL = thumbnail_key("alice", ID)


def test_an_upload_has_its_size_and_bytes_and_a_missing_one_has_none(backend: Backend) -> None:
    assert backend.store.upload_size(UPLOAD) is None
    assert backend.store.read_upload(UPLOAD) is None

    backend.put_upload(UPLOAD, b"0123456789")

    assert backend.store.upload_size(UPLOAD) == 10
    assert backend.store.read_upload(UPLOAD) == b"0123456789"
    assert backend.upload_keys() == {UPLOAD}


def test_marking_an_upload_processed_and_a_missing_one(backend: Backend) -> None:
    backend.put_upload(UPLOAD, b"x")
    assert not backend.is_processed(UPLOAD)

    assert backend.store.mark_processed(UPLOAD) is True
    assert backend.store.mark_processed(upload_key("alice", OTHER)) is False

    assert backend.is_processed(UPLOAD)
    assert backend.store.read_upload(UPLOAD) == b"x"  # re-tagging keeps the bytes
    backend.put_upload(UPLOAD, b"posted again")  # a fresh copy arrives unprocessed
    assert not backend.is_processed(UPLOAD)


def test_renditions_are_written_and_removed_with_their_original(backend: Backend) -> None:
    backend.put_upload(UPLOAD, b"original")
    backend.put_upload(upload_key("alice", OTHER), b"another")
    backend.store.write_image(RENDITION, b"big")
    backend.store.write_image(THUMBNAIL, b"small")
    backend.store.write_image(rendition_key("alice", OTHER), b"other")

    assert (backend.read_image(RENDITION), backend.read_image(THUMBNAIL)) == (b"big", b"small")
    backend.store.delete_image_objects(UPLOAD, [RENDITION, THUMBNAIL])
    backend.store.delete_image_objects(UPLOAD, [RENDITION, THUMBNAIL])  # again: nothing left, no error

    assert backend.upload_keys() == {upload_key("alice", OTHER)}
    assert backend.image_keys() == {rendition_key("alice", OTHER)}
    assert backend.read_image(RENDITION) is None


def test_rewriting_a_rendition_replaces_it(backend: Backend) -> None:
    backend.store.write_image(RENDITION, b"first")
    backend.store.write_image(RENDITION, b"second")

    assert backend.read_image(RENDITION) == b"second"


def test_removing_renditions_leaves_the_original(backend: Backend) -> None:
    backend.put_upload(UPLOAD, b"original")
    backend.store.write_image(RENDITION, b"big")
    backend.store.write_image(THUMBNAIL, b"small")

    backend.store.delete_renditions([RENDITION, THUMBNAIL, rendition_key("alice", OTHER)])

    assert backend.image_keys() == set()
    assert backend.upload_keys() == {UPLOAD}


def test_deleting_an_upload_and_deleting_it_again(backend: Backend) -> None:
    backend.put_upload(UPLOAD, b"x")

    backend.store.delete_upload(UPLOAD)
    backend.store.delete_upload(UPLOAD)

    assert backend.store.upload_size(UPLOAD) is None
    assert backend.upload_keys() == set()


def test_an_upload_form_pins_the_key_and_the_content_type(backend: Backend) -> None:
    form = backend.store.presign_upload(UPLOAD, "image/png", 1234, 900)

    assert form.fields["key"] == UPLOAD
    assert form.fields["Content-Type"] == "image/png"
    assert form.url.startswith("https://")


@pytest.mark.parametrize("user_id", ["alice", "a b+c%é", "名前", "x/../y"])
def test_a_resubmitted_upload_reaches_the_processor_as_the_same_bucket_and_key(backend: Backend, user_id: str) -> None:
    key = upload_key(user_id, ID)

    backend.queue.resubmit(backend.store.upload_bucket, key)
    backend.queue.resubmit(backend.store.upload_bucket, key)

    assert backend.resubmitted() == [UploadedObject(backend.settings.upload_bucket, key)] * 2
    assert backend.resubmitted() == []


@pytest.mark.parametrize("status", [ImageStatus.COMPLETED, ImageStatus.FAILED, ImageStatus.EXPIRED])
def test_a_published_event_reaches_subscribers_unchanged(backend: Backend, status: ImageStatus) -> None:
    record = pending(
        status=status,
        event_id=f"event-{status.value}",
        event_occurred_at="2026-03-14T09:05:00.000Z",
        width=1600 if status is ImageStatus.COMPLETED else None,
        height=900 if status is ImageStatus.COMPLETED else None,
        error_code=None if status is ImageStatus.COMPLETED else "unsupported_format",
        error_message=None if status is ImageStatus.COMPLETED else "Not an image.",
    )
    event = Presenter("https://cdn.example.test").event(record)

    backend.publisher.publish(event)

    assert backend.delivered_events() == [event]
    assert backend.delivered_events() == []
