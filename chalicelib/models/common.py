"""Types shared by the request, domain and response models."""

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

ULID_PATTERN = r"^[0-9A-HJKMNP-TV-Z]{26}$"
# Legacy gallery rows keep their UUIDs as ids.
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
IMAGE_ID_PATTERN = f"{ULID_PATTERN}|{UUID_PATTERN}"
IMAGE_ID_RE = re.compile(IMAGE_ID_PATTERN)

ImageId = Annotated[str, Field(pattern=IMAGE_ID_PATTERN, examples=["01JD3ZK4Q8N6W2T1R5Y7B9C0DE"])]
UserId = Annotated[str, Field(min_length=1, max_length=128)]

ALLOWED_CONTENT_TYPES: tuple[str, ...] = ("image/jpeg", "image/png", "image/webp", "image/gif")


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
