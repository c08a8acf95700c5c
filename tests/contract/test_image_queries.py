"""``ImageQueries``: listing order and pages, the per-owner album index, the optimistic
PATCH, the delete's tombstone and purge, the same cases on the fake and on DynamoDB (moto)."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.errors import ConditionFailed
from chalicelib.models.common import ImageStatus
from chalicelib.models.domain import ImageRecord
from chalicelib.repositories.images import WriteRejected, record_to_item
from chalicelib.repositories.keys import sweep_partition
from tests.contract.backends import Backend
from tests.contract.test_image_repository import COMPLETED, EPOCH, ID, OTHER, T0, T1, T2, pending


def created_at(n: int) -> str:
    return f"2026-03-14T09:{n // 60:02d}:{n % 60:02d}.000Z"


def seed_many(backend: Backend, user_id: str, count: int, start: int = 1, **fields: Any) -> list[ImageRecord]:
    """``count`` images of ``user_id``, one second apart, oldest first."""
    records = []
    for n in range(start, start + count):
        record = pending(f"01J{n:023d}", user_id, created_at=created_at(n), updated_at=created_at(n), **fields)
        backend.images.create(record, None, EPOCH)
        records.append(record)
    return records


def every_page(backend: Backend, user_id: str, limit: int, album_id: str | None = None) -> list[list[str]]:
    pages: list[list[str]] = []
    start = None
    while True:
        page = backend.queries.list_for_user(user_id, limit, start, album_id)
        pages.append([r.id for r in page.records])
        if page.last_key is None:
            return pages
        start = page.last_key


def position(record: ImageRecord, index: str) -> dict[str, Any]:
    """DynamoDB's LastEvaluatedKey after ``record`` on ``index`` (what a cursor signs)."""
    item = record_to_item(record)
    return {name: item[name] for name in ("PK", "SK", f"{index}PK", f"{index}SK")}


# -- listing -----------------------------------------------------------------------------


def test_a_listing_is_newest_first_in_pages_that_chain_through_every_image_once(backend: Backend) -> None:
    alices = seed_many(backend, "alice", 7)
    seed_many(backend, "bob", 3, start=20)
    newest_first = [r.id for r in reversed(alices)]

    pages = every_page(backend, "alice", 3)

    assert pages == [newest_first[0:3], newest_first[3:6], newest_first[6:7]]


def test_a_page_ends_with_the_index_position_of_its_last_record(backend: Backend) -> None:
    alices = seed_many(backend, "alice", 3)

    first = backend.queries.list_for_user("alice", 2, None, None)

    assert first.records == [alices[2], alices[1]]
    assert first.last_key == position(alices[1], "GSI1")
    rest = backend.queries.list_for_user("alice", 2, first.last_key, None)
    assert (rest.records, rest.last_key) == ([alices[0]], None)


def test_a_listing_has_the_whole_records(backend: Backend) -> None:
    record = pending(description="d", album_id="trip", tags=[], title=None)
    backend.images.create(record, None, EPOCH)

    assert backend.queries.list_for_user("alice", 10, None, None).records == [record]
    assert backend.queries.list_for_user("alice", 10, None, "trip").records == [record]


def test_a_page_that_ends_at_the_last_image_may_point_only_at_an_empty_page(backend: Backend) -> None:
    seed_many(backend, "alice", 4)

    pages = every_page(backend, "alice", 2)

    # DynamoDB may hand out a key for an exactly full last page; moto and the fake do not.
    assert pages[:2] == [[f"01J{4:023d}", f"01J{3:023d}"], [f"01J{2:023d}", f"01J{1:023d}"]]
    assert pages[2:] in ([], [[]])


def test_an_unknown_user_lists_nothing(backend: Backend) -> None:
    seed_many(backend, "alice", 2)

    assert every_page(backend, "alic", 10) == [[]]
    assert every_page(backend, "alice#", 10) == [[]]


def test_an_album_lists_only_its_owners_images_in_it(backend: Backend) -> None:
    in_trip = seed_many(backend, "alice", 3, album_id="trip")
    seed_many(backend, "alice", 2, start=10)  # no album
    seed_many(backend, "alice", 2, start=20, album_id="home")
    seed_many(backend, "bob", 2, start=30, album_id="trip")  # another user's album of the same name

    assert every_page(backend, "alice", 2, "trip") == [[in_trip[2].id, in_trip[1].id], [in_trip[0].id]]
    assert every_page(backend, "alice", 10, "nowhere") == [[]]
    assert len(every_page(backend, "alice", 100)[0]) == 7


@pytest.mark.parametrize(("first", "second"), [(("a#b", "c"), ("a", "b#c")), (("a", "b#c"), ("a#b", "c"))])
def test_owner_and_album_ids_with_hashes_never_share_an_album(
    backend: Backend, first: tuple[str, str], second: tuple[str, str]
) -> None:
    backend.images.create(pending(ID, first[0], album_id=first[1]), None, EPOCH)
    backend.images.create(pending(OTHER, second[0], album_id=second[1]), None, EPOCH)

    assert [r.id for r in backend.queries.list_for_user(first[0], 10, None, first[1]).records] == [ID]
    assert [r.id for r in backend.queries.list_for_user(second[0], 10, None, second[1]).records] == [OTHER]


# -- PATCH -------------------------------------------------------------------------------


def test_a_patch_at_the_current_version_applies_and_moves_the_version_by_one(backend: Backend) -> None:
    backend.images.create(pending(), None, EPOCH)

    record = backend.queries.update_metadata(ID, "alice", {"title": "New", "tags": ["a"]}, 1, T1)

    assert record == pending(title="New", tags=["a"], version=2, updated_at=T1)
    assert backend.images.get(ID) == record
    again = backend.queries.update_metadata(ID, "alice", {"description": "d"}, 2, T2)
    assert again == pending(title="New", tags=["a"], description="d", version=3, updated_at=T2)


def test_a_patch_with_null_clears_the_field(backend: Backend) -> None:
    backend.images.create(pending(description="d", album_id="trip"), None, EPOCH)

    record = backend.queries.update_metadata(ID, "alice", {"title": None, "description": None}, 1, T1)

    assert record == pending(title=None, description=None, album_id="trip", version=2, updated_at=T1)
    assert backend.images.get(ID) == record


def test_a_stale_version_is_rejected_with_the_current_record(backend: Backend) -> None:
    backend.images.create(pending(), None, EPOCH)
    current = backend.queries.update_metadata(ID, "alice", {"title": "v2"}, 1, T1)

    with pytest.raises(WriteRejected) as rejected:
        backend.queries.update_metadata(ID, "alice", {"title": "stale"}, 1, T2)

    assert rejected.value.current == current
    assert backend.images.get(ID) == current


def test_another_users_patch_is_rejected_with_the_record_and_changes_nothing(backend: Backend) -> None:
    backend.images.create(pending(), None, EPOCH)

    with pytest.raises(WriteRejected) as rejected:
        backend.queries.update_metadata(ID, "mallory", {"title": "mine"}, 1, T1)

    assert rejected.value.current == pending()
    assert backend.images.get(ID) == pending()


def test_a_patch_of_an_unknown_image_is_rejected_with_nothing(backend: Backend) -> None:
    with pytest.raises(WriteRejected) as rejected:
        backend.queries.update_metadata(ID, "alice", {"title": "x"}, 1, T1)

    assert rejected.value.current is None
    assert backend.image_records() == {}


def test_a_patch_of_an_image_being_deleted_is_rejected(backend: Backend) -> None:
    backend.images.create(pending(), None, EPOCH)
    tombstone = backend.queries.begin_delete(ID, "alice", T1)

    with pytest.raises(WriteRejected) as rejected:
        backend.queries.update_metadata(ID, "alice", {"title": "x"}, 1, T2)

    assert rejected.value.current == tombstone


def test_moving_an_image_between_albums_moves_it_in_the_album_index(backend: Backend) -> None:
    older, newer = seed_many(backend, "alice", 2, album_id="trip")

    backend.queries.update_metadata(older.id, "alice", {"album_id": "home"}, 1, T2)
    backend.queries.update_metadata(newer.id, "alice", {"title": "only the title"}, 1, T2)

    assert [r.id for r in backend.queries.list_for_user("alice", 10, None, "trip").records] == [newer.id]
    home = backend.queries.list_for_user("alice", 10, None, "home")
    assert [r.id for r in home.records] == [older.id]
    # The album index sorts like the user index (by the upload time, not the edit time).
    seed_many(backend, "alice", 1, start=5, album_id="home")
    assert [r.id for r in backend.queries.list_for_user("alice", 1, None, "home").records] == [f"01J{5:023d}"]
    last = backend.queries.list_for_user("alice", 1, None, "home").last_key
    assert last is not None
    assert [r.id for r in backend.queries.list_for_user("alice", 1, last, "home").records] == [older.id]

    backend.queries.update_metadata(older.id, "alice", {"album_id": None}, 2, T2)
    assert [r.id for r in backend.queries.list_for_user("alice", 10, None, "home").records] == [f"01J{5:023d}"]
    assert len(backend.queries.list_for_user("alice", 10, None, None).records) == 3


# -- DELETE ------------------------------------------------------------------------------


def test_a_delete_begins_with_a_tombstone_that_no_listing_shows(backend: Backend) -> None:
    kept, gone = seed_many(backend, "alice", 2, album_id="trip")

    tombstone = backend.queries.begin_delete(gone.id, "alice", T1)

    assert tombstone == gone.model_copy(update={"deleted_at": T1})
    assert backend.images.get(gone.id) == tombstone  # it reads as gone, but it is there
    assert backend.queries.list_for_user("alice", 10, None, None).records == [kept]
    assert backend.queries.list_for_user("alice", 10, None, "trip").records == [kept]
    # The sweep finishes it ten minutes on if the DELETE stops half-way.
    partition = sweep_partition(gone.id)
    assert gone.id not in [r.id for r in backend.images.due_for_sweep(partition, "2026-03-14T09:14:59.999Z", 100)]
    assert gone.id in [r.id for r in backend.images.due_for_sweep(partition, "2026-03-14T09:15:00.000Z", 100)]


def test_a_retried_delete_keeps_the_first_deletion_time(backend: Backend) -> None:
    backend.images.create(pending(), None, EPOCH)
    backend.queries.begin_delete(ID, "alice", T1)

    again = backend.queries.begin_delete(ID, "alice", T2)

    assert again.deleted_at == T1


def test_only_the_owner_begins_a_delete(backend: Backend) -> None:
    backend.images.create(pending(), None, EPOCH)

    with pytest.raises(WriteRejected) as rejected:
        backend.queries.begin_delete(ID, "mallory", T1)
    assert rejected.value.current == pending()
    with pytest.raises(WriteRejected) as unknown:
        backend.queries.begin_delete(OTHER, "alice", T1)
    assert unknown.value.current is None
    assert backend.images.get(ID) == pending()


def test_finishing_a_delete_removes_the_record_and_never_a_live_one(backend: Backend) -> None:
    backend.images.create(pending(), None, EPOCH)
    backend.images.create(pending(OTHER), None, EPOCH)
    backend.queries.begin_delete(ID, "alice", T1)

    backend.queries.finish_delete(ID)
    backend.queries.finish_delete(OTHER)  # not being deleted: untouched
    backend.queries.finish_delete(ID)  # again: nothing left to do

    assert backend.images.get(ID) is None
    assert backend.images.get(OTHER) == pending(OTHER)
    assert list(backend.image_records()) == [OTHER]


def test_a_finished_delete_of_an_imported_image_leaves_a_purged_tombstone(backend: Backend) -> None:
    imported = pending(
        status=ImageStatus.COMPLETED,
        description="d",
        album_id="trip",
        width=10,
        height=20,
        legacy_image_key="legacy/a.jpg",
        legacy_thumbnail_key="legacy/a_t.jpg",
        event_id="e",
        event_occurred_at=T0,
        event_published=True,
        uploaded_at=T0,
        version=3,
    )
    backend.seed(imported)
    backend.queries.begin_delete(ID, "alice", T1)

    backend.queries.finish_delete(ID)

    purged = backend.images.get(ID)
    assert purged == ImageRecord(
        id=ID,
        user_id="alice",
        status=ImageStatus.COMPLETED,
        original_filename="",
        content_type="image/jpeg",
        file_size=1234,
        created_at=T0,
        updated_at=T0,
        version=3,
        event_published=True,
        deleted_at=T1,
        legacy_image_key="legacy/a.jpg",
    )
    assert backend.queries.list_for_user("alice", 10, None, None).records == []
    assert all(backend.images.due_for_sweep(f"SWEEP#{n}", "9999", 100) == [] for n in range(4))
    with pytest.raises(WriteRejected) as again:  # gone for good, whoever asks
        backend.queries.begin_delete(ID, "alice", T2)
    assert again.value.current is None
    with pytest.raises(WriteRejected) as patch:
        backend.queries.update_metadata(ID, "alice", {"title": "x"}, 3, T2)
    assert patch.value.current == purged
    backend.queries.finish_delete(ID)
    assert backend.images.get(ID) == purged


def test_a_late_event_mark_leaves_a_tombstone_in_the_sweep_index(backend: Backend) -> None:
    backend.images.create(pending(), None, EPOCH)
    backend.images.start_processing(ID, T1, "2026-03-14T12:00:00.000Z")
    backend.images.finish_processing(ID, COMPLETED, "event-1", T1)
    backend.queries.begin_delete(ID, "alice", T2)  # the owner deletes while the event is announced

    # the announcer read the record before the delete: its mark is refused, the delete keeps its entry
    with pytest.raises(ConditionFailed):
        backend.images.mark_event_published(ID, "event-1")

    assert ID in [r.id for r in backend.images.due_for_sweep(sweep_partition(ID), "9999", 10)]
