"""Response bodies of API.md. Optional fields appear only when they have a value."""

from typing import Annotated, Any, Literal

from pydantic import Field, WithJsonSchema

from chalicelib.models.common import CamelModel, ImageStatus


def _absent(value: Any) -> bool:
    return value is None


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)  # the False sentinel is not a wire value


def _unknown(value: Any) -> bool:
    """``False`` stands for "not known" where ``None`` is a value the wire shows as null."""
    return value is False


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


class RenditionOut(CamelModel):
    width: int
    height: int
    format: Literal["webp", "avif"]
    url: str
    bytes: int = Field(description="The rendition's size in bytes.")


_RENDITIONS = (
    "The responsive ladder, smallest first: the image fitted inside 320, 640, 1024, 1600 and 2048 px, never "
    "enlarged; WebP, then AVIF where the stage enables it. A URL's bytes never change. Completed images only; "
    "absent on images rendered before the ladder."
)
_SRCSET = "The WebP ladder as an HTML srcset value with w descriptors."
_THUMBHASH = "The image's ThumbHash, standard base64 (thumbhash.js decodes it)."
_DOMINANT = "The image's most common colour, sRGB #rrggbb."
_RENDITION_VERSION = "The rendition spec the image was rendered with (absent: before the ladder)."
_DUPLICATE_OF = (
    "The id of the owner's earliest still-existing completed image that is the same photo, else null. "
    "Advisory; never another user's image. Absent on images rendered before duplicates were detected."
)


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
    renditions: list[RenditionOut] | None = Field(default=None, exclude_if=_absent, description=_RENDITIONS)
    srcset: str | None = Field(default=None, exclude_if=_absent, description=_SRCSET)
    thumbhash: str | None = Field(default=None, exclude_if=_absent, description=_THUMBHASH)
    dominant_color: str | None = Field(
        default=None, exclude_if=_absent, pattern=r"^#[0-9a-f]{6}$", description=_DOMINANT
    )
    rendition_version: int | None = Field(default=None, exclude_if=_absent, description=_RENDITION_VERSION)
    # Null is a value here ("no duplicate"); absent means "not known" (an older record).
    duplicate_of: Annotated[
        str | Literal[False] | None,
        WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "null"}], "description": _DUPLICATE_OF}),
    ] = Field(default=False, exclude_if=_unknown, json_schema_extra=_no_default)
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
    renditions: list[RenditionOut] | None = Field(default=None, exclude_if=_absent, description=_RENDITIONS)
    srcset: str | None = Field(default=None, exclude_if=_absent, description=_SRCSET)
    thumbhash: str | None = Field(default=None, exclude_if=_absent, description=_THUMBHASH)
    dominant_color: str | None = Field(default=None, exclude_if=_absent, description=_DOMINANT)
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
