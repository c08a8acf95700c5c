"""Domain errors. Each carries the API error code (API.md) and a message for the client.

Services raise these; ``chalicelib.api.http`` is the one place that turns them into
responses, and the only one that knows their HTTP status (``http.HTTP_STATUS``). Messages
are written for API clients: no AWS or library internals.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple


class FieldProblem(NamedTuple):
    field: str
    message: str


class DomainError(Exception):
    code = "internal_error"
    default_message = "Something went wrong on our side. Try again later."

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)


class ValidationFailed(DomainError):
    """An invalid request that names what is wrong: API.md gives every validation error ``details``.

    ``details`` is required; a problem of the body as a whole (not JSON, nothing to update)
    names the field ``body``. An empty sequence still answers with one detail, on ``body``.
    """

    code = "validation_error"
    default_message = "The request is not valid."

    def __init__(self, message: str, details: Sequence[FieldProblem]) -> None:
        super().__init__(message)
        self.details = tuple(details) or (FieldProblem(field="body", message=self.message),)


class UnsupportedMediaType(DomainError):
    code = "unsupported_media_type"


class PayloadTooLarge(DomainError):
    code = "payload_too_large"


class Unauthenticated(DomainError):
    code = "unauthorized"
    default_message = "A valid bearer token is required."


class Forbidden(DomainError):
    code = "forbidden"
    default_message = "You do not have access to this resource."


# The most of a client's id an error message quotes: every id the service issues fits
# (ULIDs have 26 characters, legacy UUIDs 36); a longer one is cut, so a 404 for a path of
# 10,000 characters does not send them back.
MAX_QUOTED_ID_LENGTH = 40


def quoted_id(value: str) -> str:
    """``value`` as a message may quote it: at most ``MAX_QUOTED_ID_LENGTH`` characters
    (a longer id ends in "…" inside the quotes), control characters escaped by ``repr``."""
    shown = repr(value[:MAX_QUOTED_ID_LENGTH])
    if len(value) > MAX_QUOTED_ID_LENGTH:
        shown = f"{shown[:-1]}…{shown[-1]}"
    return shown


class NotFound(DomainError):
    code = "not_found"
    default_message = "No such resource."

    @classmethod
    def of(cls, kind: str, identifier: str) -> NotFound:
        """The 404 of an id the client sent: "No image with id '01J…'." (``quoted_id``)."""
        return cls(f"No {kind} with id {quoted_id(identifier)}.")


class InvalidCursor(DomainError):
    code = "invalid_cursor"
    default_message = "The cursor is not valid for this query. Start again without a cursor."


class VersionConflict(DomainError):
    code = "version_conflict"
    default_message = "The image was changed since you read it. Fetch it again and retry with its version."


class PreconditionRequired(DomainError):
    code = "precondition_required"
    default_message = "Send the version you last saw, in the body's 'version' or an If-Match header."


class WebhookLimitReached(DomainError):
    code = "webhook_limit_reached"


class IdempotencyKeyReused(DomainError):
    code = "idempotency_key_reused"
    default_message = "This Idempotency-Key was already used with a different request body."


class StaleUpdate(DomainError):
    """An import older than the stored record (``PUT /internal/images/{id}``)."""

    code = "stale_update"
    default_message = "A newer version of this image is already stored; the import changed nothing."


class TransientFailure(DomainError):
    """An AWS dependency failed in a way a retry may fix (throttling, 5xx, timeouts)."""

    code = "service_unavailable"
    default_message = "The service is temporarily unavailable. Retry with backoff."


class ConditionFailed(Exception):
    """A conditional write lost: the item is not in the state the write expected.

    ``item`` is the item as it was (DynamoDB attribute values) when the write asked for it
    with ``ReturnValuesOnConditionCheckFailure``, else None.
    """

    def __init__(self, message: str = "condition failed", item: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.item = item
