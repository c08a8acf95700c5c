"""duplicateOf on the fakes: which image a completed upload names, with how many reads, and
how a delete re-points the images that named the deleted one."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.models.common import ImageStatus, format_time
from chalicelib.models.domain import ImageRecord, upload_key
from chalicelib.services.duplicates import DuplicateFinder
from chalicelib.services.images import ImageService
from chalicelib.services.presenter import Presenter
from chalicelib.services.processing import Outcome, ProcessingService
from processors.phash import BUCKET_COUNT, DUPLICATE_MAX_DISTANCE
from tests.unit.fakes import (
    CDN,
    Clock,
    FakeDuplicateIndex,
    FakeImageQueries,
    FakeImageRepository,
    FakeObjectStore,
    FakeProcessor,
    FakePublisher,
    unit_settings,
)
from tests.unit.test_processing_service import s3_message

PHOTO = "f0f0f0f0f0f0f0f0"
# The same photo re-encoded: a few bits off, within the duplicate distance.
RECOMPRESSED = f"{int(PHOTO, 16) ^ 0b1000_0000_0100:016x}"
OTHER_PHOTO = "0f0f0f0f0f0f0f0f"


def image_id(n: int) -> str:
    return f"01J{n:023d}"


class World:
    def __init__(self) -> None:
        self.repo = FakeImageRepository()
        self.queries = FakeImageQueries(self.repo)
        self.store = FakeObjectStore()
        self.index = FakeDuplicateIndex(self.repo)
        self.finder = DuplicateFinder(self.repo, self.index)
        self.processor = FakeProcessor()
        self.clock = Clock()
        settings = unit_settings()
        presenter = Presenter(CDN)
        self.service = ProcessingService(
            self.repo,
            self.store,
            FakePublisher(),
            presenter,
            settings,
            processor=self.processor,
            clock=self.clock,
            duplicates=self.finder,
        )
        self.images = ImageService(self.repo, self.queries, self.store, _no_cursors, None, self.clock, self.finder)
        self.presenter = presenter
        self.count = 0

    def complete(self, phash: str, user_id: str = "alice") -> str:
        """Create, upload and process one image whose perceptual hash is ``phash``."""
        self.count += 1
        new_id = image_id(self.count)
        now = format_time(self.clock.advance(seconds=1))
        data = b"\xff\xd8" + bytes([self.count % 256]) * 8
        values: dict[str, Any] = {
            "id": new_id,
            "user_id": user_id,
            "status": ImageStatus.PENDING,
            "original_filename": "p.jpg",
            "content_type": "image/jpeg",
            "file_size": len(data),
            "created_at": now,
            "updated_at": now,
        }
        self.repo.put(ImageRecord(**values))
        key = upload_key(user_id, new_id)
        self.store.uploads[key] = data
        self.processor.perceptual_hash = phash
        assert self.service.handle_message(s3_message(key)) == [Outcome.COMPLETED]
        return new_id

    def duplicate_of(self, image: str) -> str | None:
        return self.repo.records[image].duplicate_of


def _no_cursors() -> Any:
    raise AssertionError("no listing here")


@pytest.fixture
def world() -> World:
    return World()


def test_the_first_copy_of_a_photo_names_none_and_later_copies_name_the_first(world: World) -> None:
    original = world.complete(PHOTO)
    copy = world.complete(RECOMPRESSED)
    third = world.complete(PHOTO)

    assert world.duplicate_of(original) is None
    assert world.duplicate_of(copy) == original
    assert world.duplicate_of(third) == original  # the earliest, not the latest
    out = world.presenter.image(world.repo.records[copy]).model_dump(mode="json", by_alias=True)
    assert out["duplicateOf"] == original
    first = world.presenter.image(world.repo.records[original]).model_dump(mode="json", by_alias=True)
    assert first["duplicateOf"] is None  # known: no earlier copy


def test_a_different_photo_and_another_users_copy_are_not_duplicates(world: World) -> None:
    world.complete(PHOTO)
    beyond = f"{int(PHOTO, 16) ^ ((1 << (DUPLICATE_MAX_DISTANCE + 1)) - 1):016x}"  # 7 bits off

    assert world.duplicate_of(world.complete(OTHER_PHOTO)) is None
    assert world.duplicate_of(world.complete(beyond)) is None
    assert world.duplicate_of(world.complete(PHOTO, user_id="bob")) is None


def test_a_lookup_reads_one_query_per_band_whatever_the_number_of_images(world: World) -> None:
    for n in range(60):  # unrelated photos sharing no band value with PHOTO's
        world.complete(f"{n:016x}")
    before = world.index.queries

    world.complete(PHOTO)

    assert world.index.queries - before == BUCKET_COUNT


def test_deleting_the_original_repoints_its_copies_to_the_next_earliest_or_none(world: World) -> None:
    original = world.complete(PHOTO)
    second = world.complete(RECOMPRESSED)
    third = world.complete(PHOTO)

    world.images.delete("alice", original)

    assert world.duplicate_of(second) is None  # now the earliest copy
    assert world.duplicate_of(third) == second
    assert world.index.back_references(original) == []
    assert world.index.back_references(second) == [third]

    world.images.delete("alice", second)
    assert world.duplicate_of(third) is None
    world.images.delete("alice", third)
    assert world.index.item_count() == 0  # every bucket item and back-reference went


def test_a_copy_completing_while_its_original_is_deleted_does_not_name_it(world: World) -> None:
    original = world.complete(PHOTO)
    # The delete tombstoned the original after the copy's lookup found it, and read the
    # back-references before the copy wrote its own.
    real_find = world.finder.find

    def find_then_delete(*args: Any) -> str | None:
        found = real_find(*args)
        world.queries.begin_delete(original, "alice", format_time(world.clock.now))
        return found

    world.finder.find = find_then_delete  # type: ignore[method-assign,assignment]
    copy = world.complete(RECOMPRESSED)

    assert world.duplicate_of(copy) is None
