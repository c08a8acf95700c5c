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


#: The rendition spec new renditions are made under (the ladder, formats, quality): part of
#: every rendition key, so renditions made under another spec get other keys (a URL's bytes
#: never change) and a re-render knows which records are behind. v1: one 2048 px WebP and
#: the thumbnail at ``rendition_key``/``thumbnail_key``; v2: the responsive ladder.
RENDITION_VERSION = 2

#: The boxes of the ladder (processors.pipeline.LADDER, kept here so the API never imports
#: Pillow): each rendition is the image fitted inside one of them, never enlarged.
LADDER_BOXES: tuple[int, ...] = (320, 640, 1024, 1600, 2048)
RENDITION_FORMATS: tuple[str, ...] = ("webp", "avif")


def ladder_box(width: int, height: int) -> int:
    """The ladder box a rendition of this size was fitted inside: the smallest box not
    below its long edge (a rendition at the original size takes the first box above it)."""
    long_edge = max(width, height)
    return next((box for box in LADDER_BOXES if box >= long_edge), LADDER_BOXES[-1])


def ladder_key(user_id: str, image_id: str, version: int, box: int, image_format: str) -> str:
    """``images/{userId}/{imageId}/v{version}/{box}.{format}``: one key per rendition spec,
    box and format, so the keys an image may own are a short known list (``derived_keys``)."""
    return f"images/{user_id}/{image_id}/v{version}/{box}.{image_format}"


def versioned_thumbnail_key(user_id: str, image_id: str, version: int) -> str:
    return f"images/{user_id}/{image_id}/v{version}/thumbnail.webp"


def spec_keys(user_id: str, image_id: str, version: int) -> list[str]:
    """Every key a rendering under ``version`` may write (ladder x formats, thumbnail)."""
    keys = [ladder_key(user_id, image_id, version, box, f) for f in RENDITION_FORMATS for box in LADDER_BOXES]
    return [*keys, versioned_thumbnail_key(user_id, image_id, version)]


def event_type_for(status: ImageStatus) -> EventType:
    return _EVENT_TYPE_BY_STATUS[status]


def event_id_for(image_id: str, status: ImageStatus) -> str:
    """The id of the one logical event of a terminal transition.

    Derived, not random: an image reaches one terminal state once, so every delivery
    or re-publication of that transition carries the same id.
    """
    return str(uuid.uuid5(_EVENT_NAMESPACE, f"{image_id}:{event_type_for(status)}"))


class Rendition(BaseModel):
    """One stored rendition of the ladder."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    width: int
    height: int
    format: Literal["webp", "avif"]
    key: str
    bytes: int


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
    # A re-render could not read or decode the original (a legacy image, as a rule): the
    # record keeps serving what it served; the code and when say why (issue 18).
    rerender_error: str | None = None
    rerender_error_at: str | None = None
    # Images migrated from the legacy gallery keep their objects at their legacy keys.
    legacy_image_key: str | None = None
    legacy_thumbnail_key: str | None = None
    # v1.1 (records written before have none of these; readers treat them as absent).
    renditions: list[Rendition] | None = None  # the ladder: WebP smallest first, then AVIF
    rendition_version: int | None = None
    thumbhash: str | None = None
    dominant_color: str | None = None
    perceptual_hash: str | None = None
    duplicate_of: str | None = None

    @property
    def upload_key(self) -> str:
        return upload_key(self.user_id, self.id)

    @property
    def webp_renditions(self) -> list[Rendition]:
        return [r for r in self.renditions or () if r.format == "webp"]

    @property
    def rendition_key(self) -> str:
        """The largest WebP rendition (what ``imageUrl`` names)."""
        webp = self.webp_renditions
        if webp:
            return max(webp, key=lambda r: r.width).key
        return self.legacy_image_key or rendition_key(self.user_id, self.id)

    @property
    def thumbnail_key(self) -> str:
        # A re-rendered imported image serves its own thumbnail; its legacy keys stay recorded.
        if self.rendition_version is not None and self.rendition_version >= 2:
            return versioned_thumbnail_key(self.user_id, self.id, self.rendition_version)
        if self.legacy_thumbnail_key or self.legacy_image_key:
            return self.legacy_thumbnail_key or self.legacy_image_key or ""
        return thumbnail_key(self.user_id, self.id)

    @property
    def derived_keys(self) -> list[str]:
        """Every object of the image bucket this image may own, for a DELETE: what the record
        names, and every key the current spec may have written (a delivery may have written
        renditions and crashed before recording them). Deleting a missing key is a no-op."""
        keys = [self.rendition_key, self.thumbnail_key, *(r.key for r in self.renditions or ())]
        # An imported image's DELETE removes its legacy objects, re-rendered or not.
        keys += [key for key in (self.legacy_image_key, self.legacy_thumbnail_key) if key is not None]
        if self.legacy_image_key is None:
            # v1's keys too: a record re-rendered from v1 may still own them.
            keys += [rendition_key(self.user_id, self.id), thumbnail_key(self.user_id, self.id)]
        # Every image, imported ones too: a re-render may have written them and crashed.
        keys += spec_keys(self.user_id, self.id, RENDITION_VERSION)
        return list(dict.fromkeys(keys))


class ProcessingOutcome(BaseModel):
    """What processing learned about an upload, written by the terminal transition."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    status: Literal[ImageStatus.COMPLETED, ImageStatus.FAILED]
    width: int | None = None
    height: int | None = None
    placeholder: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    renditions: list[Rendition] | None = None
    rendition_version: int | None = None
    thumbhash: str | None = None
    dominant_color: str | None = None
    perceptual_hash: str | None = None
    duplicate_of: str | None = None


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
