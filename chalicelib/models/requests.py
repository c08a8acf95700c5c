"""Request bodies, validated with the limits of API.md."""

import hashlib
import json
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field

from chalicelib.models.common import ALLOWED_CONTENT_TYPES, CamelModel, described_pattern


def _whole_number(value: object) -> object:
    """JSON integers: 12 and 12.0 are the same number; true, "12" and 12.5 are not integers."""
    if isinstance(value, (bool, str)):
        raise ValueError("must be a whole number")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be a whole number")
        return int(value)
    return value


# The bound sits on the int itself so that the JSON schema shows it as ``minimum``.
PositiveWholeNumber = Annotated[int, Field(ge=1), BeforeValidator(_whole_number)]

# The largest version a client may send: Number.MAX_SAFE_INTEGER, the largest integer a
# JavaScript client holds exactly. Versions count edits one by one and never get near it;
# the bound keeps absurd numbers (DynamoDB numbers hold 38 digits) from reaching the table.
MAX_VERSION = 2**53 - 1
Version = Annotated[int, Field(ge=1, le=MAX_VERSION), BeforeValidator(_whole_number)]

# Printable text (no C0/C1 control characters) with at least one character that is not
# whitespace: these fields are trimmed, and must not come out empty. A pattern, so OpenAPI
# says it too. The whitespace is Unicode's White_Space, what pydantic-core's trim removes,
# less the control characters (already refused).
_CONTROL = r"\x00-\x1f\x7f-\x9f"
_SPACE = "\u0020\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
PRINTABLE_NOT_BLANK = described_pattern(
    f"^[^{_CONTROL}]*[^{_CONTROL}{_SPACE}][^{_CONTROL}]*$", "must not be blank or contain control characters"
)


def _unique_tags(tags: list[str]) -> list[str]:
    return list(dict.fromkeys(tags))


Filename = Annotated[str, Field(min_length=1, max_length=255, pattern=PRINTABLE_NOT_BLANK)]
Title = Annotated[str, Field(max_length=200)]
Description = Annotated[str, Field(max_length=2000)]
Tag = Annotated[str, Field(min_length=1, max_length=50, pattern=PRINTABLE_NOT_BLANK)]
Tags = Annotated[list[Tag], Field(max_length=20), AfterValidator(_unique_tags)]
# Any printable text: albums migrated from the legacy gallery carry names such as
# "Summer 2020", and an album id is only ever a DynamoDB attribute value (never a key path).
AlbumId = Annotated[str, Field(min_length=1, max_length=128, pattern=PRINTABLE_NOT_BLANK)]
IdempotencyKey = Annotated[
    str,
    Field(
        min_length=1, max_length=255, pattern=described_pattern(r"^[\x20-\x7e]+$", "must be printable ASCII characters")
    ),
]


class CreateImageRequest(CamelModel):
    """Body of ``POST /images``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    filename: Filename
    # Any string: the service checks it against the allow-list, so that every string outside
    # it (empty and over-long ones too) is ``unsupported_media_type``, as API.md says. A value
    # that is not a string at all is a ``validation_error``.
    content_type: Annotated[str, Field(examples=list(ALLOWED_CONTENT_TYPES))]
    size: Annotated[PositiveWholeNumber, Field(description="Exact byte size the client will upload.")]
    title: Title | None = None
    description: Description | None = None
    tags: Tags = Field(default_factory=list)
    album_id: AlbumId | None = None

    def fingerprint(self) -> str:
        """A stable hash of the request, to tell a replay from a reused Idempotency-Key."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


class UpdateImageRequest(CamelModel):
    """Body of ``PATCH /images/{id}``: any editable field, plus the version last seen."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: Title | None = None
    description: Description | None = None
    tags: Tags | None = None
    album_id: AlbumId | None = None
    version: Version | None = None

    def changes(self) -> dict[str, object]:
        """The fields the client sent (an explicit null clears title, description or album)."""
        return {name: getattr(self, name) for name in self.model_fields_set if name != "version"}


class ListImagesQuery(CamelModel):
    """Query string of ``GET /images`` (unknown parameters, such as cache-busters, are ignored)."""

    model_config = ConfigDict(extra="ignore")

    limit: Annotated[int, Field(ge=1, le=100)] = 20
    # Any string: the cursor codec bounds its length and refuses anything it did not sign
    # with ``invalid_cursor``, as API.md says (not a generic validation error).
    cursor: str | None = None
    album_id: AlbumId | None = None


class CreateWebhookRequest(CamelModel):
    """Body of ``POST /webhooks``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    url: Annotated[
        str, Field(min_length=8, max_length=2048, pattern=PRINTABLE_NOT_BLANK, examples=["https://example.com/hook"])
    ]
