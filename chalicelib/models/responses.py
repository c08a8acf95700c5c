"""Response bodies of API.md. Optional fields appear only when they have a value."""

from typing import Any, Literal

from pydantic import Field

from chalicelib.models.common import CamelModel, ImageStatus


def _absent(value: Any) -> bool:
    return value is None


class ErrorDetail(CamelModel):
    field: str
    message: str


class ErrorInfo(CamelModel):
    code: str
    message: str
    request_id: str
    details: list[ErrorDetail] | None = Field(default=None, exclude_if=_absent)


class ErrorResponse(CamelModel):
    error: ErrorInfo


class ImageError(CamelModel):
    code: str
    message: str


class ImageOut(CamelModel):
    id: str
    user_id: str
    status: ImageStatus
    title: str | None
    description: str | None
    tags: list[str]
    album_id: str | None
    original_filename: str
    content_type: str
    file_size: int
    format: Literal["webp"] = "webp"
    width: int | None = Field(default=None, exclude_if=_absent)
    height: int | None = Field(default=None, exclude_if=_absent)
    image_url: str | None = Field(default=None, exclude_if=_absent)
    thumbnail_url: str | None = Field(default=None, exclude_if=_absent)
    placeholder: str | None = Field(default=None, exclude_if=_absent)
    error: ImageError | None = Field(default=None, exclude_if=_absent)
    created_at: str
    updated_at: str
    uploaded_at: str | None = Field(default=None, exclude_if=_absent)
    version: int


class ImageListOut(CamelModel):
    images: list[ImageOut]
    next_cursor: str | None


class PresignedUpload(CamelModel):
    method: Literal["POST"] = "POST"
    url: str
    fields: dict[str, str]
    expires_at: str


class CreateImageResponse(CamelModel):
    id: str
    status: ImageStatus
    status_url: str
    upload: PresignedUpload | None = Field(default=None, exclude_if=_absent)
    image: ImageOut


class StatusOut(CamelModel):
    id: str
    status: ImageStatus
    updated_at: str
    image_url: str | None = Field(default=None, exclude_if=_absent)
    thumbnail_url: str | None = Field(default=None, exclude_if=_absent)
    error: ImageError | None = Field(default=None, exclude_if=_absent)


class HealthOut(CamelModel):
    status: Literal["ok"] = "ok"


class EventImage(CamelModel):
    id: str
    user_id: str
    status: ImageStatus
    image_url: str | None = Field(default=None, exclude_if=_absent)
    thumbnail_url: str | None = Field(default=None, exclude_if=_absent)
    width: int | None = Field(default=None, exclude_if=_absent)
    height: int | None = Field(default=None, exclude_if=_absent)
    error: ImageError | None = Field(default=None, exclude_if=_absent)


class ImageEvent(CamelModel):
    """The SNS message body of API.md."""

    event_id: str
    type: Literal["image.completed", "image.failed", "image.expired"]
    occurred_at: str
    image: EventImage


class WebhookOut(CamelModel):
    id: str
    url: str
    status: Literal["pending_confirmation", "confirmed"]
    created_at: str


class WebhookListOut(CamelModel):
    webhooks: list[WebhookOut]
