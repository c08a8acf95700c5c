"""The duplicate index: small items in the image table that find an owner's earlier copy of a
photo in a bounded number of reads (docs/architecture.md, "Duplicates").

Per completed image with a perceptual hash, one *bucket item* per band of the hash
(``processors.phash.buckets``: two hashes within the duplicate distance share a band
value), sorted by completion time, carrying the full hash; and per image whose
``duplicateOf`` names another, a *back-reference* in that other image's partition, so the
other's delete finds the images to re-point without a scan. Key shapes are ``keys``'s.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

from chalicelib.errors import ConditionFailed
from chalicelib.repositories.dynamo import from_item, to_item, to_value, translated_errors, update_arguments
from chalicelib.repositories.keys import (
    duplicate_id_of,
    duplicate_sort,
    duplicates_partition,
    image_key,
    key,
    phash_partition,
    phash_sort,
    phash_sort_image_id,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

#: Bucket items read per band partition and lookup: a lookup reads at most
#: ``BUCKET_COUNT x CANDIDATES_PER_BUCKET`` small items, whatever the owner's image count.
CANDIDATES_PER_BUCKET = 25
#: Back-references read per page when an image's delete re-points its duplicates.
BACK_REFERENCE_PAGE = 100


class Candidate(NamedTuple):
    image_id: str
    perceptual_hash: str
    sort: str  # completion time and id: the earliest first


class DuplicateIndex:
    """Bucket items and back-references; every write is idempotent."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def candidates(self, user_id: str, buckets: Iterable[str], before: str) -> list[Candidate]:
        """The owner's images sharing a band value with the hash whose bucket keys are
        ``buckets``, completed before ``before`` (a ``phash_sort`` value): one Query per
        bucket of at most ``CANDIDATES_PER_BUCKET`` items, earliest first; de-duplicated
        and sorted, earliest first."""
        found: dict[str, Candidate] = {}
        for bucket in buckets:
            with translated_errors():
                response = self._client.query(
                    TableName=self._table,
                    KeyConditionExpression="PK = :pk AND SK < :before",
                    ExpressionAttributeValues={
                        ":pk": to_value(phash_partition(user_id, bucket)),
                        ":before": to_value(before),
                    },
                    Limit=CANDIDATES_PER_BUCKET,
                )
            for item in response.get("Items", []):
                values = from_item(item)
                sort = str(values["SK"])
                found[sort] = Candidate(phash_sort_image_id(sort), str(values["perceptualHash"]), sort)
        return [found[sort] for sort in sorted(found)]

    def add(self, user_id: str, image_id: str, perceptual_hash: str, buckets: Iterable[str], completed_at: str) -> None:
        """Put the image's bucket items (one per band)."""
        sort = phash_sort(completed_at, image_id)
        for bucket in buckets:
            with translated_errors():
                self._client.put_item(
                    TableName=self._table,
                    Item=to_item(
                        {"PK": phash_partition(user_id, bucket), "SK": sort, "perceptualHash": perceptual_hash}
                    ),
                )

    def remove(self, user_id: str, image_id: str, buckets: Iterable[str], completed_at: str) -> None:
        """Delete the image's bucket items (deleting a missing item succeeds)."""
        sort = phash_sort(completed_at, image_id)
        for bucket in buckets:
            with translated_errors():
                self._client.delete_item(TableName=self._table, Key=key(phash_partition(user_id, bucket), sort))

    def add_back_reference(self, target_id: str, duplicate_id: str) -> None:
        with translated_errors():
            self._client.put_item(
                TableName=self._table,
                Item=to_item({"PK": duplicates_partition(target_id), "SK": duplicate_sort(duplicate_id)}),
            )

    def remove_back_reference(self, target_id: str, duplicate_id: str) -> None:
        with translated_errors():
            self._client.delete_item(
                TableName=self._table, Key=key(duplicates_partition(target_id), duplicate_sort(duplicate_id))
            )

    def back_references(self, target_id: str) -> list[str]:
        """The ids of the images whose ``duplicateOf`` named ``target_id`` (every page)."""
        ids: list[str] = []
        start: Any = None
        while True:
            arguments: dict[str, Any] = {
                "TableName": self._table,
                "KeyConditionExpression": "PK = :pk",
                "ExpressionAttributeValues": {":pk": to_value(duplicates_partition(target_id))},
                "Limit": BACK_REFERENCE_PAGE,
            }
            if start is not None:
                arguments["ExclusiveStartKey"] = start
            with translated_errors():
                response = self._client.query(**arguments)
            ids += [duplicate_id_of(str(from_item(item)["SK"])) for item in response.get("Items", [])]
            start = response.get("LastEvaluatedKey")
            if not start:
                return ids

    def repoint(self, image_id: str, old: str, new: str | None) -> bool:
        """Set a live image's ``duplicateOf`` from ``old`` to ``new`` (None removes it).

        False when the record is gone, being deleted, or no longer names ``old`` (another
        re-point won): nothing to do then.
        """
        try:
            with translated_errors():
                self._client.update_item(
                    TableName=self._table,
                    Key=image_key(image_id),
                    **update_arguments(
                        {"duplicateOf": new},
                        condition="attribute_exists(PK) AND attribute_not_exists(deletedAt) AND duplicateOf = :old",
                        values={":old": old},
                    ),
                )
        except ConditionFailed:
            return False
        return True
