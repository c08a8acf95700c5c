"""UploadService with in-memory fakes: creation, limits, idempotency, ownership."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest

from chalicelib.api.http import status_for
from chalicelib.errors import (
    Forbidden,
    IdempotencyKeyReused,
    NotFound,
    PayloadTooLarge,
    TransientFailure,
    UnsupportedMediaType,
)
from chalicelib.models.common import ImageStatus, format_time
from chalicelib.models.requests import CreateImageRequest
from chalicelib.repositories.images import TransactionConflict
from chalicelib.services.images import read_owned
from chalicelib.services.uploads import UploadService, UploadTicket
from tests.unit.fakes import Clock, FakeImageRepository, FakeObjectStore, Ids, unit_settings


def request(**overrides: Any) -> CreateImageRequest:
    body: dict[str, Any] = {"filename": "castle.jpg", "contentType": "image/jpeg", "size": 2_480_133}
    body.update(overrides)
    return CreateImageRequest.model_validate(body)


class World:
    def __init__(self, repo: FakeImageRepository | None = None, **settings: Any) -> None:
        self.repo = repo or FakeImageRepository()
        self.store = FakeObjectStore()
        self.clock = Clock()
        self.ids = Ids()
        self.settings = unit_settings(**settings)
        self.service = UploadService(self.repo, self.store, self.settings, clock=self.clock, new_id=self.ids)

    def images_of(self, user_id: str) -> list[str]:
        return [r.id for r in self.repo.records.values() if r.user_id == user_id]


@pytest.fixture
def world() -> World:
    return World()


def test_create_stores_a_pending_record_with_the_injected_id_and_clock(world: World) -> None:
    ticket = world.service.create("alice", request(title="Castle", tags=["castle", "moc"]), None)

    image_id = world.ids.issued[0]
    stored = world.repo.records[image_id]
    assert ticket.record == stored
    assert stored.status is ImageStatus.PENDING
    assert stored.user_id == "alice"
    assert stored.original_filename == "castle.jpg"
    assert stored.file_size == 2_480_133
    assert stored.title == "Castle"
    assert stored.tags == ["castle", "moc"]
    assert stored.created_at == stored.updated_at == format_time(world.clock.now)
    expected_expiry = format_time(world.clock.now + timedelta(seconds=world.settings.upload_url_ttl_seconds))
    assert stored.upload_expires_at == expected_expiry
    assert ticket.expires_at == expected_expiry
    assert ticket.replayed is False


def test_create_presigns_the_exact_upload_key_type_and_size(world: World) -> None:
    ticket = world.service.create("alice", request(size=1234, contentType="image/png"), None)

    assert len(world.store.presigned) == 1
    call = world.store.presigned[0]
    assert call.key == f"uploads/alice/{ticket.record.id}"
    assert call.content_type == "image/png"
    assert call.size == 1234
    assert call.expires_in == world.settings.upload_url_ttl_seconds
    assert ticket.form is not None
    assert ticket.form.fields["key"] == call.key


def test_content_type_is_matched_and_stored_in_lower_case(world: World) -> None:
    ticket = world.service.create("alice", request(contentType="Image/PNG"), None)

    assert ticket.record.content_type == "image/png"
    assert world.store.presigned[0].content_type == "image/png"


@pytest.mark.parametrize(
    "content_type", ["text/plain", "image/svg+xml", "application/octet-stream", "image/jpeg2", "", " ", "x" * 10_000]
)
def test_unsupported_content_type_is_refused_and_nothing_is_stored(world: World, content_type: str) -> None:
    with pytest.raises(UnsupportedMediaType) as refused:
        world.service.create("alice", request(contentType=content_type), None)

    assert len(refused.value.message) < 300  # a long value is not echoed whole
    assert world.repo.records == {}
    assert world.store.presigned == []


def test_size_above_the_limit_is_refused_as_payload_too_large() -> None:
    world = World(max_upload_bytes=1000)

    with pytest.raises(PayloadTooLarge):
        world.service.create("alice", request(size=1001), None)

    assert world.repo.records == {}


def test_size_exactly_at_the_limit_is_accepted() -> None:
    world = World(max_upload_bytes=1000)

    ticket = world.service.create("alice", request(size=1000), None)

    assert ticket.record.file_size == 1000


def test_same_idempotency_key_and_body_returns_the_same_image_with_a_fresh_form(world: World) -> None:
    first = world.service.create("alice", request(), "key-1")
    world.clock.advance(minutes=5)

    second = world.service.create("alice", request(), "key-1")

    assert second.replayed is True
    assert second.record.id == first.record.id
    assert world.images_of("alice") == [first.record.id]
    assert second.form is not None
    assert len(world.store.presigned) == 2
    later_expiry = format_time(world.clock.now + timedelta(seconds=world.settings.upload_url_ttl_seconds))
    assert second.expires_at == later_expiry
    assert world.repo.records[first.record.id].upload_expires_at == later_expiry


def test_same_idempotency_key_with_a_different_body_is_refused(world: World) -> None:
    world.service.create("alice", request(), "key-1")

    with pytest.raises(IdempotencyKeyReused):
        world.service.create("alice", request(title="something else"), "key-1")

    assert len(world.images_of("alice")) == 1


def test_a_request_that_only_differs_in_whitespace_is_a_replay(world: World) -> None:
    first = world.service.create("alice", request(title="Castle"), "key-1")

    second = world.service.create("alice", request(title="  Castle  "), "key-1")

    assert second.replayed is True
    assert second.record.id == first.record.id


def test_the_same_key_used_by_two_users_makes_two_images(world: World) -> None:
    alices = world.service.create("alice", request(), "shared-key")
    bobs = world.service.create("bob", request(), "shared-key")

    assert alices.record.id != bobs.record.id
    assert bobs.replayed is False
    assert world.images_of("alice") == [alices.record.id]
    assert world.images_of("bob") == [bobs.record.id]


def test_without_an_idempotency_key_every_request_makes_a_new_image(world: World) -> None:
    world.service.create("alice", request(), None)
    world.service.create("alice", request(), None)

    assert len(world.images_of("alice")) == 2


def test_the_key_is_remembered_for_at_least_24_hours(world: World) -> None:
    world.service.create("alice", request(), "key-1")

    remembered = world.repo.keys[("alice", "key-1")]
    assert remembered.expires_at_epoch >= int(world.clock.now.timestamp()) + 24 * 3600
    world.clock.advance(hours=24)
    assert world.service.create("alice", request(), "key-1").replayed is True


def test_a_key_past_its_expiry_makes_a_new_image(world: World) -> None:
    first = world.service.create("alice", request(), "key-1")
    world.clock.advance(seconds=world.settings.idempotency_ttl_seconds + 1)

    second = world.service.create("alice", request(), "key-1")

    assert second.replayed is False
    assert second.record.id != first.record.id


def test_replaying_a_key_whose_image_is_no_longer_pending_gives_no_upload_form(world: World) -> None:
    first = world.service.create("alice", request(), "key-1")
    world.repo.put(first.record.model_copy(update={"status": ImageStatus.COMPLETED, "version": 2}))

    again = world.service.create("alice", request(), "key-1")

    assert again.replayed is True
    assert again.record.status is ImageStatus.COMPLETED
    assert again.form is None
    assert again.expires_at is None
    assert len(world.store.presigned) == 1


def test_replaying_a_key_whose_image_was_deleted_is_not_found(world: World) -> None:
    first = world.service.create("alice", request(), "key-1")
    del world.repo.records[first.record.id]

    with pytest.raises(NotFound):
        world.service.create("alice", request(), "key-1")


def test_sixteen_concurrent_creates_with_one_key_make_exactly_one_image() -> None:
    parties = 16
    barrier = threading.Barrier(parties, timeout=10)
    world = World(repo=FakeImageRepository(before_create=barrier.wait))

    with ThreadPoolExecutor(max_workers=parties) as pool:
        tickets: list[UploadTicket] = list(
            pool.map(lambda _: world.service.create("alice", request(), "burst"), range(parties))
        )

    assert world.repo.create_calls == parties  # every thread really raced for the key
    assert len(world.images_of("alice")) == 1
    assert {t.record.id for t in tickets} == set(world.images_of("alice"))
    assert sum(not t.replayed for t in tickets) == 1
    assert all(t.form is not None for t in tickets)


class ConflictOnceRepository(FakeImageRepository):
    """The first create loses to a concurrent transaction on the same items."""

    def create(self, record: Any, idempotency: Any, now_epoch: int) -> None:
        if self.create_calls == 0:
            self.create_calls += 1
            raise TransactionConflict()
        super().create(record, idempotency, now_epoch)


def test_a_transaction_conflict_is_retried_and_makes_one_image() -> None:
    world = World(repo=ConflictOnceRepository())

    ticket = world.service.create("alice", request(), "key-1")

    assert ticket.replayed is False
    assert world.images_of("alice") == [ticket.record.id]
    assert world.repo.create_calls == 2


class AlwaysConflictingRepository(FakeImageRepository):
    """Every create loses to a concurrent transaction."""

    def create(self, record: Any, idempotency: Any, now_epoch: int) -> None:
        self.create_calls += 1
        raise TransactionConflict()


def test_a_conflict_that_outlasts_the_retries_is_a_503_to_retry_not_a_crash() -> None:
    world = World(repo=AlwaysConflictingRepository())

    with pytest.raises(TransientFailure) as raised:
        world.service.create("alice", request(), "key-1")

    assert status_for(raised.value) == 503
    assert world.repo.create_calls == 5
    assert world.images_of("alice") == []


def test_read_owned_returns_the_callers_own_image(world: World) -> None:
    created = world.service.create("alice", request(), None)

    assert read_owned(world.repo, "alice", created.record.id) == created.record


def test_read_owned_refuses_another_users_image(world: World) -> None:
    created = world.service.create("alice", request(), None)

    with pytest.raises(Forbidden):
        read_owned(world.repo, "mallory", created.record.id)


@pytest.mark.parametrize(
    "image_id",
    ["01J00000000000000000000099", "123e4567-e89b-12d3-a456-426614174000"],
)
def test_read_owned_of_an_unknown_id_is_not_found(world: World, image_id: str) -> None:
    with pytest.raises(NotFound):
        read_owned(world.repo, "alice", image_id)


@pytest.mark.parametrize("image_id", ["", "x", "01j00000000000000000000001", "../etc/passwd", "01J" + "0" * 24])
def test_read_owned_of_a_malformed_id_is_not_found(world: World, image_id: str) -> None:
    with pytest.raises(NotFound):
        read_owned(world.repo, "alice", image_id)
