"""Ids and values a careless or hostile client sends: 404 answers do not echo ids at
length, user ids that would break object keys and URLs are refused (and all others
work), validation messages say what a value must be instead of quoting a pattern."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter, ValidationError

from chalicelib.models.imports import ImportImageRequest
from chalicelib.models.requests import CreateImageRequest, CreateWebhookRequest
from tests.functional.conftest import Stack
from tests.functional.support import Uploader, create_body, error_of, image_bytes
from tests.migration.test_import_endpoint import legacy_body, service_headers

AuthFor = Callable[[str], dict[str, str]]
LONG_ID = "A" * 5000


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/images/{id}"),
        ("get", "/images/{id}/status"),
        ("patch", "/images/{id}"),
        ("delete", "/images/{id}"),
        ("delete", "/webhooks/{id}"),
    ],
)
def test_a_404_for_a_very_long_id_quotes_only_a_short_prefix(
    api: Any, auth_for: AuthFor, method: str, path: str
) -> None:
    response = getattr(api.http, method)(path.format(id=LONG_ID), headers=auth_for("alice"), body='{"version": 1}')

    error = error_of(response, 404, "not_found")
    assert LONG_ID[:100] not in error["message"] and len(error["message"]) < 100, error
    assert len(response.body) < 300


# -- user ids that would break object keys and URLs -------------------------------------
#
# chalicelib.models.user_ids refuses them wherever a user id enters: a token's subject
# (401), an import body's userId (400 naming the field), scripts/mint_token.py. The rest of the
# range works end to end: tests/unit/test_user_ids.py checks every string against keys and
# URLs, these the API over moto.

REFUSED_SUBJECTS = {
    "dot": ".",
    "dot-dot": "..",
    "newline": "alice\nbob",
    "trailing newline": "alice\n",
    "nul": "\x00",
    "tab": "a\tb",
    "del": "a\x7f",
    "c1 next line": "a\x85b",
    "line separator": "a\u2028b",
    "lone surrogate": "a\ud800b",
    "slash": "a/b",
    "129 characters": "x" * 129,
}
ACCEPTED_SUBJECTS = {
    "percent": "50%off",
    "encoded dot-dot": "%2e%2e",
    "hash and question mark": "#who?",
    "plus and spaces": "a + b",
    "backslash": "a\\b",
    "three dots": "...",
    "unicode": "Zoë 日本 🧱",
    "128 characters": "u" * 128,
}


@pytest.mark.parametrize("subject", REFUSED_SUBJECTS.values(), ids=REFUSED_SUBJECTS.keys())
def test_a_token_whose_subject_cannot_be_a_user_id_is_401_with_a_clear_message(
    api: Any, auth_for: AuthFor, aws_stack: Stack, subject: str
) -> None:
    headers = auth_for(subject)
    for response in (
        api.http.post("/images", headers=headers, body=json.dumps(create_body())),
        api.http.get("/images", headers=headers),
        api.http.post("/webhooks", headers=headers, body=json.dumps({"url": "http://127.0.0.1:9/hook"})),
    ):
        error = error_of(response, 401, "unauthorized")
        assert "subject" in error["message"] and "user id" in error["message"], error
    # Nothing was written for it.
    assert aws_stack.s3.list_objects_v2(Bucket=aws_stack.upload_bucket).get("KeyCount", 0) == 0
    assert aws_stack.dynamodb.scan(TableName=aws_stack.table_name, Select="COUNT")["Count"] == 0


@pytest.mark.parametrize("subject", ACCEPTED_SUBJECTS.values(), ids=ACCEPTED_SUBJECTS.keys())
def test_any_other_subject_uploads_processes_lists_and_serves_its_image(
    api: Any, aws_stack: Stack, uploader: Uploader, subject: str
) -> None:
    image_id, _ = uploader.process(image_bytes(), user_id=subject)

    status = uploader.status(image_id, user_id=subject)
    assert status["status"] == "completed", status
    for url in (status["imageUrl"], status["thumbnailUrl"]):
        parts = urlsplit(url)
        assert (parts.query, parts.fragment) == ("", "") and "/./" not in parts.path and "/../" not in parts.path
        key = unquote(parts.path).removeprefix("/")
        assert key.split("/")[1] == subject
        assert uploader.image_object(key), key
    listed = api.http.get("/images", headers=uploader.auth_for(subject)).json_body["images"]
    assert [image["id"] for image in listed] == [image_id]
    assert listed[0]["userId"] == subject


def test_the_token_script_refuses_a_user_id_the_api_would_refuse(capsys: pytest.CaptureFixture[str]) -> None:
    from operations import mint_token

    for user_id in ("..", "a\nb", "a/b", ""):
        with pytest.raises(SystemExit) as exited:
            mint_token.main([user_id])
        assert exited.value.code == 2
        assert "user_id must" in capsys.readouterr().err
    assert mint_token.main(["Zoë %#?"]) == 0
    assert capsys.readouterr().out.count(".") == 2  # a JWT


# -- validation messages say what a value must be, never a regular expression -----------


def _details(response: Any) -> list[dict[str, str]]:
    error = error_of(response, 400, "validation_error")
    details: list[dict[str, str]] = error["details"]
    return details


def _quotes_a_pattern(message: str) -> bool:
    return "pattern" in message or any(mark in message for mark in ("^", "$", "[^", "\\x", "]*", "]+"))


def test_no_validation_message_quotes_a_pattern(api: Any, auth_for: AuthFor) -> None:
    headers = auth_for("alice")
    responses = []
    for value in ("", " ", "\u3000", "a\nb", "\x00", "tab\there", "\x9f"):
        responses += [
            api.http.post("/images", headers=headers, body=json.dumps(create_body(filename=value))),
            api.http.post("/images", headers=headers, body=json.dumps(create_body(tags=["ok", value]))),
            api.http.post("/images", headers=headers, body=json.dumps(create_body(albumId=value))),
            api.http.post("/webhooks", headers=headers, body=json.dumps({"url": f"https://example.com/{value}"})),
            api.http.get(f"/images?albumId={quote(value)}", headers=headers),
        ]
    responses += [
        api.http.put(
            f"/internal/images/{uuid.uuid4()}",
            headers=service_headers(),
            body=json.dumps(legacy_body(contentType="not a media type", userId="..")),
        ),
        api.http.post("/images", headers={**headers, "Idempotency-Key": "a\x7fb"}, body=json.dumps(create_body())),
    ]
    messages = []
    for response in responses:
        for detail in _details(response):
            assert not _quotes_a_pattern(detail["message"]), detail
            messages.append(detail["message"])
    assert "must not be blank or contain control characters" in messages
    assert "must be a media type such as 'image/jpeg'" in messages
    assert "must not be '.' or '..'" in messages


def test_every_pattern_of_the_request_models_has_words_for_it() -> None:
    from chalicelib.models import imports, requests
    from chalicelib.models.common import UNDESCRIBED_PATTERN_MESSAGE, ImageId, pattern_message

    schemas = [
        value.model_json_schema()
        for module in (requests, imports)
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, BaseModel) and value.__module__ == module.__name__
    ]
    schemas += [TypeAdapter(requests.IdempotencyKey).json_schema(), TypeAdapter(ImageId).json_schema()]
    patterns = _patterns(schemas)
    assert len(patterns) >= 4  # printable text, idempotency key, media type, image id
    assert {p for p in patterns if pattern_message(p) == UNDESCRIBED_PATTERN_MESSAGE} == set()


def _patterns(schema: object) -> set[str]:
    if isinstance(schema, dict):
        found = {schema["pattern"]} if isinstance(schema.get("pattern"), str) else set()
        return found.union(*(_patterns(value) for value in schema.values()))
    if isinstance(schema, list):
        return set().union(*(_patterns(value) for value in schema))
    return set()


@given(st.text(max_size=300))
@settings(max_examples=200, deadline=None)
def test_a_pattern_error_of_any_value_is_told_in_words(value: str) -> None:
    from chalicelib.api.http import field_problems

    for model, body in (
        (CreateImageRequest, create_body(filename=value, tags=[value], albumId=value)),
        (CreateWebhookRequest, {"url": value}),
        (ImportImageRequest, legacy_body(contentType=value, userId=value, albumId=value)),
    ):
        try:
            model.model_validate(body)
        except ValidationError as exc:
            for problem in field_problems(exc):
                assert not _quotes_a_pattern(problem.message), problem
