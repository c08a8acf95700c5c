"""format_time, parse_time, ids, object keys and event ids."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from chalicelib.models.common import ImageStatus, format_time, is_image_id, parse_time
from chalicelib.models.domain import event_id_for, event_type_for, rendition_key, thumbnail_key, upload_key
from chalicelib.services.uploads import new_image_id

RFC3339_UTC_MS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


def test_format_time_is_rfc3339_utc_with_z_and_milliseconds() -> None:
    moment = datetime(2026, 11, 22, 10, 15, 0, 123456, tzinfo=UTC)

    assert format_time(moment) == "2026-11-22T10:15:00.123Z"


def test_format_time_converts_other_offsets_to_utc() -> None:
    moment = datetime(2026, 11, 22, 11, 15, 0, 5000, tzinfo=timezone(timedelta(hours=1)))

    assert format_time(moment) == "2026-11-22T10:15:00.005Z"


def test_format_time_pads_whole_seconds_with_zero_milliseconds() -> None:
    assert format_time(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02T03:04:05.000Z"


def test_formatted_times_sort_as_text_like_the_moments_they_name() -> None:
    start = datetime(2026, 1, 1, 23, 59, 59, 999000, tzinfo=UTC)
    moments = [start + timedelta(milliseconds=step * 7) for step in range(0, 400, 13)]

    texts = [format_time(m) for m in moments]

    assert all(RFC3339_UTC_MS.fullmatch(t) for t in texts)
    assert sorted(texts) == texts


def test_parse_time_reads_back_what_format_time_wrote() -> None:
    moment = datetime(2026, 11, 22, 10, 15, 0, 123000, tzinfo=UTC)

    assert parse_time(format_time(moment)) == moment


def test_new_image_ids_are_distinct_ulids() -> None:
    ids = {new_image_id() for _ in range(200)}

    assert len(ids) == 200
    assert all(is_image_id(i) and len(i) == 26 for i in ids)


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("01JD3ZK4Q8N6W2T1R5Y7B9C0DE", True),
        ("123e4567-e89b-12d3-a456-426614174000", True),
        ("01jd3zk4q8n6w2t1r5y7b9c0de", False),
        ("01JD3ZK4Q8N6W2T1R5Y7B9C0DU", False),  # U is not Crockford base32
        ("01JD3ZK4Q8N6W2T1R5Y7B9C0D", False),
        ("01JD3ZK4Q8N6W2T1R5Y7B9C0DEX", False),
        ("01JD3ZK4Q8N6W2T1R5Y7B9C0DE\n", False),
        ("", False),
    ],
)
def test_is_image_id_accepts_ulids_and_legacy_uuids_only(value: str, valid: bool) -> None:
    assert is_image_id(value) is valid


def test_object_keys_follow_the_documented_layout() -> None:
    assert upload_key("alice", "ID") == "uploads/alice/ID"
    assert rendition_key("alice", "ID") == "images/alice/ID.webp"
    assert thumbnail_key("alice", "ID") == "images/alice/thumbnails/ID.webp"


def test_the_event_id_of_a_transition_is_stable() -> None:
    assert event_id_for("01JD3ZK4Q8N6W2T1R5Y7B9C0DE", ImageStatus.COMPLETED) == event_id_for(
        "01JD3ZK4Q8N6W2T1R5Y7B9C0DE", ImageStatus.COMPLETED
    )


def test_event_ids_are_uuids_distinct_per_image_and_per_outcome() -> None:
    ids = {
        event_id_for(image_id, status)
        for image_id in ("01JD3ZK4Q8N6W2T1R5Y7B9C0DE", "01JD3ZK4Q8N6W2T1R5Y7B9C0DF")
        for status in (ImageStatus.COMPLETED, ImageStatus.FAILED, ImageStatus.EXPIRED)
    }

    assert len(ids) == 6
    assert all(str(uuid.UUID(i)) == i for i in ids)


@pytest.mark.parametrize(
    ("status", "event_type"),
    [
        (ImageStatus.COMPLETED, "image.completed"),
        (ImageStatus.FAILED, "image.failed"),
        (ImageStatus.EXPIRED, "image.expired"),
    ],
)
def test_each_terminal_status_has_its_event_type(status: ImageStatus, event_type: str) -> None:
    assert status.is_terminal
    assert event_type_for(status) == event_type


@pytest.mark.parametrize("status", [ImageStatus.PENDING, ImageStatus.PROCESSING])
def test_unfinished_statuses_have_no_event(status: ImageStatus) -> None:
    assert not status.is_terminal
    with pytest.raises(KeyError):
        event_id_for("01JD3ZK4Q8N6W2T1R5Y7B9C0DE", status)
