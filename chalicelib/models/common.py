"""Types shared by the request, domain and response models."""

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from chalicelib.models.user_ids import MAX_USER_ID_LENGTH, USER_ID_RULE, user_id_problem

# What a validation error says instead of a pattern: clients read "must ...", not a
# regular expression (chalicelib.api.http turns pattern errors into these words).
_PATTERN_MESSAGES: dict[str, str] = {}
UNDESCRIBED_PATTERN_MESSAGE = "has characters that are not allowed here"


def described_pattern(pattern: str, message: str) -> str:
    """``pattern``, with ``message`` (e.g. "must not be blank") as what a value that does
    not match it is told."""
    _PATTERN_MESSAGES[pattern] = message
    return pattern


def pattern_message(pattern: str) -> str:
    """The words for a value that does not match ``pattern`` (never the pattern itself)."""
    return _PATTERN_MESSAGES.get(pattern, UNDESCRIBED_PATTERN_MESSAGE)


ULID_PATTERN = r"^[0-9A-HJKMNP-TV-Z]{26}$"
# Legacy gallery rows keep their UUIDs as ids.
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
IMAGE_ID_PATTERN = described_pattern(
    f"{ULID_PATTERN}|{UUID_PATTERN}", "must be an image id (a 26-character ULID or a lower-case UUID)"
)
IMAGE_ID_RE = re.compile(IMAGE_ID_PATTERN)

ImageId = Annotated[str, Field(pattern=IMAGE_ID_PATTERN, examples=["01JD3ZK4Q8N6W2T1R5Y7B9C0DE"])]


def _usable_user_id(value: str) -> str:
    problem = user_id_problem(value)
    if problem is not None:
        # A custom error: its message is the phrase itself, without pydantic's "Value error, ".
        raise PydanticCustomError("invalid_user_id", problem)
    return value


UserId = Annotated[
    str,
    Field(min_length=1, max_length=MAX_USER_ID_LENGTH, description=f"A user id: {USER_ID_RULE}."),
    AfterValidator(_usable_user_id),
]

ALLOWED_CONTENT_TYPES: tuple[str, ...] = (
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/gif",
    "image/heic",
    "image/heif",
    "image/avif",
)


class ImageStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    EXPIRED = "expired"

    @property
    def is_terminal(self) -> bool:
        return self in (ImageStatus.COMPLETED, ImageStatus.FAILED, ImageStatus.EXPIRED)


class CamelModel(BaseModel):
    """Wire models: camelCase on the wire, snake_case in Python.

    ``defer_build``: every Lambda function imports the whole app but uses only a few of its
    models, so each model builds its validator on first use, not on every cold start.
    """

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True, defer_build=True)


def utc_now() -> datetime:
    return datetime.now(UTC)


def format_time(moment: datetime) -> str:
    """RFC 3339 UTC with a ``Z`` and millisecond precision (sorts as text)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def is_image_id(value: str) -> bool:
    return IMAGE_ID_RE.fullmatch(value) is not None
