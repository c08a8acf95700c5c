"""RerenderService with in-memory fakes: one image brought to the current rendition spec."""

from __future__ import annotations

from typing import Any

from chalicelib.models.common import ImageStatus, format_time
from chalicelib.models.domain import ImageRecord, ladder_key, upload_key, versioned_thumbnail_key
from chalicelib.services.rerender import ORIGINAL_MISSING, RerenderResult, RerenderService
from processors import ImageRejected
from tests.unit.fakes import Clock, FakeImageRepository, FakeObjectStore, FakeProcessor, unit_settings

USER = "alice"
ID = "01J00000000000000000000001"
T0 = "2026-03-14T09:00:00.000Z"
ORIGINAL = b"\xff\xd8\xff\xe0 pretend-jpeg \xff\xd9"
LEGACY = "images/legacy/castle.jpg"
LEGACY_THUMB = "images/legacy/castle_t.jpg"
TARGET = 3


class World:
    def __init__(self, processor: FakeProcessor | None = None) -> None:
        self.repo = FakeImageRepository()
        self.store = FakeObjectStore()
        self.processor = processor or FakeProcessor()
        self.clock = Clock()
        self.service = RerenderService(
            self.repo, self.store, unit_settings(), processor=self.processor, clock=self.clock, version=TARGET
        )

    def completed(self, **fields: Any) -> ImageRecord:
        values: dict[str, Any] = {
            "id": ID,
            "user_id": USER,
            "status": ImageStatus.COMPLETED,
            "original_filename": "castle.jpg",
            "content_type": "image/jpeg",
            "file_size": len(ORIGINAL),
            "title": "Castle",
            "created_at": T0,
            "updated_at": T0,
            "width": 800,
            "height": 600,
        }
        record = ImageRecord(**(values | fields))
        self.repo.put(record)
        return record

    def legacy(self, **fields: Any) -> ImageRecord:
        self.store.images[LEGACY] = ORIGINAL
        self.store.images[LEGACY_THUMB] = b"legacy thumbnail"
        return self.completed(legacy_image_key=LEGACY, legacy_thumbnail_key=LEGACY_THUMB, **fields)


def current(world: World) -> ImageRecord:
    record = world.repo.get(ID)
    assert record is not None
    return record


def test_a_native_image_is_rendered_from_its_kept_upload_under_the_new_spec() -> None:
    world = World()
    world.completed(rendition_version=2, version=5)
    world.store.uploads[upload_key(USER, ID)] = ORIGINAL

    assert world.service.rerender(ID) is RerenderResult.RENDERED

    record = current(world)
    assert record.rendition_version == TARGET
    assert record.version == 5 and record.updated_at == T0 and record.title == "Castle"
    assert (record.width, record.height) == (1600, 900)
    keys = [r.key for r in record.renditions or ()]
    assert keys[-1] == ladder_key(USER, ID, TARGET, 1600, "webp")
    assert all(key in world.store.images for key in keys)
    assert versioned_thumbnail_key(USER, ID, TARGET) in world.store.images
    assert world.processor.calls[0][0] == ORIGINAL


def test_a_legacy_image_is_read_from_its_legacy_object_which_stays_untouched() -> None:
    world = World()
    world.legacy()

    assert world.service.rerender(ID) is RerenderResult.RENDERED

    assert world.processor.calls[0][0] == ORIGINAL
    assert world.store.images[LEGACY] == ORIGINAL
    assert world.store.images[LEGACY_THUMB] == b"legacy thumbnail"
    assert current(world).rendition_version == TARGET


def test_running_twice_renders_once() -> None:
    world = World()
    world.legacy()
    world.service.rerender(ID)
    after_first = current(world)

    assert world.service.rerender(ID) is RerenderResult.CURRENT

    assert current(world) == after_first
    assert len(world.processor.calls) == 1


def test_a_patch_between_the_read_and_the_switch_survives() -> None:
    world = World()
    world.legacy()
    processor = world.processor

    def patch_then_process(data: bytes, limits: Any) -> Any:
        world.repo.put(current(world).model_copy(update={"title": "Renamed", "version": 2, "updated_at": "T9"}))
        return processor(data, limits)

    world.service = RerenderService(
        world.repo, world.store, unit_settings(), processor=patch_then_process, version=TARGET
    )

    assert world.service.rerender(ID) is RerenderResult.RENDERED

    record = current(world)
    assert (record.title, record.version, record.updated_at) == ("Renamed", 2, "T9")
    assert record.rendition_version == TARGET


def test_an_image_deleted_during_the_rerender_stays_deleted_and_its_new_objects_go() -> None:
    world = World()
    world.legacy()
    processor = world.processor

    def delete_then_process(data: bytes, limits: Any) -> Any:
        world.repo.put(current(world).model_copy(update={"deleted_at": "T9"}))
        return processor(data, limits)

    world.service = RerenderService(
        world.repo, world.store, unit_settings(), processor=delete_then_process, version=TARGET
    )

    assert world.service.rerender(ID) is RerenderResult.DELETED

    assert current(world).deleted_at == "T9"
    assert current(world).rendition_version is None
    assert sorted(world.store.images) == sorted([LEGACY, LEGACY_THUMB])  # only the legacy objects remain


def test_a_deleted_or_unknown_image_is_skipped_without_reading() -> None:
    world = World()
    assert world.service.rerender(ID) is RerenderResult.DELETED
    world.legacy(deleted_at=T0)
    assert world.service.rerender(ID) is RerenderResult.DELETED
    assert world.processor.calls == []


def test_a_corrupt_legacy_original_keeps_its_urls_and_gets_the_marker() -> None:
    world = World(FakeProcessor(reject=ImageRejected("corrupt_image", "The file is damaged.")))
    before = world.legacy()

    assert world.service.rerender(ID) is RerenderResult.UNREADABLE

    record = current(world)
    assert record.status is ImageStatus.COMPLETED
    assert (record.rerender_error, record.rerender_error_at) == ("corrupt_image", format_time(world.clock.now))
    assert record.model_copy(update={"rerender_error": None, "rerender_error_at": None}) == before
    assert (record.rendition_key, record.thumbnail_key) == (LEGACY, LEGACY_THUMB)
    assert sorted(world.store.images) == sorted([LEGACY, LEGACY_THUMB])


def test_a_missing_legacy_original_gets_the_marker_and_a_later_success_clears_it() -> None:
    world = World()
    world.completed(legacy_image_key=LEGACY)

    assert world.service.rerender(ID) is RerenderResult.UNREADABLE
    assert current(world).rerender_error == ORIGINAL_MISSING
    assert current(world).status is ImageStatus.COMPLETED

    world.store.images[LEGACY] = ORIGINAL  # restored
    assert world.service.rerender(ID) is RerenderResult.RENDERED
    assert current(world).rerender_error is None


def test_an_image_not_completed_is_skipped() -> None:
    world = World()
    world.completed(status=ImageStatus.FAILED)
    assert world.service.rerender(ID) is RerenderResult.NOT_COMPLETED
    assert world.processor.calls == []


def test_a_rerendered_legacy_image_serves_its_own_thumbnail_and_a_delete_still_names_the_legacy_objects() -> None:
    world = World()
    world.legacy()
    world.service.rerender(ID)

    record = current(world)
    assert record.rendition_key == ladder_key(USER, ID, TARGET, 1600, "webp")
    assert record.thumbnail_key == versioned_thumbnail_key(USER, ID, TARGET)
    assert {LEGACY, LEGACY_THUMB, *(r.key for r in record.renditions or ())} <= set(record.derived_keys)
