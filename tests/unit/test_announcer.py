"""The announcer against a DELETE that begins between its read and its mark."""

from __future__ import annotations

from chalicelib.repositories.keys import sweep_partition
from chalicelib.services.announcer import EventAnnouncer
from chalicelib.services.presenter import Presenter
from tests.contract.test_image_repository import COMPLETED, EPOCH, ID, T1, T2, pending
from tests.unit.fakes import FakeImageQueries, FakeImageRepository, FakePublisher


def test_an_event_announced_while_its_image_is_deleted_leaves_the_delete_to_the_sweep() -> None:
    images = FakeImageRepository()
    queries = FakeImageQueries(images)
    publisher = FakePublisher()
    images.create(pending(), None, EPOCH)
    images.start_processing(ID, T1, "2026-03-14T12:00:00.000Z")
    record = images.finish_processing(ID, COMPLETED, "event-1", T1)
    queries.begin_delete(ID, "alice", T2)  # after the announcer read the record

    announced = EventAnnouncer(images, publisher, Presenter("https://cdn.example.com")).announce(record)

    assert announced
    assert [e.event_id for e in publisher.published] == ["event-1"]
    # The tombstone is still due for the sweep, which finishes the delete if it stopped half-way.
    assert ID in [r.id for r in images.due_for_sweep(sweep_partition(ID), "9999", 10)]
