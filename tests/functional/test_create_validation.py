"""POST /images with bad input: API.md error codes and bodies, never a 5xx, never internals."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tests.functional.conftest import Stack
from tests.functional.support import create_body, error_of, fields_named, post_image, user_image_items

AuthFor = Callable[[str], dict[str, str]]
MIB = 1024 * 1024


def test_an_unsupported_content_type_is_400_unsupported_media_type(
    api: Any, aws_stack: Stack, auth_for: AuthFor
) -> None:
    for content_type in (
        "text/plain",
        "image/svg+xml",
        "application/pdf",
        "image/tiff",
        "video/mp4",
        "jpeg",
        "",
        " ",
        "image/jpeg; charset=binary",
        "image/" + "x" * 300,
        "x" * 10_000,
    ):
        response = post_image(api, auth_for("alice"), contentType=content_type)

        error = error_of(response, 400, "unsupported_media_type")
        assert len(error["message"]) < 300, error["message"]  # a long value is not echoed whole
    assert user_image_items(aws_stack, "alice") == []


def test_a_content_type_that_is_not_a_string_is_400_naming_it(api: Any, aws_stack: Stack, auth_for: AuthFor) -> None:
    for content_type in (None, 1, True, ["image/jpeg"], {"type": "image/jpeg"}):
        response = post_image(api, auth_for("alice"), contentType=content_type)

        assert fields_named(error_of(response, 400, "validation_error")) == {"contentType"}, content_type
    assert user_image_items(aws_stack, "alice") == []


def test_a_size_above_ten_mib_is_413_payload_too_large(api: Any, aws_stack: Stack, auth_for: AuthFor) -> None:
    for size in (10 * MIB + 1, 11 * MIB, 10**15, 10**40):
        response = post_image(api, auth_for("alice"), size=size)

        error_of(response, 413, "payload_too_large")
    assert user_image_items(aws_stack, "alice") == []


def test_a_size_that_is_not_a_positive_integer_is_400_naming_size(api: Any, auth_for: AuthFor) -> None:
    for size in (0, -1, -(10**20), "100", "", True, False, 1.5, None, [100], {"bytes": 100}):
        response = post_image(api, auth_for("alice"), size=size)

        error = error_of(response, 400, "validation_error")
        assert fields_named(error) == {"size"}, (size, error)


def test_a_field_that_is_missing_unknown_or_beyond_the_limits_is_400_naming_it(api: Any, auth_for: AuthFor) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"title": "t" * 201}, "title"),
        ({"description": "d" * 2001}, "description"),
        ({"tags": [f"tag{i}" for i in range(21)]}, "tags"),
        ({"tags": ["x" * 51]}, "tags"),
        ({"tags": ["ok", "y" * 51]}, "tags"),
        ({"filename": "f" * 256}, "filename"),
        ({"filename": ""}, "filename"),
        ({"userId": "mallory"}, "userId"),
    ]
    bodies = [(create_body(**overrides), field) for overrides, field in cases]
    for missing in ("filename", "contentType", "size"):
        body = create_body()
        del body[missing]
        bodies.append((body, missing))

    for body, field in bodies:
        response = api.http.post("/images", headers=auth_for("alice"), body=json.dumps(body))

        error = error_of(response, 400, "validation_error")
        assert fields_named(error) == {field}, (body, error)


def test_values_at_the_documented_limits_are_accepted(api: Any, auth_for: AuthFor) -> None:
    response = post_image(
        api,
        {**auth_for("alice"), "Idempotency-Key": "k" * 255},
        title="t" * 200,
        description="d" * 2000,
        tags=[f"{i:02d}" + "x" * 48 for i in range(20)],
        filename="f" * 251 + ".jpg",
        size=10 * MIB,
    )

    assert response.status_code == 201, response.body
    assert len(response.json_body["image"]["tags"]) == 20
    assert post_image(api, auth_for("alice"), size=1).status_code == 201


def test_a_body_that_is_not_a_json_object_is_400(api: Any, auth_for: AuthFor) -> None:
    for raw in ("{bad json", '{"filename": "a.jpg",}', "[]", "[1, 2]", "null", "1", '"text"', ""):
        response = api.http.post("/images", headers=auth_for("alice"), body=raw)

        error = error_of(response, 400, "validation_error")
        assert fields_named(error) == {"body"}, (raw, error)
    # A byte order mark is skipped: an empty object, which lacks the required fields.
    response = api.http.post("/images", headers=auth_for("alice"), body="\ufeff{}")
    assert fields_named(error_of(response, 400, "validation_error")) == {"filename", "contentType", "size"}


def test_an_idempotency_key_too_long_or_with_non_printable_characters_is_400(
    api: Any, aws_stack: Stack, auth_for: AuthFor
) -> None:
    for key in ("k" * 256, "tab\there", "nul\x00byte", "bell\x07", "del\x7f", "é-accent", "emoji-😀", "line\nbreak"):
        headers = {**auth_for("alice"), "Idempotency-Key": key}

        response = api.http.post("/images", headers=headers, body=json.dumps(create_body()))

        assert fields_named(error_of(response, 400, "validation_error")) == {"Idempotency-Key"}, key
    assert user_image_items(aws_stack, "alice") == []


def test_no_bad_input_ever_gets_a_5xx_or_leaks_internals(api: Any, auth_for: AuthFor) -> None:
    headers = auth_for("alice")
    nasty_bodies = [
        json.dumps(create_body(size=2**63)),
        json.dumps(create_body(size=-(2**63))),
        json.dumps(create_body(tags=[None])),
        json.dumps(create_body(tags=[["nested"]])),
        json.dumps(create_body(title={"$ne": ""})),
        json.dumps(create_body(filename="../../etc/passwd\x00.jpg")),
        json.dumps(create_body(albumId="ALBUM#../x\x00")),
        json.dumps(create_body(contentType="image/jpeg; charset=binary")),
        json.dumps(create_body(contentType="x" * 10_000)),
        json.dumps({"filename": {"a": 1}, "contentType": [], "size": {}}),
        '{"filename": "a.jpg", "contentType": "image/jpeg", "size": 1e400}',
        '{"size": NaN}',
        "\xff\xfe\x00garbage",
    ]
    for raw in nasty_bodies:
        response = api.http.post("/images", headers=headers, body=raw)

        assert 400 <= response.status_code < 500, (raw[:80], response.status_code, response.body)
        error_of(response, response.status_code, response.json_body["error"]["code"])
    for content_type in ("text/plain", "application/x-www-form-urlencoded"):
        response = api.http.post(
            "/images", headers={**headers, "Content-Type": content_type}, body=json.dumps(create_body())
        )
        assert 400 <= response.status_code < 500, (content_type, response.status_code, response.body)
        error_of(response, response.status_code, response.json_body["error"]["code"])


def test_a_deeply_nested_json_body_is_400_not_500(api: Any, auth_for: AuthFor) -> None:
    response = api.http.post("/images", headers=auth_for("alice"), body='{"a": ' * 5000 + "1" + "}" * 5000)

    assert fields_named(error_of(response, 400, "validation_error")) == {"body"}


def test_an_internal_failure_is_a_500_without_internals(api: Any, aws_stack: Stack, auth_for: AuthFor) -> None:
    aws_stack.dynamodb.delete_table(TableName=aws_stack.table_name)

    response = post_image(api, auth_for("alice"))

    error_of(response, 500, "internal_error")
    assert "ResourceNotFound" not in response.body.decode()
    assert aws_stack.table_name not in response.body.decode()
