"""The backfill's and the verification's batch operations on imported records: the
import endpoint's ``ImportRepository`` (its conditions and item layout) plus guarded
deletes, TransactWriteItems of many guarded puts, BatchGetItem and BatchWriteItem, and
the Scan of imported ids. Runs beside the legacy gallery, never in Lambda.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, cast

from botocore.exceptions import ClientError
from pydantic.alias_generators import to_camel

from chalicelib.errors import ConditionFailed, TransientFailure
from chalicelib.models.domain import ImageRecord
from chalicelib.repositories.dynamo import error_code, from_item, to_value, translated_errors
from chalicelib.repositories.images import item_to_record, record_to_item
from chalicelib.repositories.imports import (
    ROW_FIELDS,
    ImportRepository,
    StoredVersion,
    content_digest,
    write_errors,
)
from chalicelib.repositories.keys import image_id_of, image_key

BATCH_GET_LIMIT = 100  # DynamoDB's BatchGetItem limit
BATCH_WRITE_LIMIT = 25  # DynamoDB's BatchWriteItem limit
TRANSACT_WRITE_LIMIT = 100  # DynamoDB's TransactWriteItems limit (actions per request)


class UnprocessedItems(TransientFailure):
    """DynamoDB left part of a batch unprocessed (throttling); the rest is retried."""


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


def chunked[V](values: Sequence[V], size: int) -> Iterator[Sequence[V]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


class BatchImportRepository(ImportRepository):
    """``ImportRepository`` with the batches the backfill and the verification need."""

    def delete_if_unchanged(self, image_id: str, updated_at: str) -> bool:
        """Delete the record only while it is still the one written with ``updated_at``,
        and not being deleted through the service (that delete finishes it, and the
        tombstone it leaves must stay)."""

        def delete() -> None:
            with write_errors():
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
