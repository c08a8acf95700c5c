"""AWS requests per upload, counted with botocore ``before-call`` hooks on the app's own
cached clients (docs/cost.md turns these counts into dollars).

Run with ``-s`` to print the measured counts and timings used in docs/cost.md.
"""

from __future__ import annotations

import json
import statistics
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib import aws
from tests.functional.support import deliver, image_bytes

CREATE = Counter({"dynamodb.PutItem": 1})
CREATE_WITH_KEY = Counter({"dynamodb.TransactWriteItems": 1})
STATUS_POLL = Counter({"dynamodb.GetItem": 1})
# get the record, pending->processing, completed (+ outbox), mark the event published;
# HeadObject (size) and GetObject (bytes) of the upload; tag the original as processed;
# PutObject of the rendition and of the thumbnail; one SNS Publish.
PROCESSING = Counter(
    {
        "dynamodb.GetItem": 1,
        "dynamodb.UpdateItem": 3,
        "s3.HeadObject": 1,
        "s3.GetObject": 1,
        "s3.PutObjectTagging": 1,
        # The 800x600 image's ladder (320, 640, 800) and the thumbnail.
        "s3.PutObject": 4,
        # duplicateOf: one Query per band of the perceptual hash, one bucket item per band.
        "dynamodb.Query": 7,
        "dynamodb.PutItem": 7,
        "sns.Publish": 1,
    }
)


@pytest.fixture
def aws_calls(api: Any) -> Iterator[Counter[str]]:
    calls: Counter[str] = Counter()

    def count(event_name: str, **_: Any) -> None:
        calls[event_name.split(".", 1)[1]] += 1  # "before-call.<service>.<Operation>"

    clients = [aws.dynamodb(), aws.s3(), aws.s3_presigner(), aws.sns(), aws.sqs()]
    for client in clients:
        client.meta.events.register("before-call", count)
    yield calls
    for client in clients:
        client.meta.events.unregister("before-call", count)


def create(api: Any, headers: dict[str, str], size: int, key: str | None = None) -> dict[str, Any]:
    extra = {"Idempotency-Key": key} if key else {}
    body = json.dumps({"filename": "a.jpg", "contentType": "image/jpeg", "size": size})
    response = api.http.post("/images", headers={**headers, **extra}, body=body)
    assert response.status_code == 201, response.body
    created: dict[str, Any] = response.json_body
    return created


def test_one_upload_costs_one_write_to_create_and_a_fixed_set_of_requests_to_process(
    api, aws_stack, aws_calls, auth_for, uploader
):
    headers = auth_for("cost")
    data = image_bytes(800, 600)

    created = create(api, headers, len(data), key="cost-1")
    assert aws_calls == CREATE_WITH_KEY
    aws_calls.clear()
    create(api, headers, len(data))
    assert aws_calls == CREATE
    aws_calls.clear()

    bodies = uploader.put(created, data)
    aws_calls.clear()  # the test's own S3/SQS calls go through other clients, but be sure
    deliver(api, bodies)
    assert aws_calls == PROCESSING, dict(aws_calls)
    aws_calls.clear()

    assert api.http.get(f"/images/{created['id']}/status", headers=headers).status_code == 200
    assert aws_calls == STATUS_POLL


def test_a_redelivered_upload_costs_one_read_and_a_re_tag(api, aws_stack, aws_calls, auth_for, uploader):
    data = image_bytes(80, 60)
    created = create(api, auth_for("cost"), len(data))
    bodies = uploader.put(created, data)
    deliver(api, bodies)
    aws_calls.clear()

    deliver(api, bodies)

    # The re-tag keeps the original if the same form was posted again (its copy arrives
    # tagged unprocessed, and the lifecycle rule would remove it).
    assert aws_calls == Counter({"dynamodb.GetItem": 1, "s3.PutObjectTagging": 1})


def test_processing_time_and_request_time_are_measured_for_the_cost_model(api, aws_stack, auth_for, uploader):
    """Not a budget (the machine varies): the figures docs/cost.md multiplies by memory size."""
    headers = auth_for("timing")
    data = image_bytes(800, 600)
    processing, creates, polls = [], [], []
    for _ in range(5):
        started = time.perf_counter()
        created = create(api, headers, len(data))
        creates.append(time.perf_counter() - started)
        bodies = uploader.put(created, data)
        started = time.perf_counter()
        deliver(api, bodies)
        processing.append(time.perf_counter() - started)
        started = time.perf_counter()
        assert api.http.get(f"/images/{created['id']}/status", headers=headers).json_body["status"] == "completed"
        polls.append(time.perf_counter() - started)
    figures = {
        "processing_ms_median": round(statistics.median(processing) * 1000, 1),
        "create_ms_median": round(statistics.median(creates) * 1000, 1),
        "status_ms_median": round(statistics.median(polls) * 1000, 1),
        "image_bytes": len(data),
    }
    print(f"\ncost-model timings (moto, in-process): {figures}")
    assert 0 < figures["processing_ms_median"] < 30_000
