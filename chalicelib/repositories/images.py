"""The image table: one item per image plus one per remembered Idempotency-Key.

The key shapes (image, idempotency, the user, album and sweep indexes) are
``chalicelib.repositories.keys``'s; this module never spells a key itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from botocore.exceptions import ClientError
from pydantic.alias_generators import to_camel, to_snake

from chalicelib.errors import ConditionFailed
from chalicelib.models.common import ImageStatus, format_time, parse_time
from chalicelib.models.domain import IdempotencyRecord, ImageRecord, ProcessingOutcome
from chalicelib.repositories.dynamo import (
    error_code,
    from_item,
    get_consistent,
    to_item,
    to_value,
    translated_errors,
    update_arguments,
)
from chalicelib.repositories.keys import (
    ALBUM_INDEX,
    KEY_ATTRIBUTES,
    LISTING_KEYS,
    SWEEP_INDEX,
    SWEEP_KEYS,
    USER_INDEX,
    idempotency_key,
    idempotency_keys,
    image_key,
    image_keys,
    sweep_keys,
    user_partition,
)

# ``X as X``: kept importable from here for code written before ``keys`` existed.
from chalicelib.repositories.keys import METADATA as METADATA
from chalicelib.repositories.keys import SWEEP_SHARDS as SWEEP_SHARDS
from chalicelib.repositories.keys import album_partition as album_partition
from chalicelib.repositories.keys import image_pk as image_pk
from chalicelib.repositories.keys import sweep_partition as sweep_partition

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# What an image item holds besides its record: the key attributes and the TTL.
_NOT_RECORD = KEY_ATTRIBUTES | {"ttl"}


class IdempotencyKeyTaken(Exception):
    """The Idempotency-Key is already remembered; ``existing`` is what it points to."""

    def __init__(self, existing: IdempotencyRecord) -> None:
        super().__init__(existing.key)
        self.existing = existing


# What a terminal transition copies from the outcome onto the record (None removes it).
OUTCOME_FIELDS = (
    "width",
    "height",
    "placeholder",
    "renditions",
    "rendition_version",
    "thumbhash",
    "dominant_color",
    "perceptual_hash",
    "duplicate_of",
)
# What a re-render switches: the renditions and what processing learned, never the
# duplicate link (found once, at upload) nor version/updatedAt (PATCH's).
RERENDER_FIELDS = tuple(name for name in OUTCOME_FIELDS if name != "duplicate_of")

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
        **sweep_keys(image_id, now),
    }


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


def record_to_item(record: ImageRecord) -> dict[str, Any]:
    values: dict[str, Any] = {to_camel(name): value for name, value in record.model_dump(mode="json").items()}
    values.update(image_keys(record.id, record.user_id, record.created_at, record.album_id, sweep_due(record)))
    return to_item(values)


def item_to_record(item: Mapping[str, Any]) -> ImageRecord:
    values = {to_snake(name): value for name, value in from_item(item).items() if name not in _NOT_RECORD}
    return ImageRecord.model_validate(values)


class ImageRepository:
    """Reads and conditional writes of image records."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    # -- reads ---------------------------------------------------------------------

    def get(self, image_id: str) -> ImageRecord | None:
        """One strongly consistent GetItem."""
        item = get_consistent(self._client, self._table, image_key(image_id))
        return item_to_record(item) if item else None

    def get_idempotency(self, user_id: str, key: str) -> IdempotencyRecord | None:
        item = get_consistent(self._client, self._table, idempotency_key(user_id, key))
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
                        **idempotency_keys(idempotency.user_id, idempotency.key),
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
            }
            | sweep_keys(image_id, deadline),
            expected=(ImageStatus.PENDING, ImageStatus.PROCESSING),
            keep_existing=("uploadedAt",),
        )

    def finish_processing(self, image_id: str, outcome: ProcessingOutcome, event_id: str, now: str) -> ImageRecord:
        """``processing -> completed|failed``, recording the outcome and its event id."""
        values = _terminal(image_id, outcome.status, event_id, now, outcome.error_code, outcome.error_message) | {
            to_camel(name): value
            for name, value in outcome.model_dump(mode="json", include=set(OUTCOME_FIELDS)).items()
        }
        # ``version`` counts metadata edits (optimistic locking for PATCH), not processing.
        return self._update(image_id, set_values=values, expected=(ImageStatus.PROCESSING,))

    def switch_renditions(self, image_id: str, outcome: ProcessingOutcome) -> ImageRecord:
        """A re-render's switch of a completed image to renditions of ``outcome.rendition_version``.

        Sets only the rendition fields, so a concurrent PATCH (title, version, updatedAt)
        survives; refused (ConditionFailed) for a missing, deleted or not completed image,
        and for one already at that spec or above (a repeated re-render changes nothing).
        """
        values = {
            to_camel(name): value
            for name, value in outcome.model_dump(mode="json", include=set(RERENDER_FIELDS)).items()
        }
        values.update(rerenderError=None, rerenderErrorAt=None)  # a later success clears the marker
        return self._update(
            image_id,
            set_values=values,
            expected=(ImageStatus.COMPLETED,),
            extra_condition=(
                "(attribute_not_exists(renditionVersion) OR renditionVersion < :target)",
                {":target": outcome.rendition_version},
            ),
        )

    def mark_rerender_error(self, image_id: str, code: str, now: str) -> ImageRecord:
        """Mark a completed image whose re-render could not read or decode its original;
        nothing else changes, so it keeps serving what it served."""
        return self._update(
            image_id,
            set_values={"rerenderError": code, "rerenderErrorAt": now},
            expected=(ImageStatus.COMPLETED,),
        )

    def expire(self, image_id: str, event_id: str, closed_before: str, now: str) -> ImageRecord:
        """``pending -> expired`` for an upload whose window closed before ``closed_before``."""
        values = _terminal(image_id, ImageStatus.EXPIRED, event_id, now, "upload_expired", EXPIRED_MESSAGE)
        return self._update(
            image_id,
            set_values=values,
            expected=(ImageStatus.PENDING,),
            extra_condition=("uploadExpiresAt < :closedBefore", {":closedBefore": closed_before}),
        )

    def fail_stalled(self, image_id: str, event_id: str, now: str) -> ImageRecord:
        """``processing -> failed`` for a record whose processing deadline passed."""
        values = _terminal(image_id, ImageStatus.FAILED, event_id, now, STALLED_CODE, STALLED_MESSAGE)
        return self._update(
            image_id,
            set_values=values,
            expected=(ImageStatus.PROCESSING,),
            # The index may be behind: a delivery that started again moved the deadline on.
            extra_condition=("GSI3SK <= :now", {":now": now}),
        )

    def postpone_sweep(self, image_id: str, due: str) -> ImageRecord:
        """Look at a pending image again at ``due`` (its upload was handed back to the queue)."""
        return self._update(image_id, set_values={"GSI3SK": due}, expected=(ImageStatus.PENDING,))

    def due_for_sweep(self, partition: str, now: str, limit: int) -> list[ImageRecord]:
        """Records of one sweep partition whose due time has come, oldest first (one Query)."""
        with translated_errors():
            response = self._client.query(
                TableName=self._table,
                IndexName=SWEEP_INDEX,
                KeyConditionExpression="GSI3PK = :partition AND GSI3SK <= :now",
                ExpressionAttributeValues={":partition": to_value(partition), ":now": to_value(now)},
                Limit=limit,
            )
        return [item_to_record(item) for item in response.get("Items", [])]

    def mark_event_published(self, image_id: str, event_id: str) -> None:
        """Record that the event went out. Refused (ConditionFailed) once a DELETE began: the
        tombstone's sweep-index entry is the delete's, and removing it would strand the delete."""
        with translated_errors():
            self._client.update_item(
                TableName=self._table,
                Key=image_key(image_id),
                **update_arguments(
                    {"eventPublished": True},
                    remove=SWEEP_KEYS,
                    condition="eventId = :event AND attribute_not_exists(deletedAt)",
                    values={":event": event_id},
                ),
            )

    def _update(
        self,
        image_id: str,
        *,
        set_values: Mapping[str, Any],
        expected: Iterable[ImageStatus],
        keep_existing: Iterable[str] = (),
        extra_condition: tuple[str, dict[str, Any]] | None = None,
    ) -> ImageRecord:
        """One conditional UpdateItem of a live record in one of the ``expected`` states
        (``None`` values remove their attribute), returning the record as written."""
        values: dict[str, Any] = {}
        allowed = []
        for index, status in enumerate(expected):
            values[f":s{index}"] = status.value
            allowed.append(f":s{index}")
        condition = f"attribute_exists(PK) AND attribute_not_exists(deletedAt) AND #status IN ({', '.join(allowed)})"
        if extra_condition is not None:
            condition += f" AND {extra_condition[0]}"
            values.update(extra_condition[1])
        with translated_errors():
            response = self._client.update_item(
                TableName=self._table,
                Key=image_key(image_id),
                **update_arguments(
                    set_values,
                    keep_existing=keep_existing,
                    condition=condition,
                    names={"#status": "status"},
                    values=values,
                ),
                ReturnValues="ALL_NEW",
            )
        return item_to_record(response["Attributes"])


class TransactionConflict(ConditionFailed):
    """A concurrent transaction on the same items won; retrying is safe."""


DELETE_FINISH_DELAY = timedelta(minutes=10)

# An imported image's finished delete: the tombstone stays this long (docs/migration.md),
# longer than any backfill or dual-write from before the delete can still arrive.
TOMBSTONE_DAYS = 90
# Set on a purged tombstone: the delete finished (objects removed); a DELETE of it is a 404.
PURGED = "purged"
# What a purged tombstone no longer keeps: the user's content. The record's required
# fields stay (every reader parses the item, then answers 404 from ``deletedAt``), the
# filename blanked; the listing keys went with the tombstone (``begin_delete``).
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
    "renditions",
    "renditionVersion",
    "thumbhash",
    "dominantColor",
    "perceptualHash",
    "duplicateOf",
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
                IndexName=USER_INDEX,
                KeyConditionExpression="GSI1PK = :pk",
                ExpressionAttributeValues={":pk": to_value(user_partition(user_id))},
            )
        else:
            arguments.update(
                IndexName=ALBUM_INDEX,
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
        set_values: dict[str, Any] = {"updatedAt": now} | {to_camel(name): value for name, value in changes.items()}
        copy: dict[str, str] = {}
        if "album_id" in changes:
            if changes["album_id"] is None:
                set_values.update(GSI2PK=None, GSI2SK=None)
            else:
                set_values["GSI2PK"] = album_partition(user_id, changes["album_id"])
                copy["GSI2SK"] = "GSI1SK"  # the album index sorts like the user index
        try:
            with translated_errors():
                response = self._client.update_item(
                    TableName=self._table,
                    Key=image_key(image_id),
                    **update_arguments(
                        set_values,
                        increment=("version",),
                        copy=copy,
                        condition=(
                            "attribute_exists(PK) AND attribute_not_exists(deletedAt) "
                            "AND #userId = :me AND #version = :expected"
                        ),
                        names={"#userId": "userId", "#version": "version"},
                        values={":me": user_id, ":expected": expected_version},
                    ),
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
        # The tombstone: marked deleted, out of every listing, and in the sweep index due a
        # few minutes on: if the DELETE stops before its last step (a crash, a timeout) and
        # is not retried, the sweeper finishes it, so the renditions of an image its owner
        # deleted do not stay public.
        finish_by = format_time(parse_time(now) + DELETE_FINISH_DELAY)
        try:
            with translated_errors():
                response = self._client.update_item(
                    TableName=self._table,
                    Key=image_key(image_id),
                    **update_arguments(
                        {"deletedAt": now, **sweep_keys(image_id, finish_by)},
                        keep_existing=("deletedAt",),
                        remove=LISTING_KEYS,
                        condition="attribute_exists(PK) AND attribute_not_exists(#purged) AND userId = :me",
                        names={"#purged": PURGED},
                        values={":me": user_id},
                    ),
                    ReturnValues="ALL_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
        except ConditionFailed as exc:
            item = exc.item
            if not item:  # older DynamoDB emulators do not return the item on a failed condition
                item = get_consistent(self._client, self._table, image_key(image_id))
            if not item or PURGED in item:
                raise WriteRejected(None) from exc
            raise WriteRejected(item_to_record(item)) from exc
        return item_to_record(response["Attributes"])

    def finish_delete(self, image_id: str) -> None:
        """Last step of a delete (of a record being deleted only, so never of a live one).

        A record the service created is removed. An imported one (it has
        ``legacyImageKey``) becomes a purged tombstone instead (``PURGED``): a backfill row
        from an older snapshot or a late dual-write retry must find it and change nothing,
        where they would re-create a removed record pointing at the objects just deleted.
        The tombstone keeps what the import's guards and the readers need (id, owner,
        legacy key, ``updatedAt``, ``deletedAt``, the required fields of a record), drops
        the user's content and every index key, and expires through the table's TTL
        ``TOMBSTONE_DAYS`` after the delete began.
        """
        key = image_key(image_id)
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
            item = get_consistent(self._client, self._table, key)
        if not item or "deletedAt" not in item or "legacyImageKey" not in item:
            return  # already gone (a concurrent delete finished first), or not being deleted
        deleted_at = parse_time(str(from_item({"deletedAt": item["deletedAt"]})["deletedAt"]))
        expires = int(deleted_at.timestamp()) + TOMBSTONE_DAYS * 86_400
        try:
            with translated_errors():
                self._client.update_item(
                    TableName=self._table,
                    Key=key,
                    **update_arguments(
                        {PURGED: True, "ttl": expires, "originalFilename": ""},
                        remove=(*_DROPPED_ON_PURGE, *LISTING_KEYS, *SWEEP_KEYS),
                        condition="attribute_exists(deletedAt) AND attribute_exists(legacyImageKey)",
                    ),
                )
        except ConditionFailed:
            return  # removed meanwhile

    def _current(self, image_id: str, item: dict[str, Any] | None) -> ImageRecord | None:
        if not item:
            # Older DynamoDB emulators do not return the item on a failed condition: read it.
            item = get_consistent(self._client, self._table, image_key(image_id))
        return item_to_record(item) if item else None
