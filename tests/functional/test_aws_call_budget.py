"""AWS calls per request, counted with botocore's event hooks.

These budgets are what make the latency targets reachable on DynamoDB (P95: get < 50 ms,
list of 20 < 100 ms, update < 80 ms): one round trip each.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib import aws


@pytest.fixture
def aws_calls(api: Any) -> Iterator[Counter[str]]:
    calls: Counter[str] = Counter()

    def count(event_name: str, **_: Any) -> None:
        # event_name is "before-call.<service>.<Operation>"
        calls[event_name.split(".", 1)[1]] += 1

    clients = [aws.dynamodb(), aws.s3(), aws.s3_presigner(), aws.sns(), aws.sqs()]
    for client in clients:
        client.meta.events.register("before-call", count)
    yield calls
    for client in clients:
        client.meta.events.unregister("before-call", count)


def _create(api: Any, headers: dict[str, str], **extra: str) -> dict[str, Any]:
    body = {"filename": "a.jpg", "contentType": "image/jpeg", "size": 1000}
    response = api.http.post("/images", headers={**headers, **extra}, body=json.dumps(body))
    assert response.status_code in (200, 201), response.body
    created: dict[str, Any] = json.loads(response.body)
    return created


def test_create_with_an_idempotency_key_is_one_transaction(api, aws_calls, auth_for):
    _create(api, auth_for("budget"), **{"Idempotency-Key": "k-1"})
    assert aws_calls == Counter({"dynamodb.TransactWriteItems": 1})


def test_create_without_a_key_is_one_put(api, aws_calls, auth_for):
    _create(api, auth_for("budget"))
    assert aws_calls == Counter({"dynamodb.PutItem": 1})


def test_status_and_get_are_one_consistent_read_each(api, aws_calls, auth_for):
    headers = auth_for("budget")
    image_id = _create(api, headers)["id"]
    aws_calls.clear()
    assert api.http.get(f"/images/{image_id}/status", headers=headers).status_code == 200
    assert aws_calls == Counter({"dynamodb.GetItem": 1})
    aws_calls.clear()
    assert api.http.get(f"/images/{image_id}", headers=headers).status_code == 200
    assert aws_calls == Counter({"dynamodb.GetItem": 1})


def test_a_list_page_is_one_query(api, aws_calls, auth_for):
    headers = auth_for("budget")
    for _ in range(3):
        _create(api, headers)
    aws_calls.clear()
    first = api.http.get("/images?limit=2", headers=headers)
    assert first.status_code == 200
    assert aws_calls == Counter({"dynamodb.Query": 1})
    aws_calls.clear()
    cursor = json.loads(first.body)["nextCursor"]
    assert api.http.get(f"/images?limit=2&cursor={cursor}", headers=headers).status_code == 200
    assert aws_calls == Counter({"dynamodb.Query": 1})


def test_a_patch_is_one_conditional_update(api, aws_calls, auth_for):
    headers = auth_for("budget")
    image_id = _create(api, headers)["id"]
    aws_calls.clear()
    response = api.http.patch(f"/images/{image_id}", headers=headers, body=json.dumps({"title": "t", "version": 1}))
    assert response.status_code == 200, response.body
    assert aws_calls == Counter({"dynamodb.UpdateItem": 1})


def test_a_patch_refused_before_the_write_is_one_consistent_read(api, aws_calls, auth_for):
    """No version (428) or nothing to change (400): one GetItem, to answer 404 / 403 first."""
    headers = auth_for("budget")
    image_id = _create(api, headers)["id"]
    for body in ({"title": "t"}, {"version": 1}):
        aws_calls.clear()
        response = api.http.patch(f"/images/{image_id}", headers=headers, body=json.dumps(body))
        assert response.status_code in (400, 428), response.body
        assert aws_calls == Counter({"dynamodb.GetItem": 1})
