"""Idempotency-Key on POST /images against moto's DynamoDB."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from chalicelib import dependencies
from chalicelib.models.common import parse_time
from chalicelib.models.domain import RENDITION_VERSION
from chalicelib.models.requests import CreateImageRequest
from chalicelib.repositories.images import ImageRepository
from chalicelib.services.uploads import UploadService, UploadTicket
from chalicelib.settings import get_settings
from tests.functional.conftest import Stack
from tests.functional.support import (
    Uploader,
    create_body,
    deliver,
    error_of,
    image_bytes,
    plain_item,
    upload_notifications,
    user_image_items,
)

AuthFor = Callable[[str], dict[str, str]]


def post(api: Any, headers: dict[str, str], key: str, **overrides: Any) -> Any:
    return api.http.post(
        "/images", headers={**headers, "Idempotency-Key": key}, body=json.dumps(create_body(**overrides))
    )


def test_same_idempotency_key_and_body_returns_the_same_image_with_a_fresh_upload(
    api: Any, aws_stack: Stack, auth_for: AuthFor
) -> None:
    first = post(api, auth_for("alice"), "order-42")
    second = post(api, auth_for("alice"), "order-42")

    assert first.status_code == 201
    assert second.status_code == 200, second.body
    assert second.json_body["id"] == first.json_body["id"]
    assert second.json_body["status"] == "pending"
    upload = second.json_body["upload"]
    assert upload["fields"]["key"] == f"uploads/alice/{first.json_body['id']}"
    assert upload["fields"]["policy"]
    assert parse_time(upload["expiresAt"]) > parse_time(first.json_body["upload"]["expiresAt"])
    assert [i["id"] for i in user_image_items(aws_stack, "alice")] == [first.json_body["id"]]


def test_same_idempotency_key_with_a_different_body_is_422(api: Any, aws_stack: Stack, auth_for: AuthFor) -> None:
    first = post(api, auth_for("alice"), "order-42")

    for change in ({"size": 1}, {"title": "other"}, {"contentType": "image/png"}, {"tags": ["x"]}):
        response = post(api, auth_for("alice"), "order-42", **change)

        error_of(response, 422, "idempotency_key_reused")
    assert [i["id"] for i in user_image_items(aws_stack, "alice")] == [first.json_body["id"]]


def test_the_same_key_used_by_two_users_makes_two_images(api: Any, aws_stack: Stack, auth_for: AuthFor) -> None:
    alices = post(api, auth_for("alice"), "shared")
    bobs = post(api, auth_for("bob"), "shared")

    assert (alices.status_code, bobs.status_code) == (201, 201)
    assert alices.json_body["id"] != bobs.json_body["id"]
    assert bobs.json_body["upload"]["fields"]["key"] == f"uploads/bob/{bobs.json_body['id']}"
    assert [i["id"] for i in user_image_items(aws_stack, "bob")] == [bobs.json_body["id"]]


def test_idempotency_keys_of_different_users_never_collide(api: Any, aws_stack: Stack, auth_for: AuthFor) -> None:
    first = post(api, auth_for("a"), "b#c")
    second = post(api, auth_for("a#b"), "c")

    assert (first.status_code, second.status_code) == (201, 201), second.body
    assert second.json_body["id"] != first.json_body["id"]
    assert second.json_body["upload"]["fields"]["key"].startswith("uploads/a#b/")


def test_replaying_a_key_after_the_upload_completed_gives_the_image_without_a_form(
    api: Any, aws_stack: Stack, auth_for: AuthFor, uploader: Uploader
) -> None:
    data = image_bytes()
    created = post(api, auth_for("alice"), "order-42", size=len(data)).json_body
    aws_stack.s3.put_object(Bucket=aws_stack.upload_bucket, Key=created["upload"]["fields"]["key"], Body=data)
    deliver(api, upload_notifications(aws_stack))

    replay = post(api, auth_for("alice"), "order-42", size=len(data))

    assert replay.status_code == 200
    assert replay.json_body["id"] == created["id"]
    assert replay.json_body["status"] == "completed"
    assert "upload" not in replay.json_body
    assert replay.json_body["image"]["imageUrl"].endswith(
        f"/images/alice/{created['id']}/v{RENDITION_VERSION}/320.webp"
    )


class SerialisedClient:
    """Each DynamoDB call runs alone, as every real DynamoDB request is atomic.

    moto's TransactWriteItems is not thread-safe (it snapshots and restores whole tables),
    so concurrent transactions in moto can both "win". Serialising single requests keeps
    the interleaving between the service's calls, which is what this test is about.
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attribute(*args, **kwargs)

        return call


def test_sixteen_concurrent_creates_with_one_key_make_exactly_one_image(api: Any, aws_stack: Stack) -> None:
    settings = get_settings()
    repository = ImageRepository(cast(Any, SerialisedClient(aws_stack.dynamodb)), settings.table_name)
    service = UploadService(repository, dependencies.object_store(), settings)
    request = CreateImageRequest.model_validate(create_body(size=1000))
    barrier = threading.Barrier(16, timeout=30)

    def create(_: int) -> UploadTicket:
        barrier.wait()
        return service.create("alice", request, "burst-key")

    with ThreadPoolExecutor(max_workers=16) as pool:
        tickets = list(pool.map(create, range(16)))

    items = user_image_items(aws_stack, "alice")
    assert len(items) == 1
    assert {t.record.id for t in tickets} == {items[0]["id"]}
    assert sum(not t.replayed for t in tickets) == 1
    assert all(t.form is not None and t.form.fields["key"] == f"uploads/alice/{items[0]['id']}" for t in tickets)


def test_a_key_is_remembered_for_24_hours_and_free_again_only_after_its_expiry(api: Any, aws_stack: Stack) -> None:
    settings = get_settings()
    now = datetime.now(UTC)
    moment = [now]
    service = UploadService(
        dependencies.image_repository(), dependencies.object_store(), settings, clock=lambda: moment[0]
    )
    request = CreateImageRequest.model_validate(create_body())

    first = service.create("alice", request, "order-42")
    # Whatever its key layout, the remembered key carries a TTL at least a day ahead.
    expiring = [
        plain_item(i) for i in aws_stack.dynamodb.scan(TableName=aws_stack.table_name)["Items"] if "fingerprint" in i
    ]
    assert len(expiring) == 1
    assert expiring[0]["ttl"] >= int(now.timestamp()) + 24 * 3600
    moment[0] = now + timedelta(hours=24)
    within = service.create("alice", request, "order-42")
    moment[0] = now + timedelta(seconds=settings.idempotency_ttl_seconds + 1)
    after = service.create("alice", request, "order-42")

    assert within.replayed is True
    assert within.record.id == first.record.id
    assert after.replayed is False
    assert after.record.id != first.record.id
    assert len(user_image_items(aws_stack, "alice")) == 2
