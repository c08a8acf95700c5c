"""A legacy ``gallery_images`` row becomes an image record (one mapping for all phases)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from chalicelib.models.common import ImageStatus
from chalicelib.models.imports import ImportImageRequest
from infra.stage_config import LEGACY_SCHEMA, SHARED_DIR
from migration.legacy import LegacyRow, RowRejected, row_to_body, row_to_record

ROW_ID = "0b7f3c7e-8a63-4b8e-9a53-2b1d1e7c5a10"


def row(**overrides: object) -> LegacyRow:
    values: dict[str, object] = {
        "id": uuid.UUID(ROW_ID),
        "user_id": "user-42",
        "album_id": "album-7",
        "title": "Castle",
        "description": None,
        "tags": ["castle", "moc"],
        "original_filename": "castle.JPG",
        "mime_type": "image/JPEG",
        "file_size": 123456,
        "s3_key": "images/user-42/castle.jpg",
        "thumbnail_key": None,
        "width": 1024,
        "height": 768,
        "created_at": datetime(2019, 5, 6, 7, 8, 9, 123456, tzinfo=timezone(timedelta(hours=2))),
        "updated_at": datetime(2020, 1, 2, 3, 4, 5, 999999, tzinfo=UTC),
    }
    values.update(overrides)
    return LegacyRow.from_mapping(values)


def test_a_row_maps_to_a_completed_record_keeping_its_id_keys_and_utc_millisecond_times() -> None:
    record = row_to_record(row())

    assert record.id == ROW_ID
    assert record.status is ImageStatus.COMPLETED
    assert record.user_id == "user-42"
    assert record.content_type == "image/jpeg"
    assert record.original_filename == "castle.JPG"
    assert record.created_at == "2019-05-06T05:08:09.123Z"
    assert record.updated_at == "2020-01-02T03:04:05.999Z"
    assert record.uploaded_at == record.created_at
    assert record.legacy_image_key == "images/user-42/castle.jpg"
    assert record.rendition_key == "images/user-42/castle.jpg"
    assert record.thumbnail_key == "images/user-42/castle.jpg"  # no legacy thumbnail: the image itself
    assert record.tags == ["castle", "moc"]
    assert (record.width, record.height, record.file_size) == (1024, 768, 123456)


def test_a_row_with_a_thumbnail_keeps_the_thumbnail_key() -> None:
    record = row_to_record(row(thumbnail_key="images/user-42/thumbs/castle.jpg"))

    assert record.thumbnail_key == "images/user-42/thumbs/castle.jpg"


def test_an_empty_album_id_means_no_album() -> None:
    assert row_to_record(row(album_id="")).album_id is None


def test_a_row_the_import_model_refuses_names_the_row_and_the_field() -> None:
    with pytest.raises(RowRejected) as rejected:
        row_to_record(row(tags=["ok", None]))

    assert rejected.value.image_id == ROW_ID
    assert "tags.1" in rejected.value.reason


def test_a_naive_timestamp_is_refused_rather_than_guessed() -> None:
    with pytest.raises(RowRejected) as rejected:
        row_to_record(row(created_at=datetime(2019, 5, 6, 7, 8, 9)))

    assert "created_at" in rejected.value.reason


def test_the_dual_write_body_is_the_camel_case_import_request_of_the_same_record() -> None:
    body = row_to_body(row())

    assert body["userId"] == "user-42"
    assert body["imageKey"] == "images/user-42/castle.jpg"
    assert body["contentType"] == "image/jpeg"
    assert ImportImageRequest.model_validate(body).updated_at == datetime(2020, 1, 2, 3, 4, 5, 999999, tzinfo=UTC)


def test_the_repository_copy_of_the_legacy_schema_is_the_shared_one() -> None:
    shared = SHARED_DIR / "legacy_schema.sql"
    if not shared.exists():
        pytest.skip(f"no shared folder at {SHARED_DIR} (set IMAGE_SERVICE_SHARED_DIR)")
    assert LEGACY_SCHEMA.read_bytes() == shared.read_bytes()


@pytest.mark.parametrize(
    ("s3_key", "thumbnail_key", "field"),
    [
        ("legacy/user-42/castle.jpg", None, "imageKey"),
        ("images/user-42/../other/castle.jpg", None, "imageKey"),
        ("images/user-42/castle.jpg", "thumbs/castle.jpg", "thumbnailKey"),
    ],
)
def test_a_row_whose_objects_the_import_endpoint_would_refuse_is_rejected_by_the_backfill_too(
    s3_key: str, thumbnail_key: str | None, field: str
) -> None:
    """The backfill writes to the table directly: it must refuse what PUT /internal/images
    refuses, or it would store an image whose DELETE cannot remove its objects."""
    with pytest.raises(RowRejected) as rejected:
        row_to_record(row(s3_key=s3_key, thumbnail_key=thumbnail_key))

    assert rejected.value.image_id == ROW_ID
    assert field in rejected.value.reason
