"""Conditional upserts of imported (legacy) image records: the import endpoint's write.
The backfill's and the verification's batch reads and writes build on it in
``migration/batch_repository.py``, outside the Lambda package.

The item layout is ``chalicelib.repositories.images``'s (``record_to_item``,
``item_to_record``) and the keys are ``chalicelib.repositories.keys``'s (``image_key``,
``image_id_of``): this module never spells a key itself.

Newer wins: an import replaces a stored record only when its ``updatedAt`` is later.
``updatedAt`` values are RFC 3339 UTC strings of one fixed width, so they compare as text.

An import only ever replaces what an import wrote, for the same owner: a record the
service created itself (no ``legacyImageKey``: every imported record has one) or one
owned by another user is never written over (``CONFLICT``). Both rules are conditions of
the write itself, so they hold for the backfill's transactions too, whatever the caller
read before.

An image deleted through the service stays deleted: its record is kept as a tombstone
(``deletedAt``; see ``ImageQueries.finish_delete``) that no import replaces (``DELETED``),
so a backfill row from an older snapshot or a late dual-write cannot bring it back.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from botocore.exceptions import ClientError
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from chalicelib.errors import ConditionFailed, TransientFailure
from chalicelib.models.domain import ImageRecord
from chalicelib.repositories.dynamo import error_code, get_consistent, to_value, translated_errors
from chalicelib.repositories.images import item_to_record, record_to_item
from chalicelib.repositories.keys import image_key

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

T = TypeVar("T")

_MAX_RACES = 5  # a conditional upsert that keeps losing to concurrent writers gives up


class UpsertOutcome(StrEnum):
    CREATED = "created"  # no record before
    UPDATED = "updated"  # an older record was replaced
    UNCHANGED = "unchanged"  # the stored record has the same updatedAt: nothing written
    STALE = "stale"  # the stored record is newer: nothing written
    DELETED = "deleted"  # the image was deleted through the service (a tombstone): nothing written
    CONFLICT = "conflict"  # the stored record was not imported, or has another owner: nothing written


class UpsertResult(NamedTuple):
    outcome: UpsertOutcome
    record: ImageRecord  # the record the table holds now


class StoredVersion(NamedTuple):
    """The parts of a stored record that decide whether an import may replace it."""

    updated_at: str
    version: int
    deleted: bool
    # Who owns it and whether an import made it: an import may replace only its own kind.
    user_id: str | None = None
    imported: bool = True
    # ``content_digest`` of the stored record, when asked for (``stored_versions``).
    digest: str | None = None


_CREATE_CONDITION = "attribute_not_exists(PK)"
_REPLACE_CONDITION = (
    "#updatedAt = :seenUpdatedAt AND #version = :seenVersion AND attribute_not_exists(deletedAt)"
    " AND attribute_exists(#legacyImageKey) AND #userId = :userId"
)


@contextmanager
def write_errors() -> Iterator[None]:
    """``translated_errors``, and a write refused because a transaction in progress (the
    conditional backfill's) holds the same item is worth a retry, like throttling."""
    try:
        with translated_errors():
            yield
    except ClientError as exc:
        if error_code(exc) == "TransactionConflictException":
            raise TransientFailure("The image is being written by a transaction. Retry.") from exc
        raise


def default_retrying() -> Retrying:
    """A few quick attempts: enough for an API request (botocore retries underneath too)."""
    return Retrying(
        retry=retry_if_exception_type(TransientFailure),
        stop=stop_after_attempt(3),
        wait=wait_random_exponential(multiplier=0.05, max=0.5),
        reraise=True,
    )


# Every field a legacy row determines (the verification compares the same ones; ``version``
# and ``uploadedAt`` are the service's).
ROW_FIELDS: tuple[str, ...] = (
    "user_id",
    "status",
    "album_id",
    "title",
    "description",
    "tags",
    "original_filename",
    "content_type",
    "file_size",
    "legacy_image_key",
    "legacy_thumbnail_key",
    "width",
    "height",
    "created_at",
    "updated_at",
)


def content_digest(record: ImageRecord) -> str:
    """A hash of the fields a legacy row determines: two records with the same
    ``updatedAt`` (updates in the same millisecond) may still differ in content."""
    values = record.model_dump(mode="json", include=set(ROW_FIELDS))
    text = json.dumps([values.get(name) for name in ROW_FIELDS], separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def may_replace(current: ImageRecord, record: ImageRecord) -> bool:
    """Whether an import of ``record`` may ever replace ``current``: only a record an import
    wrote (it has a legacy key; the service's own records never do), for the same owner."""
    return current.legacy_image_key is not None and current.user_id == record.user_id


class ImportRepository:
    def __init__(self, client: DynamoDBClient, table_name: str, retrying: Retrying | None = None) -> None:
        self._client = client
        self._table = table_name
        self._retrying = retrying or default_retrying()

    def _retry(self, operation: Callable[[], T]) -> T:
        return self._retrying.copy()(operation)

    def upsert(self, record: ImageRecord, repair_same_timestamp: bool = False) -> UpsertResult:
        """Create the record, or replace an older one; never replace a newer one, nor one
        that was not imported or that another user owns (``CONFLICT``, decided before the
        timestamps so that it says nothing about the stored record), nor one deleted
        through the service (``DELETED``, whatever the timestamps).

        ``repair_same_timestamp`` (the backfill's --restart and --retry-failures, whose rows
        are PostgreSQL's): a stored record with the same ``updatedAt`` but other content
        (``content_digest``: two updates within one millisecond) is replaced too. The
        endpoint never does: it cannot tell which of two such writes is the later.

        Usually one conditional PutItem. When a record exists, a second PutItem replaces it
        on condition that it is still the one just seen (same updatedAt and version, still
        imported, same owner), and ``version`` goes up by one so PATCH clients holding the
        old version get a 409.
        """
        candidate = record.model_copy(update={"version": 1})
        for _ in range(_MAX_RACES):
            try:
                self._put(candidate, None)
                return UpsertResult(UpsertOutcome.CREATED, candidate)
            except ConditionFailed as exc:
                current = self._current(record.id, exc.item)
            if current is None:
                continue  # deleted in between: try to create it again
            if not may_replace(current, record):
                return UpsertResult(UpsertOutcome.CONFLICT, current)
            if current.deleted_at is not None:
                return UpsertResult(UpsertOutcome.DELETED, current)
            if current.updated_at > record.updated_at:
                return UpsertResult(UpsertOutcome.STALE, current)
            if current.updated_at == record.updated_at and not (
                repair_same_timestamp and content_digest(current) != content_digest(record)
            ):
                return UpsertResult(UpsertOutcome.UNCHANGED, current)
            replacement = record.model_copy(update={"version": current.version + 1})
            try:
                self._put(replacement, StoredVersion(current.updated_at, current.version, deleted=False))
                return UpsertResult(UpsertOutcome.UPDATED, replacement)
            except ConditionFailed:
                continue  # another writer got in between: look again
        raise TransientFailure("The image kept changing while it was imported. Retry.")

    def _guarded_put(self, record: ImageRecord, seen: StoredVersion | None) -> dict[str, Any]:
        """A put of ``record`` on condition that it replaces exactly what was seen: nothing,
        or the record with that ``updatedAt`` and ``version`` (not being deleted), which an
        import wrote (``legacyImageKey``) for ``record``'s owner."""
        if seen is None:
            return {"TableName": self._table, "Item": record_to_item(record), "ConditionExpression": _CREATE_CONDITION}
        return {
            "TableName": self._table,
            "Item": record_to_item(record),
            "ConditionExpression": _REPLACE_CONDITION,
            "ExpressionAttributeNames": {
                "#updatedAt": "updatedAt",
                "#version": "version",
                "#legacyImageKey": "legacyImageKey",
                "#userId": "userId",
            },
            "ExpressionAttributeValues": {
                ":seenUpdatedAt": to_value(seen.updated_at),
                ":seenVersion": to_value(seen.version),
                ":userId": to_value(record.user_id),
            },
        }

    def _put(self, record: ImageRecord, seen: StoredVersion | None) -> None:
        arguments = {**self._guarded_put(record, seen), "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}

        def put() -> None:
            with write_errors():
                self._client.put_item(**arguments)

        self._retry(put)

    def _current(self, image_id: str, item: dict[str, Any] | None) -> ImageRecord | None:
        if item:
            return item_to_record(item)

        current = self._retry(lambda: get_consistent(self._client, self._table, image_key(image_id)))
        return item_to_record(current) if current else None
