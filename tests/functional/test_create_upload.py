"""POST /images through chalice.test.Client against moto: the 201 contract of API.md.

Each test pays for a fresh mocked stack, so related checks of one response share a test.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib import dependencies
from chalicelib.models.common import parse_time
from chalicelib.models.requests import CreateImageRequest
from tests.functional.conftest import Stack
from tests.functional.support import create_body, decode_policy, image_item, post_image, user_image_items

ULID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")
RFC3339_Z = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z")
FIFTEEN_MINUTES = timedelta(minutes=15)
SLACK = timedelta(seconds=5)
COMPLETION_ONLY = ("width", "height", "imageUrl", "thumbnailUrl", "placeholder", "uploadedAt")

AuthFor = Callable[[str], dict[str, str]]


def pinned(conditions: list[Any], field: str) -> str | None:
    """The exact value a POST policy pins for ``field`` ({"f": v} or ["eq", "$f", v])."""
    for condition in conditions:
        if isinstance(condition, dict) and field in condition:
            return str(condition[field])
        if isinstance(condition, list) and len(condition) == 3 and condition[:2] == ["eq", f"${field}"]:
            return str(condition[2])
    return None


def test_create_answers_201_with_the_documented_body(api: Any, aws_stack: Stack, auth_for: AuthFor) -> None:
    before = datetime.now(UTC)
    response = post_image(api, auth_for("alice"), size=123_456, title="Castle MOC", tags=["castle", "moc"])
    after = datetime.now(UTC)

    assert response.status_code == 201, response.body
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json_body
    image_id = body["id"]
    assert ULID.fullmatch(image_id)
    assert body["status"] == "pending"
    assert body["statusUrl"] == f"/images/{image_id}/status"

    upload = body["upload"]
    assert upload["method"] == "POST"
    assert upload["url"].startswith("https://")
    assert aws_stack.upload_bucket in upload["url"]
    assert "s3-accelerate" not in upload["url"]  # the local stage does not enable acceleration
    assert upload["fields"]["key"] == f"uploads/alice/{image_id}"
    assert upload["fields"]["Content-Type"] == "image/jpeg"
    assert upload["fields"]["policy"]
    assert RFC3339_Z.fullmatch(upload["expiresAt"])
    assert before + FIFTEEN_MINUTES - SLACK <= parse_time(upload["expiresAt"]) <= after + FIFTEEN_MINUTES + SLACK

    image = body["image"]
    assert image["id"] == image_id
    assert image["userId"] == "alice"
    assert image["status"] == "pending"
    assert image["title"] == "Castle MOC"
    assert image["tags"] == ["castle", "moc"]
    assert image["originalFilename"] == "castle.jpg"
    assert image["contentType"] == "image/jpeg"
    assert image["fileSize"] == 123_456
    assert image["format"] == "webp"
    assert image["version"] == 1
    assert RFC3339_Z.fullmatch(image["createdAt"])
    assert not set(COMPLETION_ONLY) & set(image)


def test_the_post_policy_pins_key_type_and_length_and_expires_within_fifteen_minutes(
    api: Any, aws_stack: Stack, auth_for: AuthFor
) -> None:
    before = datetime.now(UTC)
    body = post_image(api, auth_for("alice"), size=123_456).json_body
    after = datetime.now(UTC)

    policy = decode_policy(body["upload"]["fields"]["policy"])
    conditions: list[Any] = policy["conditions"]
    assert pinned(conditions, "key") == f"uploads/alice/{body['id']}"
    assert pinned(conditions, "Content-Type") == "image/jpeg"
    assert pinned(conditions, "bucket") == aws_stack.upload_bucket
    assert ["content-length-range", 1, 123_456] in conditions
    assert not any(isinstance(c, list) and c and c[0] == "starts-with" for c in conditions)
    expiration = parse_time(policy["expiration"])
    assert before + FIFTEEN_MINUTES - SLACK <= expiration <= after + FIFTEEN_MINUTES + SLACK


def test_every_documented_content_type_is_accepted_and_pinned_in_the_policy(api: Any, auth_for: AuthFor) -> None:
    for content_type in ("image/jpeg", "image/png", "image/webp", "image/gif"):
        response = post_image(api, auth_for("alice"), contentType=content_type, size=1)

        assert response.status_code == 201, (content_type, response.body)
        fields = response.json_body["upload"]["fields"]
        assert fields["Content-Type"] == content_type
        conditions = decode_policy(fields["policy"])["conditions"]
        assert pinned(conditions, "Content-Type") == content_type
        assert ["content-length-range", 1, 1] in conditions


def test_create_stores_pending_items_under_the_documented_keys(api: Any, aws_stack: Stack, auth_for: AuthFor) -> None:
    plain = post_image(api, auth_for("alice")).json_body["id"]
    in_album = post_image(api, auth_for("alice"), albumId="summer-2026").json_body["id"]

    item = image_item(aws_stack, plain)
    assert item is not None
    assert item["PK"] == f"IMAGE#{plain}"
    assert item["SK"] == "METADATA"
    assert item["GSI1PK"] == "USER#alice"
    assert item["GSI1SK"].startswith("UPLOADED#")
    assert item["status"] == "pending"
    assert item["userId"] == "alice"
    assert item["fileSize"] == 2_480_133
    assert "GSI2PK" not in item
    album_item = image_item(aws_stack, in_album)
    assert album_item is not None
    assert album_item["GSI2PK"] == "ALBUM#5#alice#summer-2026"  # one album of one user
    assert album_item["GSI2SK"].startswith("UPLOADED#")
    assert {i["id"] for i in user_image_items(aws_stack, "alice")} == {plain, in_album}
    assert user_image_items(aws_stack, "bob") == []


def test_the_upload_url_uses_transfer_acceleration_where_the_stage_enables_it(
    aws_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("USE_TRANSFER_ACCELERATION", "true")
    dependencies.reset()  # settings and clients are read once; read them again

    ticket = dependencies.upload_service().create("alice", CreateImageRequest.model_validate(create_body()), None)

    assert ticket.form is not None
    assert ticket.form.url == f"https://{aws_stack.upload_bucket}.s3-accelerate.amazonaws.com/"
    assert ticket.form.fields["key"] == f"uploads/alice/{ticket.record.id}"


def test_reindexing_moves_records_with_the_old_album_key_into_their_owners_album(
    api: Any, aws_stack: Stack, auth_for: AuthFor
) -> None:
    from operations.reindex_albums import reindex

    image_id = post_image(api, auth_for("alice"), albumId="summer-2026").json_body["id"]
    current = post_image(api, auth_for("alice"), albumId="summer-2026").json_body["id"]
    key = {"PK": {"S": f"IMAGE#{image_id}"}, "SK": {"S": "METADATA"}}
    aws_stack.dynamodb.update_item(  # as a release before the per-owner key wrote it
        TableName=aws_stack.table_name,
        Key=key,
        UpdateExpression="SET GSI2PK = :old",
        ExpressionAttributeValues={":old": {"S": "ALBUM#summer-2026"}},
    )

    def album() -> list[str]:
        response = api.http.get("/images?albumId=summer-2026", headers=auth_for("alice"))
        return [image["id"] for image in response.json_body["images"]]

    assert album() == [current]
    counted = reindex(aws_stack.dynamodb, aws_stack.table_name, apply=False)
    assert (counted.scanned, counted.stale, counted.rewritten) == (2, 1, 0)
    assert album() == [current]  # counting changes nothing

    applied = reindex(aws_stack.dynamodb, aws_stack.table_name, apply=True)

    assert (applied.stale, applied.rewritten) == (1, 1)
    assert album() == [current, image_id]
    assert reindex(aws_stack.dynamodb, aws_stack.table_name, apply=True).stale == 0
