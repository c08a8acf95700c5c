"""The image table's key shapes: every partition, sort and index key is built here, only here.

One table holds three kinds of item (pure functions, no IO; the repositories, the sweep,
the backfill and ``scripts/reindex_albums.py`` all build their keys with them):

  image         PK=IMAGE#<id>                    SK=METADATA
                GSI1PK=USER#<userId>             GSI1SK=UPLOADED#<createdAt>  a user's images
                GSI2PK=ALBUM#<len(userId)>#<userId>#<albumId>
                                                 GSI2SK=UPLOADED#<createdAt>  one of a user's albums
                GSI3PK=SWEEP#<0..3>              GSI3SK=<due time>            the sparse sweep index
  idempotency   PK=IDEMPOTENCY#<userId>          SK=KEY#<key>, ttl=<epoch seconds>
  phash bucket  PK=PHASH#<len(userId)>#<userId>#<bucket>
                                                 SK=<completedAt>#<imageId>   one per band of a completed
                                                                              image's perceptual hash
  duplicate of  PK=DUPLICATES#<imageId>          SK=IMAGE#<duplicateId>       back-reference: an image
                                                                              whose duplicateOf names <imageId>
  webhook       PK=WEBHOOK#<id>                  SK=METADATA
                GSI1PK=WEBHOOKS#<userId>         GSI1SK=CREATED#<createdAt>   a user's webhooks

Ids may contain '#': where two of them share one key attribute, a length prefix keeps
("a#b", "c") and ("a", "b#c") apart (``album_partition``); otherwise they go in separate
attributes (``idempotency_key``). Webhooks sit in GSI1 under a prefix of their own, so an
image listing never reads one.
"""

from __future__ import annotations

import hashlib
from typing import Any

METADATA = "METADATA"

USER_INDEX = "GSI1"  # a user's images (USER#) and webhooks (WEBHOOKS#)
ALBUM_INDEX = "GSI2"
SWEEP_INDEX = "GSI3"
INDEXES = (USER_INDEX, ALBUM_INDEX, SWEEP_INDEX)

# The index keys that put an image in a listing (a delete takes them away) and in the sweep.
LISTING_KEYS = ("GSI1PK", "GSI1SK", "GSI2PK", "GSI2SK")
SWEEP_KEYS = ("GSI3PK", "GSI3SK")
# Every key attribute an item may carry: none of them is part of a record.
KEY_ATTRIBUTES = frozenset({"PK", "SK", *LISTING_KEYS, *SWEEP_KEYS})

SWEEP_SHARDS = 4

_IMAGE = "IMAGE#"


def key(pk: str, sk: str) -> dict[str, Any]:
    """A table key as the low-level client takes it (key attributes are strings)."""
    return {"PK": {"S": pk}, "SK": {"S": sk}}


# -- images ------------------------------------------------------------------------------


def image_pk(image_id: str) -> str:
    return f"{_IMAGE}{image_id}"


def image_id_of(pk: str) -> str:
    """The image id of an image item's ``PK`` (``image_pk``'s inverse)."""
    return pk.removeprefix(_IMAGE)


def image_key(image_id: str) -> dict[str, Any]:
    return key(image_pk(image_id), METADATA)


def user_partition(user_id: str) -> str:
    """A user's images in the user index (GSI1)."""
    return f"USER#{user_id}"


def uploaded_sort(created_at: str) -> str:
    """The sort key of the user and album indexes: newest first when read backwards."""
    return f"UPLOADED#{created_at}"


def album_partition(user_id: str, album_id: str) -> str:
    """One album of one user: album ids come from the gallery, and two users may share one.

    The owner is part of the key, so listing an album never reads (or hands out a cursor
    pointing at) another user's image; the length prefix keeps ("a#b", "c") and ("a", "b#c")
    apart, since both ids may contain '#'.
    """
    return f"ALBUM#{len(user_id)}#{user_id}#{album_id}"


def sweep_partition(image_id: str) -> str:
    """The sweep index is sparse and sharded, so no one partition takes every write."""
    shard = int(hashlib.sha1(image_id.encode(), usedforsecurity=False).hexdigest()[:4], 16) % SWEEP_SHARDS
    return f"SWEEP#{shard}"


def sweep_partitions() -> tuple[str, ...]:
    """Every partition of the sweep index, in the order the sweep reads them."""
    return tuple(f"SWEEP#{shard}" for shard in range(SWEEP_SHARDS))


def image_keys(
    image_id: str, user_id: str, created_at: str, album_id: str | None, sweep_due: str | None
) -> dict[str, str]:
    """The key attributes of an image item: its key, the user index, the album index when
    it is in an album, the sweep index when the sweep must look at it (at ``sweep_due``)."""
    keys = {
        "PK": image_pk(image_id),
        "SK": METADATA,
        "GSI1PK": user_partition(user_id),
        "GSI1SK": uploaded_sort(created_at),
    }
    if album_id:
        keys.update(GSI2PK=album_partition(user_id, album_id), GSI2SK=uploaded_sort(created_at))
    if sweep_due is not None:
        keys.update(sweep_keys(image_id, sweep_due))
    return keys


def sweep_keys(image_id: str, due: str) -> dict[str, str]:
    """The sweep index keys of an image the sweep must look at ``due`` (a time)."""
    return {"GSI3PK": sweep_partition(image_id), "GSI3SK": due}


# -- duplicates ---------------------------------------------------------------------------

_PHASH = "PHASH#"
_DUPLICATES = "DUPLICATES#"
#: The partition keys of the duplicate index's items, as IAM's ``dynamodb:LeadingKeys``
#: patterns: the processor and the sweeper may put, delete and query only these.
DUPLICATE_INDEX_LEADING_KEYS = (f"{_PHASH}*", f"{_DUPLICATES}*")


def phash_partition(user_id: str, bucket: str) -> str:
    """One band value of one owner's perceptual hashes (``processors.phash.buckets``): the
    owner is in the key, so a lookup never reads another user's image; the length prefix
    keeps ids containing '#' apart, as in ``album_partition``."""
    return f"{_PHASH}{len(user_id)}#{user_id}#{bucket}"


def phash_sort(completed_at: str, image_id: str) -> str:
    """Earliest completed first (RFC 3339 sorts as text); the id makes it unique."""
    return f"{completed_at}#{image_id}"


def phash_sort_image_id(sort: str) -> str:
    return sort.rpartition("#")[2]


def duplicates_partition(image_id: str) -> str:
    """The back-references of one image: the images whose ``duplicateOf`` names it."""
    return f"{_DUPLICATES}{image_id}"


def duplicate_sort(duplicate_id: str) -> str:
    return f"{_IMAGE}{duplicate_id}"


def duplicate_id_of(sort: str) -> str:
    return sort.removeprefix(_IMAGE)


# -- idempotency keys --------------------------------------------------------------------


def idempotency_keys(user_id: str, idempotency_key: str) -> dict[str, str]:
    # User and key in separate key attributes: both may contain '#', so joining them in
    # one string could let ("a#b", "c") and ("a", "b#c") share an item.
    return {"PK": f"IDEMPOTENCY#{user_id}", "SK": f"KEY#{idempotency_key}"}


def idempotency_key(user_id: str, idempotency_key: str) -> dict[str, Any]:
    keys = idempotency_keys(user_id, idempotency_key)
    return key(keys["PK"], keys["SK"])


# -- webhooks ----------------------------------------------------------------------------


def webhook_pk(webhook_id: str) -> str:
    return f"WEBHOOK#{webhook_id}"


def webhook_key(webhook_id: str) -> dict[str, Any]:
    return key(webhook_pk(webhook_id), METADATA)


def webhooks_partition(user_id: str) -> str:
    """A user's webhooks in the user index (GSI1), apart from their images."""
    return f"WEBHOOKS#{user_id}"


def webhook_keys(webhook_id: str, user_id: str, created_at: str) -> dict[str, str]:
    return {
        "PK": webhook_pk(webhook_id),
        "SK": METADATA,
        "GSI1PK": webhooks_partition(user_id),
        "GSI1SK": f"CREATED#{created_at}",
    }
