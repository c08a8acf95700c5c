"""Domain models: what the service stores and reasons about."""

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.models.common import ImageStatus

EventType = Literal["image.completed", "image.failed", "image.expired"]

_EVENT_NAMESPACE = uuid.UUID("5f0e7f43-9d6c-4d52-9a43-0c2b5c1f7a11")
_EVENT_TYPE_BY_STATUS: dict[ImageStatus, EventType] = {
    ImageStatus.COMPLETED: "image.completed",
    ImageStatus.FAILED: "image.failed",
    ImageStatus.EXPIRED: "image.expired",
}


def upload_key(user_id: str, image_id: str) -> str:
    return f"uploads/{user_id}/{image_id}"


def rendition_key(user_id: str, image_id: str) -> str:
    return f"images/{user_id}/{image_id}.webp"


def thumbnail_key(user_id: str, image_id: str) -> str:
    return f"images/{user_id}/thumbnails/{image_id}.webp"


def event_type_for(status: ImageStatus) -> EventType:
    return _EVENT_TYPE_BY_STATUS[status]


def event_id_for(image_id: str, status: ImageStatus) -> str:
    """The id of the one logical event of a terminal transition.

    Derived, not random: an image reaches one terminal state once, so every delivery
    or re-publication of that transition carries the same id.
    """
    return str(uuid.uuid5(_EVENT_NAMESPACE, f"{image_id}:{event_type_for(status)}"))


class ImageRecord(BaseModel):
    """An image's metadata record (one DynamoDB item).

    The domain models build on first use, as the wire models do (see ``CamelModel``).
    """

    model_config = ConfigDict(frozen=True, defer_build=True)

    id: str
    user_id: str
    status: ImageStatus
    original_filename: str
    content_type: str
    file_size: int
    title: str | None = None
    description: str | None = None
    tags: list[str] = Field(default_factory=list)
    album_id: str | None = None
    created_at: str
    updated_at: str
    version: int = 1
    upload_expires_at: str | None = None
    uploaded_at: str | None = None
    width: int | None = None
    height: int | None = None
    placeholder: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    event_id: str | None = None
    # When the terminal transition happened: the event's occurredAt, fixed like its id (a
    # later PATCH moves updated_at, and a re-published copy must stay byte-identical).
    event_occurred_at: str | None = None
    event_published: bool = False
    deleted_at: str | None = None  # a delete is under way; the record reads as gone
    # Images migrated from the legacy gallery keep their objects at their legacy keys.
    legacy_image_key: str | None = None
    legacy_thumbnail_key: str | None = None

    @property
    def upload_key(self) -> str:
        return upload_key(self.user_id, self.id)

    @property
    def rendition_key(self) -> str:
        return self.legacy_image_key or rendition_key(self.user_id, self.id)

    @property
    def thumbnail_key(self) -> str:
        return self.legacy_thumbnail_key or self.legacy_image_key or thumbnail_key(self.user_id, self.id)


class ProcessingOutcome(BaseModel):
    """What processing learned about an upload, written by the terminal transition."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    status: Literal[ImageStatus.COMPLETED, ImageStatus.FAILED]
    width: int | None = None
    height: int | None = None
    placeholder: str | None = None
    error_code: str | None = None
    error_message: str | None = None


class IdempotencyRecord(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    user_id: str
    key: str
    image_id: str
    fingerprint: str
    expires_at_epoch: int


class WebhookRecord(BaseModel):
    """A user's webhook: an SNS HTTP(S) subscription filtered to the user's events."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    id: str
    user_id: str
    url: str
    subscription_arn: str
    created_at: str
