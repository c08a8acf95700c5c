"""The image table: one item per image plus one per remembered Idempotency-Key.

Keys (single-table, as the seed data model):
  image         PK=IMAGE#<id>                        SK=METADATA
                GSI1PK=USER#<userId>   GSI1SK=UPLOADED#<createdAt>   (list a user's images)
                GSI2PK=ALBUM#<len(userId)>#<userId>#<albumId>
                                       GSI2SK=UPLOADED#<createdAt>   (list one of a user's albums)
  idempotency   PK=IDEMPOTENCY#<userId>              SK=KEY#<key>, ttl=<epoch seconds>
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from botocore.exceptions import ClientError
from pydantic.alias_generators import to_camel, to_snake

from chalicelib.errors import ConditionFailed
from chalicelib.models.common import ImageStatus, format_time, parse_time
from chalicelib.models.domain import IdempotencyRecord, ImageRecord, ProcessingOutcome
from chalicelib.repositories.dynamo import error_code, from_item, to_item, to_value, translated_errors

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

METADATA = "METADATA"
_KEY_ATTRIBUTES = frozenset({"PK", "SK", "GSI1PK", "GSI1SK", "GSI2PK", "GSI2SK", "GSI3PK", "GSI3SK", "ttl"})


class IdempotencyKeyTaken(Exception):
    """The Idempotency-Key is already remembered; ``existing`` is what it points to."""

    def __init__(self, existing: IdempotencyRecord) -> None:
        super().__init__(existing.key)
        self.existing = existing


def image_pk(image_id: str) -> str:
    return f"IMAGE#{image_id}"


def _idempotency_key(user_id: str, key: str) -> dict[str, Any]:
    # User and key in separate key attributes: both may contain '#', so joining them in
    # one string could let ("a#b", "c") and ("a", "b#c") share an item.
    return {"PK": to_value(f"IDEMPOTENCY#{user_id}"), "SK": to_value(f"KEY#{key}")}


SWEEP_SHARDS = 4
# The failure code of an image no delivery managed to process before its deadline.
STALLED_CODE = "processing_failed"
STALLED_MESSAGE = "The image could not be processed. Upload it again."
EXPIRED_MESSAGE = "The upload window closed before the file arrived. Create a new upload."


def _terminal(
    image_id: str, status: ImageStatus, event_id: str, now: str, error_code: str | None, error_message: str | None
) -> dict[str, Any]:
    """What every terminal transition writes: the status, the event (id, time, not yet
    published) and the outbox entry (due at once: the sweeper publishes the event if the
    writer cannot), with the error, if any."""
    return {
        "status": status.value,
        "updatedAt": now,
        "eventId": event_id,
        "eventOccurredAt": now,
        "eventPublished": False,
        "errorCode": error_code,
        "errorMessage": error_message,
        "GSI3PK": sweep_partition(image_id),
        "GSI3SK": now,
    }


def sweep_partition(image_id: str) -> str:
    """The sweep index is sparse and sharded, so no one partition takes every write."""
    return f"SWEEP#{int(hashlib.sha1(image_id.encode(), usedforsecurity=False).hexdigest()[:4], 16) % SWEEP_SHARDS}"


def sweep_due(record: ImageRecord) -> str | None:
    """When the scheduled sweeper must look at a record, if ever.

    A pending image: when its upload window closes (it may have to expire). A terminal one
    whose event is not yet published: at once (the sweep is the outbox's relay). A
    processing one: at its processing deadline, which ``start_processing`` sets.
    """
    if record.deleted_at is not None:
        return None
    if record.status is ImageStatus.PENDING:
        return record.upload_expires_at
    if record.status.is_terminal and not record.event_published:
        return record.updated_at
    return None


def album_partition(user_id: str, album_id: str) -> str:
    """One album of one user: album ids come from the gallery, and two users may share one.

    The owner is part of the key, so listing an album never reads (or hands out a cursor
    pointing at) another user's image; the length prefix keeps ("a#b", "c") and ("a", "b#c")
    apart, since both ids may contain '#'.
    """
    return f"ALBUM#{len(user_id)}#{user_id}#{album_id}"


def record_to_item(record: ImageRecord) -> dict[str, Any]:
    values: dict[str, Any] = {to_camel(name): value for name, value in record.model_dump(mode="json").items()}
    values.update(
        PK=image_pk(record.id),
        SK=METADATA,
        GSI1PK=f"USER#{record.user_id}",
        GSI1SK=f"UPLOADED#{record.created_at}",
    )
    if record.album_id:
        values.update(GSI2PK=album_partition(record.user_id, record.album_id), GSI2SK=f"UPLOADED#{record.created_at}")
    due = sweep_due(record)
    if due is not None:
        values.update(GSI3PK=sweep_partition(record.id), GSI3SK=due)
    return to_item(values)


def item_to_record(item: Mapping[str, Any]) -> ImageRecord:
    values = {to_snake(name): value for name, value in from_item(item).items() if name not in _KEY_ATTRIBUTES}
    return ImageRecord.model_validate(values)


class ImageRepository:
    """Reads and conditional writes of image records."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    # -- reads ---------------------------------------------------------------------

    def get(self, image_id: str) -> ImageRecord | None:
        """One strongly consistent GetItem."""
        with translated_errors():
            response = self._client.get_item(
                TableName=self._table,
                Key={"PK": to_value(image_pk(image_id)), "SK": to_value(METADATA)},
                ConsistentRead=True,
            )
        item = response.get("Item")
        return item_to_record(item) if item else None

    def get_idempotency(self, user_id: str, key: str) -> IdempotencyRecord | None:
        with translated_errors():
            response = self._client.get_item(
                TableName=self._table,
                Key=_idempotency_key(user_id, key),
                ConsistentRead=True,
            )
        item = response.get("Item")
        if not item:
            return None
        values = from_item(item)
        return IdempotencyRecord(
            user_id=values["userId"],
            key=values["key"],
            image_id=values["imageId"],
            fingerprint=values["fingerprint"],
            expires_at_epoch=values["ttl"],
        )

    # -- writes --------------------------------------------------------------------

    def create(self, record: ImageRecord, idempotency: IdempotencyRecord | None, now_epoch: int) -> None:
        """Store a new image, and its Idempotency-Key if any, in one atomic write.

        Raises ``IdempotencyKeyTaken`` when a live record of the key exists (a key whose
        TTL passed but DynamoDB has not removed yet counts as free).
        """
        put_image: dict[str, Any] = {
            "Put": {
                "TableName": self._table,
                "Item": record_to_item(record),
                "ConditionExpression": "attribute_not_exists(PK)",
            }
        }
        if idempotency is None:
            with translated_errors():
                self._client.put_item(**put_image["Put"])
            return
        put_key = {
            "Put": {
                "TableName": self._table,
                "Item": to_item(
                    {
                        "PK": f"IDEMPOTENCY#{idempotency.user_id}",
                        "SK": f"KEY#{idempotency.key}",
                        "userId": idempotency.user_id,
                        "key": idempotency.key,
                        "imageId": idempotency.image_id,
                        "fingerprint": idempotency.fingerprint,
                        "ttl": idempotency.expires_at_epoch,
                    }
                ),
                "ConditionExpression": "attribute_not_exists(PK) OR #ttl < :now",
                "ExpressionAttributeNames": {"#ttl": "ttl"},
                "ExpressionAttributeValues": {":now": to_value(now_epoch)},
            }
        }
        try:
            with translated_errors():
                self._client.transact_write_items(TransactItems=[put_image, put_key])  # type: ignore[list-item]
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise
            reasons = [reason.get("Code") for reason in exc.response.get("CancellationReasons", [])]
            if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
                existing = self.get_idempotency(idempotency.user_id, idempotency.key)
                if existing is not None:
                    raise IdempotencyKeyTaken(existing) from exc
            # Another transaction touched the same key at the same moment: the caller retries.
            raise TransactionConflict() from exc

    def refresh_upload_window(self, image_id: str, expires_at: str, now: str) -> ImageRecord:
        """Extend a pending image's upload window (an idempotent replay got a fresh URL)."""
        return self._update(
            image_id,
            set_values={"uploadExpiresAt": expires_at, "updatedAt": now, "GSI3SK": expires_at},
            expected=(ImageStatus.PENDING,),
            bump_version=False,
        )

    def start_processing(self, image_id: str, now: str, deadline: str) -> ImageRecord:
        """``pending -> processing``; a crashed attempt left ``processing`` and may resume.

        The record stays in the sweep index, due at ``deadline``: if no delivery finishes
        it by then (each crashed, timed out or went to the dead-letter queue), the sweeper
        fails it rather than leave it ``processing`` for ever. Every attempt moves it on.
        """
        return self._update(
            image_id,
            set_values={
                "status": ImageStatus.PROCESSING.value,
                "updatedAt": now,
                "uploadedAt": now,
                "GSI3PK": sweep_partition(image_id),
                "GSI3SK": deadline,
            },
            expected=(ImageStatus.PENDING, ImageStatus.PROCESSING),
            bump_version=False,
            keep_existing=("uploadedAt",),
        )

    def finish_processing(self, image_id: str, outcome: ProcessingOutcome, event_id: str, now: str) -> ImageRecord:
        """``processing -> completed|failed``, recording the outcome and its event id."""
        values = _terminal(image_id, outcome.status, event_id, now, outcome.error_code, outcome.error_message) | {
            "width": outcome.width,
            "height": outcome.height,
            "placeholder": outcome.placeholder,
        }
        # ``version`` counts metadata edits (optimistic locking for PATCH), not processing.
        return self._update(image_id, set_values=values, expected=(ImageStatus.PROCESSING,), bump_version=False)

    def expire(self, image_id: str, event_id: str, closed_before: str, now: str) -> ImageRecord:
        """``pending -> expired`` for an upload whose window closed before ``closed_before``."""
        values = _terminal(image_id, ImageStatus.EXPIRED, event_id, now, "upload_expired", EXPIRED_MESSAGE)
        return self._update(
            image_id,
            set_values=values,
            expected=(ImageStatus.PENDING,),
            bump_version=False,
            extra_condition=("uploadExpiresAt < :closedBefore", {":closedBefore": to_value(closed_before)}),
        )

    def fail_stalled(self, image_id: str, event_id: str, now: str) -> ImageRecord:
        """``processing -> failed`` for a record whose processing deadline passed."""
        values = _terminal(image_id, ImageStatus.FAILED, event_id, now, STALLED_CODE, STALLED_MESSAGE)
        return self._update(
            image_id,
            set_values=values,
            expected=(ImageStatus.PROCESSING,),
            bump_version=False,
            # The index may be behind: a delivery that started again moved the deadline on.
            extra_condition=("GSI3SK <= :now", {":now": to_value(now)}),
        )

    def postpone_sweep(self, image_id: str, due: str) -> ImageRecord:
        """Look at a pending image again at ``due`` (its upload was handed back to the queue)."""
        return self._update(image_id, set_values={"GSI3SK": due}, expected=(ImageStatus.PENDING,), bump_version=False)

    def due_for_sweep(self, partition: str, now: str, limit: int) -> list[ImageRecord]:
        """Records of one sweep partition whose due time has come, oldest first (one Query)."""
        with translated_errors():
            response = self._client.query(
                TableName=self._table,
                IndexName="GSI3",
                KeyConditionExpression="GSI3PK = :partition AND GSI3SK <= :now",
                ExpressionAttributeValues={":partition": to_value(partition), ":now": to_value(now)},
                Limit=limit,
            )
        return [item_to_record(item) for item in response.get("Items", [])]

    def mark_event_published(self, image_id: str, event_id: str) -> None:
        with translated_errors():
            self._client.update_item(
                TableName=self._table,
                Key={"PK": to_value(image_pk(image_id)), "SK": to_value(METADATA)},
                UpdateExpression="SET eventPublished = :true REMOVE GSI3PK, GSI3SK",
                ConditionExpression="eventId = :event",
                ExpressionAttributeValues={":true": to_value(True), ":event": to_value(event_id)},
            )

    def _update(
        self,
        image_id: str,
        *,
        set_values: Mapping[str, Any],
        expected: Iterable[ImageStatus],
        bump_version: bool,
        keep_existing: Iterable[str] = (),
        extra_condition: tuple[str, dict[str, Any]] | None = None,
    ) -> ImageRecord:
        names: dict[str, str] = {"#status": "status"}
        values: dict[str, Any] = {}
        assignments: list[str] = []
        removals: list[str] = []
        keep = set(keep_existing)
        for index, (attribute, value) in enumerate(set_values.items()):
            name = f"#a{index}"
            names[name] = attribute
            if value is None:
                removals.append(name)
                continue
            values[f":v{index}"] = to_value(value)
            if attribute in keep:
                assignments.append(f"{name} = if_not_exists({name}, :v{index})")
            else:
                assignments.append(f"{name} = :v{index}")
        if bump_version:
            assignments.append("#version = #version + :one")
            names["#version"] = "version"
            values[":one"] = to_value(1)
        allowed = []
        for index, status in enumerate(expected):
            values[f":s{index}"] = to_value(status.value)
            allowed.append(f":s{index}")
        expression = "SET " + ", ".join(assignments)
        if removals:
            expression += " REMOVE " + ", ".join(removals)
        condition = f"attribute_exists(PK) AND attribute_not_exists(deletedAt) AND #status IN ({', '.join(allowed)})"
        if extra_condition is not None:
            condition += f" AND {extra_condition[0]}"
            values.update(extra_condition[1])
        with translated_errors():
            response = self._client.update_item(
                TableName=self._table,
                Key={"PK": to_value(image_pk(image_id)), "SK": to_value(METADATA)},
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        return item_to_record(response["Attributes"])


class TransactionConflict(ConditionFailed):
    """A concurrent transaction on the same items won; retrying is safe."""


# Marks the record deleted and drops its index keys, so no listing shows it any more.
# It stays in the sweep index, due a few minutes on: if the DELETE stops before its last
# step (a crash, a timeout) and is not retried, the sweeper finishes it, so the renditions
# of an image its owner deleted do not stay public.
_TOMBSTONE = (
    "SET deletedAt = if_not_exists(deletedAt, :now), GSI3PK = :sweep, GSI3SK = :finishBy "
    "REMOVE GSI1PK, GSI1SK, GSI2PK, GSI2SK"
)
DELETE_FINISH_DELAY = timedelta(minutes=10)

# An imported image's finished delete: the tombstone stays this long (docs/migration.md),
# longer than any backfill or dual-write from before the delete can still arrive.
TOMBSTONE_DAYS = 90
# Set on a purged tombstone: the delete finished (objects removed); a DELETE of it is a 404.
PURGED = "purged"
# What a purged tombstone no longer keeps: the user's content. The record's required
# fields stay (every reader parses the item, then answers 404 from ``deletedAt``), the
# filename blanked; the index keys went with ``_TOMBSTONE``.
_DROPPED_ON_PURGE = (
    "title",
    "description",
    "tags",
    "albumId",
    "width",
    "height",
    "placeholder",
    "legacyThumbnailKey",
    "uploadedAt",
    "uploadExpiresAt",
    "errorCode",
    "errorMessage",
    "eventId",
    "eventOccurredAt",
)
_PURGED_NAMES = {f"#d{index}": name for index, name in enumerate(_DROPPED_ON_PURGE)}
_PURGE = (
    "SET #purged = :true, #ttl = :ttl, originalFilename = :blank REMOVE "
    + ", ".join(_PURGED_NAMES)
    + ", GSI1PK, GSI1SK, GSI2PK, GSI2SK, GSI3PK, GSI3SK"
)


class WriteRejected(ConditionFailed):
    """A conditional metadata write lost; ``current`` is the record as it was, if any."""

    def __init__(self, current: ImageRecord | None) -> None:
        super().__init__("write rejected")
        self.current = current


class Page(NamedTuple):
    records: list[ImageRecord]
    last_key: dict[str, Any] | None


class ImageQueries:
    """Listing and metadata writes (kept apart from the processing transitions above)."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def list_for_user(self, user_id: str, limit: int, start: dict[str, Any] | None, album_id: str | None) -> Page:
        """One Query on the user (GSI1) or album (GSI2) index, newest first."""
        arguments: dict[str, Any] = {
            "TableName": self._table,
            "Limit": limit,
            "ScanIndexForward": False,
        }
        if album_id is None:
            arguments.update(
                IndexName="GSI1",
                KeyConditionExpression="GSI1PK = :pk",
                ExpressionAttributeValues={":pk": to_value(f"USER#{user_id}")},
            )
        else:
            arguments.update(
                IndexName="GSI2",
                KeyConditionExpression="GSI2PK = :pk",
                ExpressionAttributeValues={":pk": to_value(album_partition(user_id, album_id))},
            )
        if start is not None:
            arguments["ExclusiveStartKey"] = start
        with translated_errors():
            response = self._client.query(**arguments)
        records = [item_to_record(item) for item in response.get("Items", [])]
        return Page(records=records, last_key=response.get("LastEvaluatedKey"))

    def update_metadata(
        self, image_id: str, user_id: str, changes: Mapping[str, Any], expected_version: int, now: str
    ) -> ImageRecord:
        """One conditional UpdateItem: owner, not being deleted, and the version last seen."""
        names: dict[str, str] = {"#version": "version", "#updatedAt": "updatedAt", "#userId": "userId"}
        values: dict[str, Any] = {
            ":expected": to_value(expected_version),
            ":one": to_value(1),
            ":now": to_value(now),
            ":me": to_value(user_id),
        }
        assignments = ["#version = #version + :one", "#updatedAt = :now"]
        removals: list[str] = []
        for index, (attribute, value) in enumerate(changes.items()):
            name = f"#f{index}"
            names[name] = to_camel(attribute)
            if value is None:
                removals.append(name)
            else:
                values[f":f{index}"] = to_value(value)
                assignments.append(f"{name} = :f{index}")
        if "album_id" in changes:
            if changes["album_id"] is None:
                removals += ["GSI2PK", "GSI2SK"]
            else:
                # The album index sorts like the user index: reuse its sort key.
                assignments += ["GSI2PK = :albumPk", "GSI2SK = GSI1SK"]
                values[":albumPk"] = to_value(album_partition(user_id, changes["album_id"]))
        expression = "SET " + ", ".join(assignments) + (" REMOVE " + ", ".join(removals) if removals else "")
        try:
            with translated_errors():
                response = self._client.update_item(
                    TableName=self._table,
                    Key={"PK": to_value(image_pk(image_id)), "SK": to_value(METADATA)},
                    UpdateExpression=expression,
                    ConditionExpression=(
                        "attribute_exists(PK) AND attribute_not_exists(deletedAt) "
                        "AND #userId = :me AND #version = :expected"
                    ),
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values,
                    ReturnValues="ALL_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
        except ConditionFailed as exc:
            raise WriteRejected(self._current(image_id, exc.item)) from exc
        return item_to_record(response["Attributes"])

    def begin_delete(self, image_id: str, user_id: str, now: str) -> ImageRecord:
        """Step 1 of a delete: tombstone the record and take it out of every listing.

        A tombstoned record reads as gone; a retried DELETE finds it and finishes the job.
        A purged tombstone (an imported image whose delete finished, see ``finish_delete``)
        is gone for good: ``WriteRejected(None)``, whoever asks, as for a removed record.
        """
        try:
            with translated_errors():
                response = self._client.update_item(
                    TableName=self._table,
                    Key={"PK": to_value(image_pk(image_id)), "SK": to_value(METADATA)},
                    UpdateExpression=_TOMBSTONE,
                    ConditionExpression="attribute_exists(PK) AND attribute_not_exists(#purged) AND userId = :me",
                    ExpressionAttributeNames={"#purged": PURGED},
                    ExpressionAttributeValues={
                        ":now": to_value(now),
                        ":me": to_value(user_id),
                        ":sweep": to_value(sweep_partition(image_id)),
                        ":finishBy": to_value(format_time(parse_time(now) + DELETE_FINISH_DELAY)),
                    },
                    ReturnValues="ALL_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
        except ConditionFailed as exc:
            item = exc.item
            if not item:  # older DynamoDB emulators do not return the item on a failed condition
                with translated_errors():
                    item = self._client.get_item(
                        TableName=self._table,
                        Key={"PK": to_value(image_pk(image_id)), "SK": to_value(METADATA)},
                        ConsistentRead=True,
                    ).get("Item")
            if not item or PURGED in item:
                raise WriteRejected(None) from exc
            raise WriteRejected(item_to_record(item)) from exc
        return item_to_record(response["Attributes"])

    def finish_delete(self, image_id: str) -> None:
        """Last step of a delete (of a record being deleted only, so never of a live one).

        A record the service created is removed. An imported one (it has
        ``legacyImageKey``) becomes a purged tombstone instead (``_PURGE``): a backfill row
        from an older snapshot or a late dual-write retry must find it and change nothing,
        where they would re-create a removed record pointing at the objects just deleted.
        The tombstone keeps what the import's guards and the readers need (id, owner,
        legacy key, ``updatedAt``, ``deletedAt``, the required fields of a record), drops
        the user's content and every index key, and expires through the table's TTL
        ``TOMBSTONE_DAYS`` after the delete began.
        """
        key = {"PK": to_value(image_pk(image_id)), "SK": to_value(METADATA)}
        try:
            with translated_errors():
                self._client.delete_item(
                    TableName=self._table,
                    Key=key,
                    ConditionExpression="attribute_exists(deletedAt) AND attribute_not_exists(legacyImageKey)",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            return
        except ConditionFailed as exc:
            item = exc.item
        if not item:
            with translated_errors():
                item = self._client.get_item(TableName=self._table, Key=key, ConsistentRead=True).get("Item")
        if not item or "deletedAt" not in item or "legacyImageKey" not in item:
            return  # already gone (a concurrent delete finished first), or not being deleted
        deleted_at = parse_time(str(from_item({"deletedAt": item["deletedAt"]})["deletedAt"]))
        expires = int(deleted_at.timestamp()) + TOMBSTONE_DAYS * 86_400
        try:
            with translated_errors():
                self._client.update_item(
                    TableName=self._table,
                    Key=key,
                    UpdateExpression=_PURGE,
                    ConditionExpression="attribute_exists(deletedAt) AND attribute_exists(legacyImageKey)",
                    ExpressionAttributeNames={"#purged": PURGED, "#ttl": "ttl", **_PURGED_NAMES},
                    ExpressionAttributeValues={
                        ":true": to_value(True),
                        ":ttl": to_value(expires),
                        ":blank": to_value(""),
                    },
                )
        except ConditionFailed:
            return  # removed meanwhile

    def _current(self, image_id: str, item: dict[str, Any] | None) -> ImageRecord | None:
        if item:
            return item_to_record(item)
        # Older DynamoDB emulators do not return the item on a failed condition: read it.
        with translated_errors():
            response = self._client.get_item(
                TableName=self._table,
                Key={"PK": to_value(image_pk(image_id)), "SK": to_value(METADATA)},
                ConsistentRead=True,
            )
        found = response.get("Item")
        return item_to_record(found) if found else None
