"""The user id rule (chalicelib.models.user_ids) over the whole range of strings: what it
accepts works as an object key segment, in URLs, S3 notifications, index keys and SNS
attributes; what it refuses is exactly what would break one of them."""

from __future__ import annotations

import re
from urllib.parse import quote_plus, unquote, unquote_plus, urljoin, urlsplit

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from chalicelib.auth import principal_from_claims
from chalicelib.errors import Unauthenticated
from chalicelib.models.common import ImageStatus
from chalicelib.models.domain import ImageRecord, rendition_key, thumbnail_key, upload_key
from chalicelib.models.imports import ImportImageRequest
from chalicelib.models.user_ids import MAX_USER_ID_LENGTH, is_user_id, user_id_problem
from chalicelib.services.presenter import Presenter
from chalicelib.services.processing import parse_upload_key

IMAGE_ID = "01JD3ZK4Q8N6W2T1R5Y7B9C0DE"
BASE = "http://127.0.0.1:8001"
# What SNS accepts in a message (and XML 1.0 in an S3 listing): tab, LF, CR, and these ranges.
_SNS_TEXT = re.compile("[\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*")

REFUSED = {
    "empty": "",
    "dot": ".",
    "dot-dot": "..",
    "slash": "a/b",
    "only slash": "/",
    "newline": "alice\n",
    "carriage return": "\ralice",
    "tab": "al\tice",
    "nul": "a\x00b",
    "escape": "\x1b[31m",
    "del": "a\x7f",
    "c1 next line": "a\x85b",
    "line separator": "a\u2028b",
    "paragraph separator": "a\u2029b",
    "lone surrogate": "a\ud800b",
    "non-character": "a\uffffb",
    "129 characters": "x" * 129,
}
ACCEPTED = {
    "uuid": "3f1c2b4e-5d6a-4b7c-8d9e-0f1a2b3c4d5e",
    "percent": "100%",
    "encoded dot-dot": "%2e%2e",
    "encoded slash": "a%2Fb",
    "hash": "#1",
    "question mark": "who?",
    "plus": "a+b",
    "spaces": " a b ",
    "backslash": "a\\b",
    "three dots": "...",
    "dot prefix": ".alice",
    "ampersand and equals": "a&b=c",
    "unicode": "Zoë 日本 🧱",
    "email": "user+tag@example.com",
    "128 characters": "x" * 128,
    "128 astral characters": "🧱" * 128,
}


@pytest.mark.parametrize("user_id", REFUSED.values(), ids=REFUSED.keys())
def test_an_unsafe_user_id_is_refused_everywhere_one_enters(user_id: str) -> None:
    assert user_id_problem(user_id) is not None
    with pytest.raises(Unauthenticated) as refused:
        principal_from_claims({"sub": user_id})
    assert "subject" in refused.value.message
    with pytest.raises(ValidationError) as invalid:
        ImportImageRequest.model_validate({"userId": user_id})
    assert any(error["loc"] == ("userId",) for error in invalid.value.errors())


@pytest.mark.parametrize("user_id", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_a_safe_user_id_is_kept_as_it_is(user_id: str) -> None:
    assert user_id_problem(user_id) is None
    assert principal_from_claims({"sub": user_id}).user_id == user_id


def test_the_refusal_says_what_is_wrong_without_echoing_the_subject() -> None:
    with pytest.raises(Unauthenticated) as refused:
        principal_from_claims({"sub": ".."})
    assert "'.' or '..'" in refused.value.message
    with pytest.raises(Unauthenticated) as refused:
        principal_from_claims({"sub": "evil\nINFO forged log line"})
    assert "control" in refused.value.message and "forged" not in refused.value.message


def _completed(user_id: str) -> ImageRecord:
    return ImageRecord(
        id=IMAGE_ID,
        user_id=user_id,
        status=ImageStatus.COMPLETED,
        original_filename="a.jpg",
        content_type="image/jpeg",
        file_size=1,
        created_at="2026-01-01T00:00:00.000Z",
        updated_at="2026-01-01T00:00:00.000Z",
    )


def _normalised_path(url: str) -> str:
    """The path an HTTP client or browser requests for ``url`` (dot segments removed)."""
    return urlsplit(urljoin(url, urlsplit(url).path)).path


def _check_usable(user_id: str) -> None:
    # Every key the id is part of has it as exactly one segment, and the processor parses
    # the upload key back from an S3 notification (keys there are form-encoded).
    key = upload_key(user_id, IMAGE_ID)
    assert key.split("/") == ["uploads", user_id, IMAGE_ID]
    assert parse_upload_key(unquote_plus(quote_plus(key, safe="/"))) == (user_id, IMAGE_ID)
    for object_key in (key, rendition_key(user_id, IMAGE_ID), thumbnail_key(user_id, IMAGE_ID)):
        assert len(object_key.encode("utf-8")) <= 1024  # S3's limit; UTF-8 encodable at all
    # imageUrl/thumbnailUrl: no query or fragment, nothing a client normalises away, and
    # the path decodes to the object's key.
    presenter = Presenter(BASE)
    status = presenter.status(_completed(user_id))
    for url, object_key in (
        (status.image_url, rendition_key(user_id, IMAGE_ID)),
        (status.thumbnail_url, thumbnail_key(user_id, IMAGE_ID)),
    ):
        assert url is not None
        parts = urlsplit(url)
        assert (parts.query, parts.fragment) == ("", "")
        assert _normalised_path(url) == parts.path
        assert unquote(parts.path) == f"/{object_key}"
        assert url.isascii() and url.isprintable()
    # SNS message attributes and filter policies, S3's XML listings.
    assert _SNS_TEXT.fullmatch(user_id) and "\n" not in user_id and "\r" not in user_id


@pytest.mark.parametrize("user_id", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_a_safe_user_id_makes_keys_and_urls_that_work(user_id: str) -> None:
    _check_usable(user_id)


@settings(max_examples=500)
@given(st.text(max_size=MAX_USER_ID_LENGTH + 8))
@example(".")
@example("..")
@example("a\nb")
@example("\ud800")
def test_every_string_is_either_refused_or_works_in_every_key_and_url(user_id: str) -> None:
    if is_user_id(user_id):
        _check_usable(user_id)
    else:
        with pytest.raises(Unauthenticated):
            principal_from_claims({"sub": user_id})


@settings(max_examples=300)
@given(st.text(st.characters(codec="utf-8", exclude_categories=["Cc", "Cs"]), min_size=1, max_size=128))
def test_printable_text_of_1_to_128_characters_is_accepted_unless_it_is_a_dot_segment_or_has_a_slash(
    user_id: str,
) -> None:
    expected = user_id not in (".", "..") and not set(user_id) & {"/", "\u2028", "\u2029", "\ufffe", "\uffff"}
    assert is_user_id(user_id) is expected


def test_is_user_id_refuses_what_is_not_a_string() -> None:
    assert not is_user_id(None)
    assert not is_user_id(42)
