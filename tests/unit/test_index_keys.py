"""The keys a record is stored under, and the one update-expression builder (pure: no IO)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.models.common import ImageStatus
from chalicelib.models.domain import ImageRecord
from chalicelib.repositories import keys
from chalicelib.repositories.dynamo import to_value, update_arguments
from chalicelib.repositories.images import item_to_record, record_to_item
from chalicelib.repositories.keys import (
    KEY_ATTRIBUTES,
    METADATA,
    SWEEP_SHARDS,
    album_partition,
    idempotency_key,
    image_id_of,
    image_key,
    image_keys,
    image_pk,
    sweep_partition,
    sweep_partitions,
    user_partition,
    webhook_key,
    webhook_keys,
    webhooks_partition,
)

ids = st.text(st.characters(codec="utf-8"), min_size=1, max_size=20)
ROOT = Path(__file__).resolve().parents[2]


def test_ids_containing_the_separator_do_not_share_an_album_partition() -> None:
    assert album_partition("a#b", "c") != album_partition("a", "b#c")
    assert album_partition("a", "b#c") == "ALBUM#1#a#b#c"


@given(ids, ids, ids, ids)
def test_two_albums_share_a_partition_only_when_owner_and_album_are_the_same(
    user: str, album: str, other_user: str, other_album: str
) -> None:
    same = (user, album) == (other_user, other_album)
    assert (album_partition(user, album) == album_partition(other_user, other_album)) is same


@given(ids, ids, ids, ids)
def test_two_idempotency_keys_share_an_item_only_when_user_and_key_are_the_same(
    user: str, key: str, other_user: str, other_key: str
) -> None:
    same = (user, key) == (other_user, other_key)
    assert (idempotency_key(user, key) == idempotency_key(other_user, other_key)) is same


@given(ids, ids)
def test_a_users_webhooks_never_share_a_user_index_partition_with_anyones_images(user: str, other: str) -> None:
    assert webhooks_partition(user) != user_partition(other)


@given(ids)
def test_an_image_id_comes_back_whole_from_its_partition_key(image_id: str) -> None:
    assert image_id_of(image_pk(image_id)) == image_id
    assert image_key(image_id) == {"PK": {"S": f"IMAGE#{image_id}"}, "SK": {"S": METADATA}}


@given(ids)
def test_every_image_falls_in_one_of_the_partitions_the_sweep_reads(image_id: str) -> None:
    assert sweep_partition(image_id) in sweep_partitions()


def test_the_sweep_partitions_keep_the_shape_the_stored_items_have() -> None:
    # Items already in the table carry these: a change of the hash or of the shard count
    # would leave them in partitions the sweep no longer reads.
    assert sweep_partitions() == ("SWEEP#0", "SWEEP#1", "SWEEP#2", "SWEEP#3") and SWEEP_SHARDS == 4
    for image_id in ("01J00000000000000000000001", "123e4567-e89b-12d3-a456-426614174000", "ü#/"):
        shard = int(hashlib.sha1(image_id.encode(), usedforsecurity=False).hexdigest()[:4], 16) % 4
        assert sweep_partition(image_id) == f"SWEEP#{shard}"


def _record(**changes: Any) -> ImageRecord:
    values: dict[str, Any] = {
        "id": "01J00000000000000000000001",
        "user_id": "alice#1",
        "status": ImageStatus.PENDING,
        "original_filename": "kite.jpg",
        "content_type": "image/jpeg",
        "file_size": 1000,
        "created_at": "2026-03-14T09:26:53.589Z",
        "updated_at": "2026-03-14T09:26:53.589Z",
        "upload_expires_at": "2026-03-14T09:41:53.589Z",
    }
    return ImageRecord.model_validate(values | changes)


def _keys_of(item: dict[str, Any]) -> dict[str, str]:
    return {name: value["S"] for name, value in item.items() if name in KEY_ATTRIBUTES}


def test_a_pending_image_is_listed_for_its_owner_and_due_for_the_sweep_when_its_window_closes() -> None:
    record = _record()
    assert _keys_of(record_to_item(record)) == {
        "PK": "IMAGE#01J00000000000000000000001",
        "SK": "METADATA",
        "GSI1PK": "USER#alice#1",
        "GSI1SK": "UPLOADED#2026-03-14T09:26:53.589Z",
        "GSI3PK": sweep_partition(record.id),
        "GSI3SK": "2026-03-14T09:41:53.589Z",
    }


def test_an_image_in_an_album_is_in_its_owners_album_partition_sorted_like_the_user_index() -> None:
    record = _record(album_id="trip", status=ImageStatus.COMPLETED, event_published=True)
    stored = _keys_of(record_to_item(record))
    assert (stored["GSI2PK"], stored["GSI2SK"]) == ("ALBUM#7#alice#1#trip", stored["GSI1SK"])
    assert "GSI3PK" not in stored and "GSI3SK" not in stored  # nothing for the sweep to do


def test_the_key_attributes_never_reach_the_record_read_back() -> None:
    record = _record(album_id="trip")
    assert item_to_record(record_to_item(record)) == record


def test_a_webhook_is_listed_under_its_owner_apart_from_their_images() -> None:
    assert webhook_keys("w1", "alice", "2026-03-14T09:26:53.589Z") == {
        "PK": "WEBHOOK#w1",
        "SK": "METADATA",
        "GSI1PK": "WEBHOOKS#alice",
        "GSI1SK": "CREATED#2026-03-14T09:26:53.589Z",
    }
    assert webhook_key("w1") == {"PK": {"S": "WEBHOOK#w1"}, "SK": {"S": "METADATA"}}


def test_image_keys_only_put_a_record_in_the_indexes_it_belongs_to() -> None:
    plain = image_keys("i", "u", "t", album_id=None, sweep_due=None)
    assert set(plain) == {"PK", "SK", "GSI1PK", "GSI1SK"}
    assert set(image_keys("i", "u", "t", album_id="a", sweep_due="d")) == KEY_ATTRIBUTES


# The prefixes of the key shapes: a module other than keys.py that spells one next to a
# quote or an f-string field builds a key of its own.
_KEY_SPELLING = re.compile(
    r"""(?:IMAGE|USER|ALBUM|SWEEP|IDEMPOTENCY|KEY|WEBHOOKS?|UPLOADED|CREATED)#(?:\{|["'])|["']METADATA["']"""
)


# Folders that hold no project code of the service or its tooling (tests spell keys on
# purpose, to check the layout from outside).
_NOT_SOURCES = frozenset({"tests", "build", "vendor", "out", "node_modules"})


def _project_sources() -> list[Path]:
    """Every Python file of the runtime and of the tooling around it, wherever the tooling
    lives (scripts/, or the packages beside it)."""
    sources = []
    for entry in ROOT.iterdir():
        if entry.name.startswith(".") or entry.name in _NOT_SOURCES:
            continue
        if entry.is_dir():
            sources += [path for path in entry.rglob("*.py") if "node_modules" not in path.parts]
        elif entry.suffix == ".py":
            sources.append(entry)
    return sources


def test_no_runtime_module_or_operator_command_builds_a_key_outside_the_keys_module() -> None:
    sources = _project_sources()
    assert ROOT / "app.py" in sources and Path(keys.__file__).resolve() in sources
    spelled = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sources
        if path != Path(keys.__file__).resolve()
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if _KEY_SPELLING.search(line)
    ]
    assert spelled == []


# -- update_arguments ----------------------------------------------------------------------


def test_an_update_sets_values_and_removes_what_is_none_each_through_a_placeholder() -> None:
    arguments = update_arguments({"title": "Kite", "description": None, "status": "done"})
    assert arguments == {
        "UpdateExpression": "SET #n0 = :v0, #n2 = :v1 REMOVE #n1",
        "ExpressionAttributeNames": {"#n0": "title", "#n1": "description", "#n2": "status"},
        "ExpressionAttributeValues": {":v0": {"S": "Kite"}, ":v1": {"S": "done"}},
    }


def test_an_update_keeps_existing_values_increments_copies_and_removes() -> None:
    arguments = update_arguments(
        {"deletedAt": "now", "GSI3SK": "later"},
        keep_existing=("deletedAt",),
        increment=("version",),
        copy={"GSI2SK": "GSI1SK"},
        remove=("GSI1PK",),
    )
    assert arguments["UpdateExpression"] == (
        "SET #n0 = if_not_exists(#n0, :v0), #n1 = :v1, #n2 = #n2 + :v2, #n3 = #n4 REMOVE #n5"
    )
    assert arguments["ExpressionAttributeNames"] == {
        "#n0": "deletedAt",
        "#n1": "GSI3SK",
        "#n2": "version",
        "#n3": "GSI2SK",
        "#n4": "GSI1SK",
        "#n5": "GSI1PK",
    }
    assert arguments["ExpressionAttributeValues"][":v2"] == to_value(1)


def test_an_update_carries_its_condition_with_the_callers_names_and_serialised_values() -> None:
    arguments = update_arguments(
        remove=("GSI3PK",),
        condition="#status = :s AND eventId = :event",
        names={"#status": "status"},
        values={":s": "completed", ":event": "e1"},
    )
    assert arguments == {
        "UpdateExpression": "REMOVE #n0",
        "ConditionExpression": "#status = :s AND eventId = :event",
        "ExpressionAttributeNames": {"#n0": "GSI3PK", "#status": "status"},
        "ExpressionAttributeValues": {":s": {"S": "completed"}, ":event": {"S": "e1"}},
    }


@pytest.mark.parametrize(("names", "values"), [({"#n0": "x"}, {}), ({}, {":v12": 1})])
def test_a_condition_placeholder_that_could_clash_with_the_updates_own_is_refused(
    names: dict[str, str], values: dict[str, Any]
) -> None:
    with pytest.raises(ValueError, match="clash"):
        update_arguments({"title": "t"}, condition="x", names=names, values=values)


def test_an_update_that_changes_nothing_is_refused() -> None:
    with pytest.raises(ValueError, match="set or remove"):
        update_arguments({}, condition="attribute_exists(PK)")
