"""The local stack's queue worker acknowledges a batch as Lambda's SQS poller does with
ReportBatchItemFailures (local_stack.supervisor.acknowledged)."""

from __future__ import annotations

from typing import Any

import pytest

from local_stack.supervisor import acknowledged

BATCH = [{"MessageId": f"m{i}", "ReceiptHandle": f"r{i}"} for i in range(3)]


def ids(messages: list[dict[str, Any]]) -> list[str]:
    return [m["MessageId"] for m in messages]


@pytest.mark.parametrize("response", [None, {}, {"batchItemFailures": []}, {"batchItemFailures": None}])
def test_a_response_without_failures_acknowledges_the_whole_batch(response: Any) -> None:
    assert ids(acknowledged(BATCH, response)) == ["m0", "m1", "m2"]


def test_the_reported_records_stay_on_the_queue_and_the_others_are_deleted() -> None:
    response = {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert ids(acknowledged(BATCH, response)) == ["m0", "m2"]


@pytest.mark.parametrize(
    "response",
    [
        {"batchItemFailures": [{"itemIdentifier": "not-in-this-batch"}]},
        {"batchItemFailures": [{"itemIdentifier": ""}]},
        {"batchItemFailures": [{}]},
        {"batchItemFailures": ["m1"]},
        {"batchItemFailures": "m1"},
        "not a response",
    ],
)
def test_a_malformed_response_fails_the_whole_batch_as_lambda_does(response: Any) -> None:
    assert acknowledged(BATCH, response) == []
