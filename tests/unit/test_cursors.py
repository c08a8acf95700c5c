"""CursorCodec: signed, bound to the user and the query, and bounded before it is decoded."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest

from chalicelib.errors import InvalidCursor
from chalicelib.models.requests import ListImagesQuery
from chalicelib.services.cursors import MAX_CURSOR_LENGTH, CursorCodec

CODEC = CursorCodec("s" * 40)


def album_position(user_id: str, album_id: str) -> dict[str, Any]:
    """A LastEvaluatedKey of the album index, whose partition names the owner and the album."""
    return {
        "PK": {"S": "IMAGE#123e4567-e89b-12d3-a456-426614174000"},
        "SK": {"S": "METADATA"},
        "GSI2PK": {"S": f"ALBUM#{len(user_id)}#{user_id}#{album_id}"},
        "GSI2SK": {"S": "UPLOADED#2026-11-22T10:15:00.000Z"},
    }


def test_a_cursor_decodes_to_its_position_for_the_same_user_and_scope() -> None:
    position = album_position("alice", "castles")

    assert CODEC.decode(CODEC.encode(position, "alice", "album:castles"), "alice", "album:castles") == position


@pytest.mark.parametrize("character", ["a", "é", "\u4e00", "\U0001f600"])
def test_the_cursor_of_the_longest_user_and_album_ids_fits_the_bound(character: str) -> None:
    user_id, album_id = character * 128, character * 128
    position = album_position(user_id, album_id)

    cursor = CODEC.encode(position, user_id, f"album:{album_id}")

    assert len(cursor) <= MAX_CURSOR_LENGTH
    assert CODEC.decode(cursor, user_id, f"album:{album_id}") == position


def test_a_cursor_written_with_ascii_escapes_still_decodes() -> None:
    # Cursors handed out before the compact UTF-8 encoding stay valid.
    position = album_position("alice", "Été")
    payload = json.dumps({"k": position, "u": "alice", "s": "album:Été"}, separators=(",", ":"), sort_keys=True)
    signature = hmac.new(b"s" * 40, payload.encode(), hashlib.sha256).digest()

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    assert CODEC.decode(f"{b64(payload.encode())}.{b64(signature)}", "alice", "album:Été") == position


@pytest.mark.parametrize(
    "cursor", ["", ".", "a.b", "not-a-cursor", "é.é", "\x00", "a" * (MAX_CURSOR_LENGTH + 1), "a.b.c"]
)
def test_anything_that_is_not_a_cursor_is_invalid(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        CODEC.decode(cursor, "alice", "all")


def test_a_cursor_over_the_bound_is_refused_before_it_is_verified() -> None:
    valid = CODEC.encode(album_position("alice", "castles"), "alice", "all")

    with pytest.raises(InvalidCursor):
        CODEC.decode(valid + "=" * MAX_CURSOR_LENGTH, "alice", "all")


def test_a_foreign_cursor_is_invalid() -> None:
    cursor = CODEC.encode(album_position("alice", "castles"), "alice", "album:castles")

    for user_id, scope in (("bob", "album:castles"), ("alice", "all"), ("alice", "album:other")):
        with pytest.raises(InvalidCursor):
            CODEC.decode(cursor, user_id, scope)


@pytest.mark.parametrize("cursor", ["", "x" * 3000])
def test_the_query_model_leaves_every_cursor_string_to_the_codec(cursor: str) -> None:
    # An empty or over-long cursor is ``invalid_cursor`` (API.md), not a validation error.
    assert ListImagesQuery.model_validate({"cursor": cursor}).cursor == cursor
