"""CreateImageRequest: the limits of API.md and a stable fingerprint for idempotency."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from chalicelib.models.requests import AlbumId, CreateImageRequest, Filename, IdempotencyKey, Tag


def body(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"filename": "castle.jpg", "contentType": "image/jpeg", "size": 2_480_133}
    values.update(overrides)
    return values


def invalid_fields(payload: dict[str, Any]) -> set[str]:
    with pytest.raises(ValidationError) as caught:
        CreateImageRequest.model_validate(payload)
    return {str(error["loc"][0]) for error in caught.value.errors()}


def test_a_full_request_is_read_from_camel_case() -> None:
    request = CreateImageRequest.model_validate(
        body(title="Castle MOC", description="d", tags=["castle", "moc"], albumId="album-1")
    )

    assert request.filename == "castle.jpg"
    assert request.content_type == "image/jpeg"
    assert request.size == 2_480_133
    assert request.title == "Castle MOC"
    assert request.tags == ["castle", "moc"]
    assert request.album_id == "album-1"


def test_optional_fields_default_to_empty() -> None:
    request = CreateImageRequest.model_validate(body())

    assert (request.title, request.description, request.album_id, request.tags) == (None, None, None, [])


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"size": 0}, "size"),
        ({"size": -1}, "size"),
        ({"size": "100"}, "size"),
        ({"size": True}, "size"),
        ({"size": False}, "size"),
        ({"size": 1.5}, "size"),
        ({"size": float("inf")}, "size"),
        ({"size": None}, "size"),
        ({"title": "x" * 201}, "title"),
        ({"description": "x" * 2001}, "description"),
        ({"tags": [f"t{i}" for i in range(21)]}, "tags"),
        ({"tags": ["x" * 51]}, "tags"),
        ({"tags": [""]}, "tags"),
        ({"tags": "castle"}, "tags"),
        ({"tags": ["ok", "bad\nline"]}, "tags"),
        ({"filename": "x" * 256}, "filename"),
        ({"filename": ""}, "filename"),
        ({"filename": "a\x00b.jpg"}, "filename"),
        ({"contentType": None}, "contentType"),
        ({"contentType": 1}, "contentType"),
        ({"contentType": ["image/jpeg"]}, "contentType"),
        ({"albumId": ""}, "albumId"),
        ({"albumId": " "}, "albumId"),
        ({"albumId": "a\tb"}, "albumId"),
        ({"albumId": "x" * 129}, "albumId"),
        ({"unknownField": 1}, "unknownField"),
    ],
)
def test_a_value_outside_the_limits_is_refused_naming_the_field(overrides: dict[str, Any], field: str) -> None:
    assert field in invalid_fields(body(**overrides))


@pytest.mark.parametrize("missing", ["filename", "contentType", "size"])
def test_a_missing_required_field_is_refused_naming_the_field(missing: str) -> None:
    payload = body()
    del payload[missing]

    assert invalid_fields(payload) == {missing}


def test_values_at_the_limits_are_accepted() -> None:
    request = CreateImageRequest.model_validate(
        body(
            size=1,
            title="x" * 200,
            description="x" * 2000,
            tags=[f"{i:02d}" + "x" * 48 for i in range(20)],
            filename="f" * 255,
        )
    )

    assert len(request.tags) == 20
    assert all(len(tag) == 50 for tag in request.tags)


@pytest.mark.parametrize("content_type", ["", " ", "text/plain", "x" * 10_000])
def test_any_content_type_string_is_left_to_the_service_to_refuse(content_type: str) -> None:
    # The service answers unsupported_media_type (API.md), not validation_error.
    assert CreateImageRequest.model_validate(body(contentType=content_type)).content_type == content_type.strip()


@pytest.mark.parametrize("album_id", ["Summer 2020", "ALBUM#../x", "Été à Paris", "a/b", "x" * 128])
def test_an_album_id_is_printable_text_up_to_128_characters(album_id: str) -> None:
    assert CreateImageRequest.model_validate(body(albumId=album_id)).album_id == album_id


def test_a_whole_number_written_as_a_float_is_the_same_size() -> None:
    as_float = CreateImageRequest.model_validate(body(size=2048.0))
    as_int = CreateImageRequest.model_validate(body(size=2048))

    assert as_float.size == 2048
    assert isinstance(as_float.size, int)
    assert as_float.fingerprint() == as_int.fingerprint()


def test_duplicate_tags_are_collapsed_keeping_their_first_order() -> None:
    request = CreateImageRequest.model_validate(body(tags=["moc", "castle", "moc", "castle", "lego"]))

    assert request.tags == ["moc", "castle", "lego"]


def test_surrounding_whitespace_is_stripped() -> None:
    request = CreateImageRequest.model_validate(body(title="  Castle  ", filename=" castle.jpg "))

    assert request.title == "Castle"
    assert request.filename == "castle.jpg"


@pytest.mark.parametrize("blank", [" ", "\u00a0", "\u3000\u2003", " \u202f "])
def test_a_filename_or_tag_of_whitespace_only_is_refused(blank: str) -> None:
    assert invalid_fields(body(filename=blank)) == {"filename"}
    assert invalid_fields(body(tags=["castle", blank])) == {"tags"}


def documented_acceptance(schema: dict[str, Any], value: str) -> bool:
    """What the OpenAPI document says of a string (JSON Schema's pattern is a search)."""
    return schema["minLength"] <= len(value) <= schema["maxLength"] and re.search(schema["pattern"], value) is not None


def accepted(adapter: TypeAdapter[str], value: str) -> bool:
    try:
        adapter.validate_python(value, strict=True)
    except ValidationError:
        return False
    return True


# Text without control characters, up to a little past the limits (which hold for the
# trimmed value, so padding beyond them is the one difference the document cannot state).
_TEXT = st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=60)
_LONGER_TEXT = st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=140)


@given(_TEXT)
def test_the_document_and_the_validation_agree_on_every_tag(value: str) -> None:
    adapter = TypeAdapter(Tag, config={"str_strip_whitespace": True})
    schema = adapter.json_schema()
    if len(value) <= schema["maxLength"]:
        assert accepted(adapter, value) == documented_acceptance(schema, value)


@given(_TEXT)
def test_the_document_and_the_validation_agree_on_every_filename(value: str) -> None:
    adapter = TypeAdapter(Filename, config={"str_strip_whitespace": True})
    assert accepted(adapter, value) == documented_acceptance(adapter.json_schema(), value)


@given(_LONGER_TEXT)
def test_the_document_and_the_validation_agree_on_every_album_id(value: str) -> None:
    adapter = TypeAdapter(AlbumId, config={"str_strip_whitespace": True})
    schema = adapter.json_schema()
    if len(value) <= schema["maxLength"]:
        assert accepted(adapter, value) == documented_acceptance(schema, value)


def test_the_fingerprint_is_the_same_for_the_same_request() -> None:
    first = CreateImageRequest.model_validate(body(title="Castle", tags=["a", "b"]))
    second = CreateImageRequest.model_validate(body(title="Castle", tags=["a", "b"]))

    assert first.fingerprint() == second.fingerprint()
    assert first.fingerprint() == first.fingerprint()


def test_the_fingerprint_ignores_key_order_and_python_field_names() -> None:
    camel = CreateImageRequest.model_validate(
        {"size": 10, "albumId": "al", "contentType": "image/png", "filename": "f.png"}
    )
    snake = CreateImageRequest.model_validate(
        {"filename": "f.png", "content_type": "image/png", "size": 10, "album_id": "al"}
    )

    assert camel.fingerprint() == snake.fingerprint()


def test_the_fingerprint_ignores_what_validation_normalises() -> None:
    plain = CreateImageRequest.model_validate(body(title="Castle", tags=["a"]))
    noisy = CreateImageRequest.model_validate(body(title=" Castle ", tags=["a", "a"]))

    assert plain.fingerprint() == noisy.fingerprint()


def test_an_explicit_null_optional_field_fingerprints_like_an_absent_one() -> None:
    absent = CreateImageRequest.model_validate(body())
    null = CreateImageRequest.model_validate(body(title=None, description=None, albumId=None))

    assert absent.fingerprint() == null.fingerprint()


@pytest.mark.parametrize(
    "change",
    [
        {"filename": "other.jpg"},
        {"contentType": "image/png"},
        {"size": 2_480_134},
        {"title": "Castle"},
        {"description": "d"},
        {"tags": ["castle"]},
        {"albumId": "album-1"},
    ],
)
def test_any_change_of_a_field_changes_the_fingerprint(change: dict[str, Any]) -> None:
    base = CreateImageRequest.model_validate(body())
    changed = CreateImageRequest.model_validate(body(**change))

    assert base.fingerprint() != changed.fingerprint()


def test_the_fingerprint_is_a_sha256_hex_digest() -> None:
    fingerprint = CreateImageRequest.model_validate(body()).fingerprint()

    assert re.fullmatch(r"[0-9a-f]{64}", fingerprint)


_idempotency_key = TypeAdapter(IdempotencyKey)


@pytest.mark.parametrize(
    "key", ["a", "k" * 255, "order-42", "0b6f3c1e-0d3f-4f0e-9a51-8a6b3f1d2c4e", "~!@#$%^&*()_+{}|:<>?"]
)
def test_an_idempotency_key_of_1_to_255_printable_ascii_characters_is_accepted(key: str) -> None:
    assert _idempotency_key.validate_python(key) == key


@pytest.mark.parametrize("key", ["", "k" * 256, "tab\there", "nul\x00", "del\x7f", "é", "emoji-😀", "line\nbreak"])
def test_an_idempotency_key_outside_1_to_255_printable_ascii_is_refused(key: str) -> None:
    with pytest.raises(ValidationError):
        _idempotency_key.validate_python(key)


def test_an_idempotency_key_with_an_inner_space_is_accepted() -> None:
    assert _idempotency_key.validate_python("order 42") == "order 42"
