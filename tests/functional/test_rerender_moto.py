"""RerenderService on moto with the real adapters and the real image processor (issue 18):
a PATCH made between the read and the switch survives, a deleted image stays deleted, a
corrupt legacy original keeps its URLs and gets the marker, and a second run changes nothing."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image

from chalicelib.models.common import ImageStatus
from chalicelib.models.domain import ImageRecord
from chalicelib.services.rerender import RerenderResult, RerenderService
from tests.contract.backends import MotoBackend, moto_stage

ID = "01J00000000000000000000001"
T0 = "2026-03-14T09:00:00.000Z"
LEGACY = "images/legacy/alice/castle.jpg"
LEGACY_THUMB = "images/legacy/alice/castle_t.jpg"
TARGET = 3


@pytest.fixture
def moto() -> Iterator[MotoBackend]:
    with moto_stage() as stage:
        yield MotoBackend(stage)


def jpeg(width: int = 1200, height: int = 800) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (180, 40, 60)).save(out, "JPEG")
    return out.getvalue()


def seed_legacy(moto: MotoBackend, original: bytes) -> ImageRecord:
    moto.store.write_image(LEGACY, original, "image/jpeg")
    moto.store.write_image(LEGACY_THUMB, b"legacy thumbnail", "image/jpeg")
    record = ImageRecord(
        id=ID,
        user_id="alice",
        status=ImageStatus.COMPLETED,
        original_filename="castle.jpg",
        content_type="image/jpeg",
        file_size=len(original),
        title="Castle",
        created_at=T0,
        updated_at=T0,
        width=640,
        height=480,
        legacy_image_key=LEGACY,
        legacy_thumbnail_key=LEGACY_THUMB,
    )
    moto.seed(record)
    return record


def service(moto: MotoBackend, processor: Any = None) -> RerenderService:
    return RerenderService(moto.images, moto.store, moto.settings, processor=processor, version=TARGET)


def real(data: bytes, limits: Any) -> Any:
    from processors import process_image

    return process_image(data, limits)


def test_a_patch_between_read_and_switch_survives_and_a_second_run_changes_nothing(moto: MotoBackend) -> None:
    seed_legacy(moto, jpeg())

    def patch_then_process(data: bytes, limits: Any) -> Any:
        moto.queries.update_metadata(ID, "alice", {"title": "Renamed"}, 1, "2026-03-14T10:00:00.000Z")
        return real(data, limits)

    assert service(moto, patch_then_process).rerender(ID) is RerenderResult.RENDERED

    record = moto.images.get(ID)
    assert record is not None
    assert (record.title, record.version, record.updated_at) == ("Renamed", 2, "2026-03-14T10:00:00.000Z")
    assert (record.rendition_version, record.width, record.height) == (TARGET, 1200, 800)
    assert record.thumbhash and record.perceptual_hash
    for key in [*(r.key for r in record.renditions or ()), record.thumbnail_key]:
        assert moto.read_image(key) is not None
    assert Image.open(io.BytesIO(moto.read_image(record.rendition_key) or b"")).format == "WEBP"
    assert (moto.read_image(LEGACY), moto.read_image(LEGACY_THUMB)) == (jpeg(), b"legacy thumbnail")

    assert service(moto, real).rerender(ID) is RerenderResult.CURRENT
    assert moto.images.get(ID) == record


def test_an_image_deleted_during_the_rerender_stays_deleted(moto: MotoBackend) -> None:
    seed_legacy(moto, jpeg())

    def delete_then_process(data: bytes, limits: Any) -> Any:
        moto.queries.begin_delete(ID, "alice", "2026-03-14T10:00:00.000Z")
        return real(data, limits)

    assert service(moto, delete_then_process).rerender(ID) is RerenderResult.DELETED

    record = moto.images.get(ID)
    assert record is None or (record.deleted_at is not None and record.rendition_version is None)
    assert moto.image_keys() == {LEGACY, LEGACY_THUMB}  # the new renditions were removed, the legacy kept


def test_a_corrupt_legacy_original_keeps_its_urls_and_gets_the_marker(moto: MotoBackend) -> None:
    before = seed_legacy(moto, b"\xff\xd8\xff\xe0 not really a jpeg")

    assert service(moto, real).rerender(ID) is RerenderResult.UNREADABLE

    record = moto.images.get(ID)
    assert record is not None
    assert record.status is ImageStatus.COMPLETED
    assert record.rerender_error == "corrupt_image" or record.rerender_error == "unsupported_format"
    assert (record.rendition_key, record.thumbnail_key) == (before.rendition_key, before.thumbnail_key)
    assert moto.image_keys() == {LEGACY, LEGACY_THUMB}
