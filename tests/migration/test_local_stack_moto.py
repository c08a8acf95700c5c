"""The local stack's patches of moto hot spots (local_stack/supervisor.py) keep moto's
behaviour: transactions stay all-or-nothing, the item size limit holds, queries come
back in key order, and conditions are evaluated with their own values."""

from __future__ import annotations

import random
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from migration.stage import StageTable, open_stage_table


@pytest.fixture
def table(stack_env: dict[str, str]) -> StageTable:
    return open_stage_table("local")


def key(name: str) -> dict[str, Any]:
    return {"PK": {"S": f"TEST#{name}"}, "SK": {"S": "METADATA"}}


def get(table: StageTable, name: str) -> dict[str, Any] | None:
    found = table.client.get_item(TableName=table.table_name, Key=key(name), ConsistentRead=True)
    return found.get("Item")


def put(table: StageTable, name: str, **attributes: Any) -> None:
    table.client.put_item(TableName=table.table_name, Item={**key(name), **attributes})


def cancellation_codes(exc: ClientError) -> list[str]:
    return [str(reason["Code"]) for reason in exc.response["CancellationReasons"]]


def test_a_cancelled_transaction_leaves_every_item_it_named_as_it_was(table: StageTable) -> None:
    updated, deleted, created, missing = (uuid.uuid4().hex for _ in range(4))
    put(table, updated, title={"S": "before"}, tags={"L": [{"S": "a"}]})
    put(table, deleted, title={"S": "still here"})

    with pytest.raises(ClientError) as cancelled:
        table.client.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": table.table_name,
                        "Key": key(updated),
                        "UpdateExpression": "SET title = :t, tags[0] = :t",
                        "ExpressionAttributeValues": {":t": {"S": "after"}},
                    }
                },
                {"Delete": {"TableName": table.table_name, "Key": key(deleted)}},
                {"Put": {"TableName": table.table_name, "Item": {**key(created), "title": {"S": "new"}}}},
                {
                    "ConditionCheck": {
                        "TableName": table.table_name,
                        "Key": key(missing),
                        "ConditionExpression": "attribute_exists(PK)",
                    }
                },
            ]
        )

    assert cancellation_codes(cancelled.value) == ["None", "None", "None", "ConditionalCheckFailed"]
    assert get(table, updated) == {**key(updated), "title": {"S": "before"}, "tags": {"L": [{"S": "a"}]}}
    assert get(table, deleted) == {**key(deleted), "title": {"S": "still here"}}
    assert get(table, created) is None


def test_a_transaction_whose_conditions_hold_applies_every_action(table: StageTable) -> None:
    updated, deleted, created = (uuid.uuid4().hex for _ in range(3))
    put(table, updated, title={"S": "before"})
    put(table, deleted, title={"S": "doomed"})

    table.client.transact_write_items(
        TransactItems=[
            {
                "Update": {
                    "TableName": table.table_name,
                    "Key": key(updated),
                    "UpdateExpression": "SET title = :t",
                    "ConditionExpression": "title = :old",
                    "ExpressionAttributeValues": {":t": {"S": "after"}, ":old": {"S": "before"}},
                }
            },
            {"Delete": {"TableName": table.table_name, "Key": key(deleted)}},
            {
                "Put": {
                    "TableName": table.table_name,
                    "Item": {**key(created), "title": {"S": "new"}},
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            },
        ]
    )

    assert get(table, updated) == {**key(updated), "title": {"S": "after"}}
    assert get(table, deleted) is None
    assert get(table, created) == {**key(created), "title": {"S": "new"}}


def test_the_same_item_twice_in_one_transaction_is_refused_and_nothing_is_written(table: StageTable) -> None:
    first, twice = uuid.uuid4().hex, uuid.uuid4().hex

    with pytest.raises(ClientError) as refused:
        table.client.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": table.table_name, "Item": {**key(first), "n": {"N": "1"}}}},
                {"Put": {"TableName": table.table_name, "Item": {**key(twice), "n": {"N": "1"}}}},
                {"Put": {"TableName": table.table_name, "Item": {**key(twice), "n": {"N": "2"}}}},
            ]
        )

    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert get(table, first) is None
    assert get(table, twice) is None


def test_the_item_size_limit_counts_every_attribute(table: StageTable) -> None:
    fits, too_big = uuid.uuid4().hex, uuid.uuid4().hex
    half = "x" * 200_000

    put(table, fits, a={"S": half}, b={"S": half})
    with pytest.raises(ClientError) as refused:
        put(table, too_big, a={"S": half}, b={"S": half}, c={"S": "y" * 5_000})

    assert get(table, fits) is not None
    assert "Item size has exceeded the maximum allowed size" in str(refused.value)
    assert get(table, too_big) is None


def test_an_index_query_pages_through_its_items_in_key_order(table: StageTable) -> None:
    owner = f"USER#test-{uuid.uuid4().hex}"
    names = [uuid.uuid4().hex for _ in range(30)]
    sort_keys = [f"CREATED#2020-01-{day:02d}" for day in range(1, 16)] * 2  # ties broken by the table's key
    stored = list(zip(names, sort_keys, strict=True))
    random.shuffle(stored)
    for name, sort_key in stored:
        put(table, name, GSI1PK={"S": owner}, GSI1SK={"S": sort_key})
    expected = [f"TEST#{name}" for name, _ in sorted(stored, key=lambda pair: (pair[1], f"TEST#{pair[0]}"))]

    def query(forward: bool) -> list[str]:
        found: list[str] = []
        start: dict[str, Any] | None = None
        while True:
            arguments: dict[str, Any] = {
                "TableName": table.table_name,
                "IndexName": "GSI1",
                "KeyConditionExpression": "GSI1PK = :owner",
                "ExpressionAttributeValues": {":owner": {"S": owner}},
                "ScanIndexForward": forward,
                "Limit": 7,
            }
            if start:
                arguments["ExclusiveStartKey"] = start
            page = table.client.query(**arguments)
            found += [item["PK"]["S"] for item in page["Items"]]
            start = page.get("LastEvaluatedKey")
            if not start:
                return found

    assert query(forward=True) == expected
    assert query(forward=False) == expected[::-1]


def test_a_condition_is_evaluated_with_the_values_of_its_own_request(table: StageTable) -> None:
    name = uuid.uuid4().hex
    put(table, name, version={"N": "3"})

    def put_if_version(seen: int) -> str:
        try:
            table.client.put_item(
                TableName=table.table_name,
                Item={**key(name), "version": {"N": str(seen + 1)}},
                ConditionExpression="#v = :seen",
                ExpressionAttributeNames={"#v": "version"},
                ExpressionAttributeValues={":seen": {"N": str(seen)}},
            )
        except ClientError as exc:
            return str(exc.response["Error"]["Code"])
        return "written"

    refused = "ConditionalCheckFailedException"
    outcomes = [put_if_version(2), put_if_version(3), put_if_version(3), put_if_version(4)]
    assert outcomes == [refused, "written", refused, "written"]
    assert get(table, name) == {**key(name), "version": {"N": "5"}}


def test_a_malformed_condition_is_refused_every_time(table: StageTable) -> None:
    names = [uuid.uuid4().hex for _ in range(2)]
    codes = []
    for name in names:
        with pytest.raises(ClientError) as refused:  # moto answers 500 for a syntax error
            table.client.put_item(
                TableName=table.table_name, Item=key(name), ConditionExpression="attribute_not_exists(PK"
            )
        codes.append(refused.value.response["Error"]["Code"])

    assert codes[0] == codes[1]
    assert [get(table, name) for name in names] == [None, None]


def test_a_transaction_refused_halfway_through_by_a_malformed_action_writes_nothing(table: StageTable) -> None:
    first, second, third = (uuid.uuid4().hex for _ in range(3))

    with pytest.raises(ClientError):
        table.client.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": table.table_name, "Item": {**key(first), "n": {"N": "1"}}}},
                {
                    "Put": {"TableName": table.table_name, "Item": {**key(second), "n": {"N": "1"}}},
                    "Delete": {"TableName": table.table_name, "Key": key(third)},
                },
            ]
        )

    assert get(table, first) is None
    assert get(table, second) is None
