"""Error messages that quote what a client sent keep it short and escaped."""

from __future__ import annotations

from chalicelib.errors import MAX_QUOTED_ID_LENGTH, NotFound, quoted_id


def test_an_id_the_service_could_have_issued_is_quoted_whole() -> None:
    ulid = "01JD3ZK4Q8N6W2T1R5Y7B9C0DE"
    assert NotFound.of("image", ulid).message == f"No image with id '{ulid}'."
    uuid = "123e4567-e89b-12d3-a456-426614174000"
    assert quoted_id(uuid) == repr(uuid)


def test_a_long_id_is_cut_to_a_short_prefix() -> None:
    message = NotFound.of("webhook", "A" * 100_000).message

    assert message == f"No webhook with id '{'A' * MAX_QUOTED_ID_LENGTH}…'."
    assert len(message) < 80


def test_control_characters_are_escaped_and_cannot_lengthen_the_message_without_bound() -> None:
    assert quoted_id("a\nb") == "'a\\nb'"
    worst = quoted_id("\U0010ffff" * 10_000)  # each escapes to 10 characters
    assert "\n" not in quoted_id("\n" * 50) and len(worst) <= MAX_QUOTED_ID_LENGTH * 10 + 3
