"""Conditional upserts of imported (legacy) image records, plus the batch reads and writes
the backfill and the verification use.

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
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar, cast

from botocore.exceptions import ClientError
from pydantic.alias_generators import to_camel
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from chalicelib.errors import ConditionFailed, TransientFailure
from chalicelib.models.domain import ImageRecord
from chalicelib.repositories.dynamo import error_code, from_item, get_consistent, to_value, translated_errors
from chalicelib.repositories.images import item_to_record, record_to_item
from chalicelib.repositories.keys import image_id_of, image_key

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

T = TypeVar("T")

BATCH_GET_LIMIT = 100  # DynamoDB's BatchGetItem limit
BATCH_WRITE_LIMIT = 25  # DynamoDB's BatchWriteItem limit
TRANSACT_WRITE_LIMIT = 100  # DynamoDB's TransactWriteItems limit (actions per request)
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


class UnprocessedItems(TransientFailure):
    """DynamoDB left part of a batch unprocessed (throttling); the rest is retried."""


_CREATE_CONDITION = "attribute_not_exists(PK)"
_REPLACE_CONDITION = (
    "#updatedAt = :seenUpdatedAt AND #version = :seenVersion AND attribute_not_exists(deletedAt)"
    " AND attribute_exists(#legacyImageKey) AND #userId = :userId"
)
# DynamoDB refusing the request itself, whatever rows it carries: credentials, permissions,
# the table. Not a row's fault, so never "this row failed": the caller must stop.
REQUEST_REFUSALS = frozenset(
    {
        "AccessDeniedException",
        "AccessDenied",
        "UnrecognizedClientException",
        "ExpiredTokenException",
        "ExpiredToken",
        "RequestExpired",
        "InvalidSignatureException",
        "IncompleteSignatureException",
        "MissingAuthenticationTokenException",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "ResourceNotFoundException",
    }
)


def refuses_the_request(exc: ClientError) -> bool:
    """Whether DynamoDB refused the request for the caller's sake (``REQUEST_REFUSALS``)."""
    return error_code(exc) in REQUEST_REFUSALS


# Cancellation reasons of a transaction that the same transaction may pass when retried.
_TRANSIENT_CANCELLATIONS = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})


@contextmanager
def _write_errors() -> Iterator[None]:
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


def chunked[V](values: Sequence[V], size: int) -> Iterator[Sequence[V]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


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

    # -- one record ----------------------------------------------------------------------

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
            with _write_errors():
                self._client.put_item(**arguments)

        self._retry(put)

    def _current(self, image_id: str, item: dict[str, Any] | None) -> ImageRecord | None:
        if item:
            return item_to_record(item)

        current = self._retry(lambda: get_consistent(self._client, self._table, image_key(image_id)))
        return item_to_record(current) if current else None

    def delete_if_unchanged(self, image_id: str, updated_at: str) -> bool:
        """Delete the record only while it is still the one written with ``updated_at``,
        and not being deleted through the service (that delete finishes it, and the
        tombstone it leaves must stay)."""

        def delete() -> None:
            with _write_errors():
                self._client.delete_item(
                    TableName=self._table,
                    Key=image_key(image_id),
                    ConditionExpression="#updatedAt = :written AND attribute_not_exists(deletedAt)",
                    ExpressionAttributeNames={"#updatedAt": "updatedAt"},
                    ExpressionAttributeValues={":written": to_value(updated_at)},
                )

        try:
            self._retry(delete)
        except ConditionFailed:
            return False
        return True

    # -- batches -------------------------------------------------------------------------

    def put_all_if_unchanged(self, writes: Sequence[tuple[ImageRecord, StoredVersion | None]]) -> bool:
        """Write each record on condition that its stored record is still the one seen
        (``None``: no record; else that ``updatedAt`` and ``version``, not being deleted,
        imported, with the record's owner), all in one TransactWriteItems: the same guard
        as ``upsert``'s, for up to 100 rows a request. Each record must already carry the
        version it is to be stored with.

        True when every record is written. False when DynamoDB refused the transaction
        without writing anything (all or nothing): a condition failed (another writer got
        in between) or an item or the request was refused; the caller then decides row by
        row (``upsert``). A refusal of the caller (``REQUEST_REFUSALS``: credentials,
        permissions, the table) is not about any row: its ``ClientError`` is raised.
        Throttling and conflicts with other transactions are retried
        (``TransientFailure``) with the same ClientRequestToken, so a retry of a
        transaction that was applied but not acknowledged is not applied twice.
        """
        if not writes:
            return True
        if len(writes) > TRANSACT_WRITE_LIMIT:
            raise ValueError(f"at most {TRANSACT_WRITE_LIMIT} records per transaction, got {len(writes)}")
        actions = [{"Put": self._guarded_put(record, seen)} for record, seen in writes]
        token = uuid.uuid4().hex  # one per transaction, kept across its retries

        def transact() -> bool:
            try:
                with translated_errors():
                    self._client.transact_write_items(TransactItems=actions, ClientRequestToken=token)  # type: ignore[arg-type]
            except ClientError as exc:
                if refuses_the_request(exc):
                    raise
                reasons = {str(r.get("Code")) for r in exc.response.get("CancellationReasons", [])} - {"None"}
                cancelled = error_code(exc) == "TransactionCanceledException"
                if cancelled and reasons and reasons <= _TRANSIENT_CANCELLATIONS:
                    raise TransientFailure(f"transaction cancelled: {', '.join(sorted(reasons))}") from exc
                return False
            return True

        return self._retry(transact)

    def stored_versions(self, image_ids: Iterable[str], with_digest: bool = False) -> dict[str, StoredVersion]:
        """``updatedAt``/``version`` of the stored records among ``image_ids`` (strongly
        consistent), and with ``with_digest`` their ``content_digest`` (the row's fields
        are read too: more bytes, the same read units, which count the whole item)."""
        found: dict[str, StoredVersion] = {}
        wanted = ["PK", "updatedAt", "version", "deletedAt", "userId", "legacyImageKey"]
        if with_digest:
            wanted += ["id", *(to_camel(name) for name in ROW_FIELDS)]
        names = {f"#p{index}": name for index, name in enumerate(dict.fromkeys(wanted))}
        for item in self._batch_get(list(image_ids), ", ".join(names), names):
            values = from_item(item)
            image_id = image_id_of(str(values["PK"]))
            digest = None
            if with_digest and "deletedAt" not in values:
                digest = content_digest(item_to_record(item))
            found[image_id] = StoredVersion(
                updated_at=str(values.get("updatedAt", "")),
                version=int(values.get("version", 1)),
                deleted="deletedAt" in values,
                user_id=values.get("userId"),
                imported="legacyImageKey" in values,
                digest=digest,
            )
        return found

    def imported_ids_page(
        self, segment: int, segments: int, start: dict[str, Any] | None
    ) -> tuple[list[str], dict[str, Any] | None]:
        """One page of segment ``segment`` of a parallel Scan of ``segments``: the ids of
        the live imported records (``legacyImageKey``, not being deleted, not a
        tombstone), and the key to go on from (``None`` at the segment's end).

        Eventually consistent and projected on the key, but a Scan reads (and is billed
        for) every item of the table whatever the filter keeps (docs/migration.md).
        """
        arguments: dict[str, Any] = {
            "TableName": self._table,
            "FilterExpression": "attribute_exists(legacyImageKey) AND attribute_not_exists(deletedAt)",
            "ProjectionExpression": "PK",
            "Segment": segment,
            "TotalSegments": segments,
        }
        if start is not None:
            arguments["ExclusiveStartKey"] = start

        def scan() -> dict[str, Any]:
            with translated_errors():
                return cast(dict[str, Any], self._client.scan(**arguments))

        response = self._retry(scan)
        ids = [image_id_of(str(from_item(item)["PK"])) for item in response.get("Items", [])]
        return ids, response.get("LastEvaluatedKey")

    def get_many(self, image_ids: Iterable[str], fields: Sequence[str] = ()) -> dict[str, ImageRecord]:
        """The stored records among ``image_ids`` (strongly consistent BatchGetItem).

        ``fields`` (ImageRecord field names) limits what is read; it must include the
        record's required fields.
        """
        projection = None
        names: dict[str, str] = {}
        if fields:
            names = {f"#p{index}": to_camel(name) for index, name in enumerate(dict.fromkeys(["id", *fields]))}
            projection = ", ".join(names)
        items = self._batch_get(list(image_ids), projection, names)
        records = (item_to_record(item) for item in items)
        return {record.id: record for record in records}

    def _batch_get(
        self, image_ids: Sequence[str], projection: str | None, names: dict[str, str]
    ) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for chunk in chunked(list(dict.fromkeys(image_ids)), BATCH_GET_LIMIT):
            request: dict[str, Any] = {"Keys": [image_key(image_id) for image_id in chunk], "ConsistentRead": True}
            if projection:
                request["ProjectionExpression"] = projection
            if names:
                request["ExpressionAttributeNames"] = names
            pending: dict[str, Any] = {self._table: request}

            def get_batch() -> None:
                nonlocal pending
                with translated_errors():
                    response = self._client.batch_get_item(RequestItems=pending)
                items.extend(response.get("Responses", {}).get(self._table, []))
                pending = dict(response.get("UnprocessedKeys") or {})
                if pending.get(self._table, {}).get("Keys"):
                    raise UnprocessedItems("BatchGetItem left keys unprocessed")

            self._retry(get_batch)
        return items

    def put_many(self, records: Sequence[ImageRecord]) -> None:
        """Unconditional BatchWriteItem puts, 25 at a time, unprocessed items retried.

        No conditions are possible here: callers decide beforehand that each record may
        be written (see ``migration/backfill.py``).
        """
        for chunk in chunked(records, BATCH_WRITE_LIMIT):
            pending: list[dict[str, Any]] = [{"PutRequest": {"Item": record_to_item(record)}} for record in chunk]

            def write_batch() -> None:
                nonlocal pending
                with translated_errors():
                    response = self._client.batch_write_item(RequestItems={self._table: pending})  # type: ignore[dict-item]
                pending = cast(list[dict[str, Any]], response.get("UnprocessedItems", {}).get(self._table, []))
                if pending:
                    raise UnprocessedItems(f"BatchWriteItem left {len(pending)} item(s) unprocessed")

            self._retry(write_batch)
