"""parse_notification and parse_upload_key: S3 event notifications as the queue delivers them."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote_plus

import pytest

from chalicelib.services.processing import UploadedObject, parse_notification, parse_upload_key

ULID = "01JD3ZK4Q8N6W2T1R5Y7B9C0DE"
UUID = "123e4567-e89b-12d3-a456-426614174000"


def record(key: str, bucket: str = "uploads", event_name: str = "ObjectCreated:Post") -> dict[str, Any]:
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventName": event_name,
        "s3": {"bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"}, "object": {"key": key, "size": 1}},
    }


def test_an_object_created_record_gives_its_bucket_and_key() -> None:
    body = json.dumps({"Records": [record(f"uploads/alice/{ULID}")]})

    assert parse_notification(body) == [UploadedObject(bucket="uploads", key=f"uploads/alice/{ULID}")]


@pytest.mark.parametrize(
    "event_name", ["ObjectCreated:Put", "ObjectCreated:Post", "ObjectCreated:CompleteMultipartUpload"]
)
def test_every_kind_of_object_created_event_is_accepted(event_name: str) -> None:
    body = json.dumps({"Records": [record("uploads/u/k", event_name=event_name)]})

    assert [o.key for o in parse_notification(body)] == ["uploads/u/k"]


@pytest.mark.parametrize(
    "event_name", ["ObjectRemoved:Delete", "ObjectRestore:Completed", "LifecycleExpiration:Delete"]
)
def test_events_other_than_object_created_give_nothing(event_name: str) -> None:
    body = json.dumps({"Records": [record("uploads/u/k", event_name=event_name)]})

    assert parse_notification(body) == []


def test_every_record_of_a_message_is_returned_in_order() -> None:
    body = json.dumps({"Records": [record("uploads/a/1"), record("uploads/b/2", bucket="other")]})

    assert parse_notification(body) == [
        UploadedObject(bucket="uploads", key="uploads/a/1"),
        UploadedObject(bucket="other", key="uploads/b/2"),
    ]


def test_the_s3_test_event_gives_nothing() -> None:
    body = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-01-01T00:00:00Z"})

    assert parse_notification(body) == []


@pytest.mark.parametrize("body", ["", "not json", "{", "[1, 2]", '"text"', "null", "{}"])
def test_a_body_that_is_not_a_notification_gives_nothing(body: str) -> None:
    assert parse_notification(body) == []


@pytest.mark.parametrize(
    "user_id",
    ["a b+c%é", "plain", "with space", "plus+sign", "100%", "ünïcödé-名前", "tilde~and*star", "a&b=c?d"],
)
def test_url_encoded_keys_are_decoded(user_id: str) -> None:
    key = f"uploads/{user_id}/{ULID}"
    # S3 encodes keys in notifications like application/x-www-form-urlencoded.
    for encoded in (quote_plus(key, safe="/"), quote_plus(key)):
        body = json.dumps({"Records": [record(encoded)]})

        assert parse_notification(body) == [UploadedObject(bucket="uploads", key=key)]


def test_records_without_a_bucket_or_key_are_skipped() -> None:
    incomplete: dict[str, Any] = {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "uploads"}}}
    body = json.dumps({"Records": [incomplete, record("uploads/u/k")]})

    assert [o.key for o in parse_notification(body)] == ["uploads/u/k"]


@pytest.mark.parametrize(
    "body",
    [
        '{"Records": "x"}',
        '{"Records": null}',
        '{"Records": [1]}',
        '{"Records": [{"eventName": "ObjectCreated:Put", "s3": 5}]}',
        '{"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": "b", "object": "k"}}]}',
    ],
)
def test_a_structurally_malformed_notification_gives_nothing_instead_of_raising(body: str) -> None:
    assert parse_notification(body) == []


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (f"uploads/alice/{ULID}", ("alice", ULID)),
        (f"uploads/a b+c%é/{ULID}", ("a b+c%é", ULID)),
        (f"uploads/alice/{UUID}", ("alice", UUID)),
    ],
)
def test_an_upload_key_gives_its_user_and_image_id(key: str, expected: tuple[str, str]) -> None:
    assert parse_upload_key(key) == expected


@pytest.mark.parametrize(
    "key",
    [
        "",
        f"uploads//{ULID}",
        f"uploads/{ULID}",
        f"uploads/alice/{ULID}/extra",
        f"uploads/alice/{ULID}.jpg",
        f"uploads/alice/{ULID.lower()}",
        f"images/alice/{ULID}",
        f"/uploads/alice/{ULID}",
        f"Uploads/alice/{ULID}",
        "uploads/alice/not-an-id",
        f"uploads/alice/{ULID}0",
        f"uploads/alice/{UUID.upper()}",
    ],
)
def test_any_other_key_is_not_an_upload_key(key: str) -> None:
    assert parse_upload_key(key) is None
