"""The conditional backfill's batched writes (``BatchImportRepository.put_all_if_unchanged``):
all or nothing, each record on condition that its stored record is still the one seen,
conflicts and throttling retried with the same token, lost races left to the caller."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.config import Config
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_none

from chalicelib.errors import TransientFailure
from chalicelib.models.domain import ImageRecord
from chalicelib.repositories.imports import StoredVersion, UpsertOutcome
from migration.batch_repository import BatchImportRepository
from migration.legacy import LegacyRow, row_to_record
from migration.stage import StageTable, open_stage_table
from tests.migration.misbehaving import ScriptedDynamoDB

TRANSACT = "DynamoDB_20120810.TransactWriteItems"


@pytest.fixture
def table(stack_env: dict[str, str]) -> StageTable:
    return open_stage_table("local")


def record(title: str = "Castle", updated: datetime | None = None, image_id: str | None = None) -> ImageRecord:
    row = LegacyRow(
        id=image_id or str(uuid.uuid4()),
        user_id="user-1",
        album_id=None,
        title=title,
        description=None,
        tags=["castle"],
        original_filename="castle.jpg",
        mime_type="image/jpeg",
        file_size=1234,
        s3_key="images/user-1/castle.jpg",
        thumbnail_key=None,
        width=800,
        height=600,
        created_at=datetime(2020, 1, 1, tzinfo=UTC),
        updated_at=updated or datetime(2021, 1, 1, tzinfo=UTC),
    )
    return row_to_record(row)


def seen(stored: ImageRecord) -> StoredVersion:
    return StoredVersion(updated_at=stored.updated_at, version=stored.version, deleted=False)


def test_a_transaction_creates_and_replaces_what_is_still_as_it_was_seen(table: StageTable) -> None:
    repository = BatchImportRepository(table.client, table.table_name)
    stored = repository.upsert(record("old title")).record
    newer = record("new title", datetime(2022, 1, 1, tzinfo=UTC), image_id=stored.id).model_copy(update={"version": 2})
    fresh = record("fresh").model_copy(update={"version": 1})

    written = repository.put_all_if_unchanged([(newer, seen(stored)), (fresh, None)])

    now = repository.get_many([stored.id, fresh.id])
    assert written is True
    assert (now[stored.id].title, now[stored.id].version) == ("new title", 2)
    assert (now[fresh.id].title, now[fresh.id].version) == ("fresh", 1)


def test_a_transaction_writes_nothing_when_one_record_changed_after_it_was_seen(table: StageTable) -> None:
    repository = BatchImportRepository(table.client, table.table_name)
    stored = repository.upsert(record("first")).record
    dual_written = repository.upsert(record("dual-written", datetime(2023, 1, 1, tzinfo=UTC), stored.id)).record
    stale = record("backfill copy", datetime(2022, 1, 1, tzinfo=UTC), stored.id).model_copy(update={"version": 2})
    fresh = record("fresh").model_copy(update={"version": 1})

    written = repository.put_all_if_unchanged([(fresh, None), (stale, seen(stored))])

    now = repository.get_many([stored.id, fresh.id])
    assert written is False
    assert now[stored.id] == dual_written
    assert fresh.id not in now  # all or nothing


def test_a_new_record_is_not_written_over_one_created_after_it_was_seen_absent(table: StageTable) -> None:
    repository = BatchImportRepository(table.client, table.table_name)
    created_meanwhile = repository.upsert(record("created meanwhile")).record
    backfill_copy = record("backfill copy", image_id=created_meanwhile.id).model_copy(update={"version": 1})

    assert repository.put_all_if_unchanged([(backfill_copy, None)]) is False
    assert repository.get_many([created_meanwhile.id])[created_meanwhile.id].title == "created meanwhile"


# -- against a scripted endpoint: DynamoDB's answers that moto does not give ---------------


def scripted_repository(server: ScriptedDynamoDB, attempts: int = 3) -> BatchImportRepository:
    client = boto3.client(
        "dynamodb",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"mode": "standard", "max_attempts": 1}),  # only our own retries
    )
    retrying = Retrying(
        retry=retry_if_exception_type(TransientFailure),
        stop=stop_after_attempt(attempts),
        wait=wait_none(),
        reraise=True,
    )
    return BatchImportRepository(client, "ImageMetadata-test", retrying)


def cancelled(*codes: str) -> tuple[int, dict[str, Any]]:
    return 400, {
        "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
        "Message": f"Transaction cancelled, please refer cancellation reasons [{', '.join(codes)}]",
        "CancellationReasons": [{"Code": code} for code in codes],
    }


def two_new_records() -> list[tuple[ImageRecord, StoredVersion | None]]:
    return [
        (record("a").model_copy(update={"version": 1}), None),
        (record("b").model_copy(update={"version": 1}), None),
    ]


def test_a_transaction_cancelled_by_conflicts_or_throttling_is_retried_with_the_same_token() -> None:
    answers = [cancelled("None", "TransactionConflict"), cancelled("ThrottlingError", "None"), (200, {})]
    with ScriptedDynamoDB(answers) as server:
        written = scripted_repository(server).put_all_if_unchanged(two_new_records())

    assert written is True
    assert [target for target, _ in server.requests] == [TRANSACT] * 3
    tokens = {body["ClientRequestToken"] for _, body in server.requests}
    assert len(tokens) == 1
    conditions = [put["Put"]["ConditionExpression"] for put in server.requests[0][1]["TransactItems"]]
    assert conditions == ["attribute_not_exists(PK)"] * 2


def test_a_transaction_that_keeps_meeting_conflicts_gives_up_as_a_transient_failure() -> None:
    with ScriptedDynamoDB([cancelled("TransactionConflict", "None")]) as server, pytest.raises(TransientFailure):
        scripted_repository(server, attempts=3).put_all_if_unchanged(two_new_records())

    assert len(server.requests) == 3


@pytest.mark.parametrize(
    "refusal",
    [
        pytest.param(cancelled("ConditionalCheckFailed", "TransactionConflict"), id="cancelled-by-a-condition"),
        pytest.param(
            (400, {"__type": "com.amazon.coral.validate#ValidationException", "Message": "size exceeds 4 MB"}),
            id="request-refused",
        ),
    ],
)
def test_a_transaction_refused_for_good_is_not_retried_and_is_left_to_the_caller(
    refusal: tuple[int, dict[str, Any]],
) -> None:
    with ScriptedDynamoDB([refusal, (200, {})]) as server:
        written = scripted_repository(server).put_all_if_unchanged(two_new_records())

    assert written is False
    assert len(server.requests) == 1


def test_an_import_that_meets_a_transaction_in_progress_on_its_item_is_retried() -> None:
    conflict = (400, {"__type": "com.amazonaws.dynamodb.v20120810#TransactionConflictException", "Message": "busy"})
    with ScriptedDynamoDB([conflict, (200, {})]) as server:
        result = scripted_repository(server).upsert(record())

    assert result.outcome is UpsertOutcome.CREATED
    assert [target for target, _ in server.requests] == ["DynamoDB_20120810.PutItem"] * 2
