"""Presenter: records to the wire shapes of API.md; optional fields only once they apply."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.models.common import ImageStatus
from chalicelib.models.domain import ImageRecord, event_id_for
from chalicelib.services.presenter import Presenter

CDN = "https://cdn.example.test"
IMAGE_ID = "01JD3ZK4Q8N6W2T1R5Y7B9C0DE"
CREATED = "2026-03-14T09:26:53.589Z"
DONE = "2026-03-14T09:27:01.000Z"
COMPLETION_ONLY = {"width", "height", "imageUrl", "thumbnailUrl", "placeholder", "uploadedAt"}
ALWAYS = {
    "id",
    "userId",
    "status",
    "title",
    "description",
    "tags",
    "albumId",
    "originalFilename",
    "contentType",
    "fileSize",
    "format",
    "createdAt",
    "updatedAt",
    "version",
}


def record(status: ImageStatus = ImageStatus.PENDING, user_id: str = "alice", **fields: Any) -> ImageRecord:
    values: dict[str, Any] = {
        "id": IMAGE_ID,
        "user_id": user_id,
        "status": status,
        "original_filename": "castle.jpg",
        "content_type": "image/jpeg",
        "file_size": 2_480_133,
        "title": "Castle",
        "tags": ["castle"],
        "created_at": CREATED,
        "updated_at": CREATED,
    }
    values.update(fields)
    return ImageRecord(**values)


def completed(**fields: Any) -> ImageRecord:
    values: dict[str, Any] = {
        "width": 2048,
        "height": 1365,
        "placeholder": "data:image/webp;base64,UklGRg==",
        "uploaded_at": CREATED,
        "updated_at": DONE,
        "version": 2,
        "event_id": event_id_for(IMAGE_ID, ImageStatus.COMPLETED),
    }
    values.update(fields)
    return record(ImageStatus.COMPLETED, **values)


def failed() -> ImageRecord:
    return record(
        ImageStatus.FAILED,
        uploaded_at=CREATED,
        updated_at=DONE,
        version=2,
        error_code="unsupported_format",
        error_message="The file is not an image we can read.",
        event_id=event_id_for(IMAGE_ID, ImageStatus.FAILED),
    )


def dump(model: Any) -> dict[str, Any]:
    data: dict[str, Any] = model.model_dump(mode="json", by_alias=True)
    return data


@pytest.fixture
def presenter() -> Presenter:
    return Presenter(CDN + "/")


@pytest.mark.parametrize("status", [ImageStatus.PENDING, ImageStatus.PROCESSING, ImageStatus.EXPIRED])
def test_an_unfinished_image_has_no_completion_fields(presenter: Presenter, status: ImageStatus) -> None:
    # Even if a stale attribute lingers on the record, it is not shown before completion.
    out = dump(presenter.image(record(status, width=10, height=10, placeholder="data:x", uploaded_at=CREATED)))

    assert set(out) == ALWAYS
    assert out["status"] == status.value
    assert out["format"] == "webp"


def test_a_completed_image_has_every_field_with_cdn_urls(presenter: Presenter) -> None:
    out = dump(presenter.image(completed()))

    assert set(out) == ALWAYS | COMPLETION_ONLY
    assert out["imageUrl"] == f"{CDN}/images/alice/{IMAGE_ID}.webp"
    assert out["thumbnailUrl"] == f"{CDN}/images/alice/thumbnails/{IMAGE_ID}.webp"
    assert (out["width"], out["height"]) == (2048, 1365)
    assert out["placeholder"].startswith("data:image/webp;base64,")
    assert out["uploadedAt"] == CREATED
    assert out["version"] == 2
    assert out["userId"] == "alice"
    assert out["fileSize"] == 2_480_133
    assert out["originalFilename"] == "castle.jpg"


def test_a_failed_image_has_its_error_and_no_urls(presenter: Presenter) -> None:
    out = dump(presenter.image(failed()))

    assert out["error"] == {"code": "unsupported_format", "message": "The file is not an image we can read."}
    assert not COMPLETION_ONLY & set(out)


def test_urls_percent_encode_unusual_user_ids(presenter: Presenter) -> None:
    out = dump(presenter.image(completed(user_id="a b+c%é")))

    assert out["imageUrl"] == f"{CDN}/images/a%20b%2Bc%25%C3%A9/{IMAGE_ID}.webp"
    assert out["thumbnailUrl"] == f"{CDN}/images/a%20b%2Bc%25%C3%A9/thumbnails/{IMAGE_ID}.webp"


def test_the_status_of_a_pending_image_is_id_status_and_time_only(presenter: Presenter) -> None:
    assert dump(presenter.status(record())) == {"id": IMAGE_ID, "status": "pending", "updatedAt": CREATED}


def test_the_status_of_a_completed_image_has_both_urls(presenter: Presenter) -> None:
    assert dump(presenter.status(completed())) == {
        "id": IMAGE_ID,
        "status": "completed",
        "updatedAt": DONE,
        "imageUrl": f"{CDN}/images/alice/{IMAGE_ID}.webp",
        "thumbnailUrl": f"{CDN}/images/alice/thumbnails/{IMAGE_ID}.webp",
    }


def test_the_status_of_a_failed_image_has_its_error(presenter: Presenter) -> None:
    assert dump(presenter.status(failed())) == {
        "id": IMAGE_ID,
        "status": "failed",
        "updatedAt": DONE,
        "error": {"code": "unsupported_format", "message": "The file is not an image we can read."},
    }


def test_an_error_without_a_message_still_has_a_message(presenter: Presenter) -> None:
    out = dump(presenter.status(record(ImageStatus.FAILED, error_code="corrupt_image")))

    assert out["error"]["code"] == "corrupt_image"
    assert out["error"]["message"]


def test_the_completed_event_has_the_api_shape(presenter: Presenter) -> None:
    assert dump(presenter.event(completed())) == {
        "eventId": event_id_for(IMAGE_ID, ImageStatus.COMPLETED),
        "type": "image.completed",
        "occurredAt": DONE,
        "image": {
            "id": IMAGE_ID,
            "userId": "alice",
            "status": "completed",
            "imageUrl": f"{CDN}/images/alice/{IMAGE_ID}.webp",
            "thumbnailUrl": f"{CDN}/images/alice/thumbnails/{IMAGE_ID}.webp",
            "width": 2048,
            "height": 1365,
        },
    }


def test_the_failed_event_has_the_error_and_no_urls(presenter: Presenter) -> None:
    assert dump(presenter.event(failed())) == {
        "eventId": event_id_for(IMAGE_ID, ImageStatus.FAILED),
        "type": "image.failed",
        "occurredAt": DONE,
        "image": {
            "id": IMAGE_ID,
            "userId": "alice",
            "status": "failed",
            "error": {"code": "unsupported_format", "message": "The file is not an image we can read."},
        },
    }


def test_the_expired_event_is_typed_image_expired(presenter: Presenter) -> None:
    expired = record(ImageStatus.EXPIRED, event_id=event_id_for(IMAGE_ID, ImageStatus.EXPIRED))

    out = dump(presenter.event(expired))

    assert out["type"] == "image.expired"
    assert out["image"] == {"id": IMAGE_ID, "userId": "alice", "status": "expired"}


def test_the_same_record_always_gives_the_same_event(presenter: Presenter) -> None:
    assert presenter.event(completed()) == Presenter(CDN).event(completed())


@pytest.mark.parametrize(
    "unfinished",
    [
        record(ImageStatus.PENDING),
        record(ImageStatus.PROCESSING),
        record(ImageStatus.COMPLETED),  # terminal, but the transition recorded no event id
    ],
)
def test_there_is_no_event_without_a_recorded_terminal_transition(
    presenter: Presenter, unfinished: ImageRecord
) -> None:
    with pytest.raises(ValueError):
        presenter.event(unfinished)
