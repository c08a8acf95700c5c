"""The body of ``PUT /internal/images/{id}``: a legacy gallery row, in camelCase.

The import keeps the legacy data as it is. It checks structure (types, non-empty keys,
timezone-aware times) but not the limits ``POST /images`` puts on new uploads: a legacy
title longer than 200 characters is migrated as it is, not refused.
"""

from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, ConfigDict, Field, StrictInt, field_validator

from chalicelib.models.common import CamelModel, UserId, described_pattern


def _object_key(value: str) -> str:
    if value.startswith("/") or "\x00" in value:
        raise ValueError("must be an S3 object key without a leading '/'")
    return value


ObjectKey = Annotated[str, Field(min_length=1, max_length=1024), AfterValidator(_object_key)]
MediaType = Annotated[
    str,
    Field(
        min_length=3,
        max_length=255,
        pattern=described_pattern(
            r"^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+$", "must be a media type such as 'image/jpeg'"
        ),
    ),
]
Dimension = Annotated[StrictInt, Field(ge=0, le=1_000_000)]
# S3's largest object, 5 TiB: no legacy image is larger. The bound also keeps the number
# within what DynamoDB stores (38 digits).
MAX_OBJECT_BYTES = 5 * 1024**4


class ImportImageRequest(CamelModel):
    """A legacy ``gallery_images`` row, as the dual-write and the backfill send it."""

    model_config = ConfigDict(extra="forbid")

    # The rule every user id follows (chalicelib.models.user_ids): a legacy id that would
    # break the keys and URLs built from it is refused, naming the field.
    user_id: UserId
    album_id: Annotated[str, Field(max_length=128)] | None = None
    title: Annotated[str, Field(max_length=10_000)] | None = None
    description: Annotated[str, Field(max_length=100_000)] | None = None
    tags: Annotated[list[Annotated[str, Field(max_length=1_000)]], Field(max_length=1_000)] = Field(
        default_factory=list
    )
    original_filename: Annotated[str, Field(min_length=1, max_length=1024)]
    content_type: MediaType
    file_size: Annotated[StrictInt, Field(ge=0, le=MAX_OBJECT_BYTES)]
    image_key: ObjectKey
    thumbnail_key: ObjectKey | None = None
    width: Dimension | None = None
    height: Dimension | None = None
    created_at: AwareDatetime
    updated_at: AwareDatetime

    @field_validator("album_id")
    @classmethod
    def _empty_album_is_none(cls, value: str | None) -> str | None:
        # An index key cannot be empty: a legacy '' album means "no album".
        return value or None

    @field_validator("content_type")
    @classmethod
    def _lower_case(cls, value: str) -> str:
        return value.lower()
