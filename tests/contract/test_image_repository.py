"""``ImageRepository``: the conditional transitions, Idempotency-Keys and the sweep index,
the same cases on the fake and on DynamoDB (moto)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from chalicelib.errors import ConditionFailed
from chalicelib.models.common import ImageStatus
from chalicelib.models.domain import IdempotencyRecord, ImageRecord, ProcessingOutcome, event_id_for
from chalicelib.repositories.images import STALLED_CODE, IdempotencyKeyTaken, TransactionConflict
from chalicelib.repositories.keys import sweep_partition
from tests.contract.backends import Backend

T0 = "2026-03-14T09:00:00.000Z"
T1 = "2026-03-14T09:05:00.000Z"
T2 = "2026-03-14T09:10:00.000Z"
T3 = "2026-03-14T09:20:00.000Z"
LATER = "2026-03-14T12:00:00.000Z"
EPOCH = 1_773_478_800  # T0
ID = "01J00000000000000000000001"
OTHER = "01J00000000000000000000002"

COMPLETED = ProcessingOutcome(status=ImageStatus.COMPLETED, width=1600, height=900, placeholder="data:x")
FAILED = ProcessingOutcome(status=ImageStatus.FAILED, error_code="unsupported_format", error_message="Not an image.")


def pending(image_id: str = ID, user_id: str = "alice", **fields: Any) -> ImageRecord:
    values: dict[str, Any] = {
        "id": image_id,
        "user_id": user_id,
        "status": ImageStatus.PENDING,
        "original_filename": "castle.jpg",
        "content_type": "image/jpeg",
        "file_size": 1234,
        "title": "Castle",
        "tags": ["castle", "moc"],
        "created_at": T0,
        "updated_at": T0,
        "upload_expires_at": T1,
    }
    values.update(fields)
    return ImageRecord(**values)


def key_of(user_id: str, key: str, image_id: str = ID, expires: int = EPOCH + 86_400) -> IdempotencyRecord:
    return IdempotencyRecord(
        user_id=user_id, key=key, image_id=image_id, fingerprint="f" * 64, expires_at_epoch=expires
    )


def due(backend: Backend, image_id: str, now: str = "9999") -> list[str]:
    """The ids the sweep would read from ``image_id``'s partition at ``now``."""
    return [r.id for r in backend.images.due_for_sweep(sweep_partition(image_id), now, 100)]


# -- create and Idempotency-Keys ---------------------------------------------------------


def test_a_created_record_reads_back_exactly_and_an_unknown_id_is_none(backend: Backend) -> None:
    record = pending(description="a long description", album_id="trip")
    backend.images.create(record, None, EPOCH)

    assert backend.images.get(ID) == record
    assert backend.images.get(OTHER) is None


def test_a_record_with_no_optional_fields_reads_back_exactly(backend: Backend) -> None:
    record = pending(title=None, tags=[], upload_expires_at=None)
    backend.images.create(record, None, EPOCH)

    assert backend.images.get(ID) == record


def test_creating_an_existing_id_is_refused(backend: Backend) -> None:
    backend.images.create(pending(), None, EPOCH)

    with pytest.raises(ConditionFailed):
        backend.images.create(pending(title="again"), None, EPOCH)
    # With a free Idempotency-Key the transaction is cancelled: a conflict the caller retries.
    with pytest.raises(TransactionConflict):
        backend.images.create(pending(title="again"), key_of("alice", "k"), EPOCH)

    assert backend.images.get(ID) == pending()
    assert backend.images.get_idempotency("alice", "k") is None


def test_a_record_and_its_key_are_stored_together(backend: Backend) -> None:
    key = key_of("alice", "key-1")
    backend.images.create(pending(), key, EPOCH)

    assert backend.images.get_idempotency("alice", "key-1") == key
    assert backend.images.get_idempotency("alice", "key-2") is None
    assert backend.images.get_idempotency("bob", "key-1") is None


def test_a_live_key_is_taken_and_nothing_of_the_second_create_is_stored(backend: Backend) -> None:
    first = key_of("alice", "key-1")
    backend.images.create(pending(), first, EPOCH)

    with pytest.raises(IdempotencyKeyTaken) as taken:
        # The key expires at EPOCH + 1 day: at that very second it is still live.
        backend.images.create(pending(OTHER), key_of("alice", "key-1", OTHER), first.expires_at_epoch)

    assert taken.value.existing == first
    assert backend.images.get(OTHER) is None
    assert backend.images.get_idempotency("alice", "key-1") == first


def test_a_key_past_its_expiry_counts_as_free_and_points_at_the_new_image(backend: Backend) -> None:
    first = key_of("alice", "key-1")
    backend.images.create(pending(), first, EPOCH)
    second = key_of("alice", "key-1", OTHER, expires=first.expires_at_epoch + 86_400)

    backend.images.create(pending(OTHER), second, first.expires_at_epoch + 1)

    assert backend.images.get_idempotency("alice", "key-1") == second
    assert backend.images.get(OTHER) is not None


def test_a_taken_key_wins_over_a_taken_id(backend: Backend) -> None:
    backend.images.create(pending(), key_of("alice", "key-1"), EPOCH)

    with pytest.raises(IdempotencyKeyTaken):
        backend.images.create(pending(), key_of("alice", "key-1"), EPOCH)


@pytest.mark.parametrize(("first", "second"), [(("a#b", "c"), ("a", "b#c")), (("alice", "k"), ("bob", "k"))])
def test_keys_of_different_users_never_share_an_item(
    backend: Backend, first: tuple[str, str], second: tuple[str, str]
) -> None:
    backend.images.create(pending(user_id=first[0]), key_of(*first), EPOCH)
    backend.images.create(pending(OTHER, user_id=second[0]), key_of(*second, image_id=OTHER), EPOCH)

    assert backend.images.get_idempotency(*first) == key_of(*first)
    assert backend.images.get_idempotency(*second) == key_of(*second, image_id=OTHER)


# -- the processing transitions ----------------------------------------------------------


def test_refreshing_the_upload_window_of_a_pending_image(backend: Backend) -> None:
    backend.images.create(pending(), None, EPOCH)

    record = backend.images.refresh_upload_window(ID, T2, T1)

    assert record == pending(upload_expires_at=T2, updated_at=T1)
    assert backend.images.get(ID) == record
    assert due(backend, ID, T1) == [] and due(backend, ID, T2) == [ID]  # the sweep waits for the new window


@pytest.mark.parametrize("status", [ImageStatus.PROCESSING, ImageStatus.COMPLETED, ImageStatus.EXPIRED])
def test_only_a_pending_upload_window_is_refreshed(backend: Backend, status: ImageStatus) -> None:
    backend.seed(pending(status=status))

    with pytest.raises(ConditionFailed):
        backend.images.refresh_upload_window(ID, T2, T1)
    with pytest.raises(ConditionFailed):
        backend.images.refresh_upload_window(OTHER, T2, T1)

    assert backend.images.get(ID) == pending(status=status)


def test_start_processing_moves_pending_to_processing_and_a_restart_keeps_the_first_upload_time(
    backend: Backend,
) -> None:
    backend.images.create(pending(), None, EPOCH)

    first = backend.images.start_processing(ID, T1, LATER)
    again = backend.images.start_processing(ID, T2, LATER)

    assert first == pending(status=ImageStatus.PROCESSING, updated_at=T1, uploaded_at=T1)
    assert again == pending(status=ImageStatus.PROCESSING, updated_at=T2, uploaded_at=T1)
    assert backend.images.get(ID) == again


@pytest.mark.parametrize("status", [ImageStatus.COMPLETED, ImageStatus.FAILED, ImageStatus.EXPIRED])
def test_a_terminal_image_never_starts_processing_again(backend: Backend, status: ImageStatus) -> None:
    backend.seed(pending(status=status, event_id="e", event_published=True))

    with pytest.raises(ConditionFailed):
        backend.images.start_processing(ID, T1, LATER)

    assert backend.images.get(ID) == pending(status=status, event_id="e", event_published=True)


def test_no_transition_touches_an_unknown_image(backend: Backend) -> None:
    transitions: list[Callable[[], object]] = [
        lambda: backend.images.start_processing(ID, T1, LATER),
        lambda: backend.images.finish_processing(ID, COMPLETED, "e", T1),
        lambda: backend.images.expire(ID, "e", T2, T2),
        lambda: backend.images.fail_stalled(ID, "e", LATER),
        lambda: backend.images.postpone_sweep(ID, T2),
        lambda: backend.images.mark_event_published(ID, "e"),
    ]
    for transition in transitions:
        with pytest.raises(ConditionFailed):
            transition()
    assert backend.image_records() == {}


def test_no_transition_touches_an_image_being_deleted(backend: Backend) -> None:
    backend.seed(pending(status=ImageStatus.PROCESSING, deleted_at=T1))

    transitions: list[Callable[[], object]] = [
        lambda: backend.images.refresh_upload_window(ID, T2, T1),
        lambda: backend.images.start_processing(ID, T1, LATER),
        lambda: backend.images.finish_processing(ID, COMPLETED, "e", T1),
        lambda: backend.images.fail_stalled(ID, "e", LATER),
    ]
    for transition in transitions:
        with pytest.raises(ConditionFailed):
            transition()
    assert backend.images.get(ID) == pending(status=ImageStatus.PROCESSING, deleted_at=T1)


def test_finishing_records_the_outcome_and_its_event_once(backend: Backend) -> None:
    backend.images.create(pending(), None, EPOCH)
    backend.images.start_processing(ID, T1, LATER)
    event_id = event_id_for(ID, ImageStatus.COMPLETED)

    record = backend.images.finish_processing(ID, COMPLETED, event_id, T2)

    assert record == pending(
        status=ImageStatus.COMPLETED,
        updated_at=T2,
        uploaded_at=T1,
        width=1600,
        height=900,
        placeholder="data:x",
        event_id=event_id,
        event_occurred_at=T2,
    )
    assert record.version == 1  # processing is not a metadata edit
    assert backend.images.get(ID) == record
    with pytest.raises(ConditionFailed):  # a second delivery loses
        backend.images.finish_processing(ID, FAILED, "other", T3)
    assert backend.images.get(ID) == record


def test_a_failed_outcome_keeps_its_error_and_no_dimensions(backend: Backend) -> None:
    backend.images.create(pending(), None, EPOCH)
    backend.images.start_processing(ID, T1, LATER)

    record = backend.images.finish_processing(ID, FAILED, "e", T2)

    assert (record.status, record.error_code, record.error_message) == (
        ImageStatus.FAILED,
        "unsupported_format",
        "Not an image.",
    )
    assert (record.width, record.height, record.placeholder) == (None, None, None)
    assert backend.images.get(ID) == record


def test_a_pending_image_cannot_finish_without_starting(backend: Backend) -> None:
    backend.images.create(pending(), None, EPOCH)

    with pytest.raises(ConditionFailed):
        backend.images.finish_processing(ID, COMPLETED, "e", T1)


# -- the sweep index ---------------------------------------------------------------------


def test_a_pending_image_is_due_when_its_upload_window_closes(backend: Backend) -> None:
    backend.images.create(pending(), None, EPOCH)

    assert due(backend, ID, T0) == []
    assert due(backend, ID, T1) == [ID]
    assert all(
        backend.images.due_for_sweep(partition, LATER, 100) == []
        for partition in ("SWEEP#0", "SWEEP#1", "SWEEP#2", "SWEEP#3")
        if partition != sweep_partition(ID)
    )


def test_a_processing_image_is_due_at_its_deadline_and_each_start_moves_it(backend: Backend) -> None:
    backend.images.create(pending(), None, EPOCH)
    backend.images.start_processing(ID, T1, T2)
    assert due(backend, ID, T1) == [] and due(backend, ID, T2) == [ID]

    backend.images.start_processing(ID, T2, T3)

    assert due(backend, ID, T2) == [] and due(backend, ID, T3) == [ID]


def test_an_unpublished_event_is_due_at_once_and_leaves_the_index_once_published(backend: Backend) -> None:
    backend.images.create(pending(), None, EPOCH)
    backend.images.start_processing(ID, T1, LATER)
    backend.images.finish_processing(ID, COMPLETED, "event-1", T2)
    assert due(backend, ID, T2) == [ID]

    with pytest.raises(ConditionFailed):  # another event's mark
        backend.images.mark_event_published(ID, "event-0")
    backend.images.mark_event_published(ID, "event-1")

    record = backend.images.get(ID)
    assert record is not None and record.event_published
    assert due(backend, ID) == []
    backend.images.mark_event_published(ID, "event-1")  # marking again changes nothing
    assert due(backend, ID) == []


def test_the_sweep_reads_oldest_first_and_at_most_its_limit(backend: Backend) -> None:
    # Ids in one partition, due at different times, created in another order.
    ids = [f"01J{n:023d}" for n in range(1, 40)]
    partition = sweep_partition(ids[0])
    same = [i for i in ids if sweep_partition(i) == partition][:3]
    for image_id, expires in zip(same, (T2, T1, T3), strict=True):
        backend.images.create(pending(image_id, upload_expires_at=expires), None, EPOCH)

    assert [r.id for r in backend.images.due_for_sweep(partition, LATER, 100)] == [same[1], same[0], same[2]]
    assert [r.id for r in backend.images.due_for_sweep(partition, LATER, 2)] == [same[1], same[0]]
    assert [r.id for r in backend.images.due_for_sweep(partition, T2, 100)] == [same[1], same[0]]


def test_postponing_moves_a_pending_image_on_and_refuses_any_other(backend: Backend) -> None:
    backend.images.create(pending(), None, EPOCH)

    assert backend.images.postpone_sweep(ID, T3) == pending()

    assert due(backend, ID, T2) == [] and due(backend, ID, T3) == [ID]
    backend.images.start_processing(ID, T1, LATER)
    with pytest.raises(ConditionFailed):
        backend.images.postpone_sweep(ID, T3)
    assert due(backend, ID, T3) == []


def test_a_stalled_image_fails_only_once_its_deadline_passed(backend: Backend) -> None:
    backend.images.create(pending(), None, EPOCH)
    backend.images.start_processing(ID, T1, T2)
    event_id = event_id_for(ID, ImageStatus.FAILED)

    with pytest.raises(ConditionFailed):
        backend.images.fail_stalled(ID, event_id, T1)
    record = backend.images.fail_stalled(ID, event_id, T3)

    assert (record.status, record.error_code, record.event_id, record.event_occurred_at) == (
        ImageStatus.FAILED,
        STALLED_CODE,
        event_id,
        T3,
    )
    assert due(backend, ID, T3) == [ID]  # its event is owed


def test_a_restarted_attempt_is_not_failed_at_its_old_deadline(backend: Backend) -> None:
    backend.images.create(pending(), None, EPOCH)
    backend.images.start_processing(ID, T1, T2)
    backend.images.start_processing(ID, T2, LATER)

    with pytest.raises(ConditionFailed):
        backend.images.fail_stalled(ID, "e", T3)


def test_a_processing_record_with_no_deadline_is_never_failed_as_stalled(backend: Backend) -> None:
    # Stored as it is (no attempt set a deadline): not in the sweep index, and the
    # transition's condition on the deadline is false rather than true.
    backend.seed(pending(status=ImageStatus.PROCESSING))

    assert due(backend, ID) == []
    with pytest.raises(ConditionFailed):
        backend.images.fail_stalled(ID, "e", LATER)


def test_an_abandoned_upload_expires_only_after_its_window_closed(backend: Backend) -> None:
    backend.images.create(pending(), None, EPOCH)
    event_id = event_id_for(ID, ImageStatus.EXPIRED)

    with pytest.raises(ConditionFailed):  # the window closed at T1, not before T1
        backend.images.expire(ID, event_id, T1, T3)
    record = backend.images.expire(ID, event_id, T2, T3)

    assert (record.status, record.error_code, record.event_id, record.event_published) == (
        ImageStatus.EXPIRED,
        "upload_expired",
        event_id,
        False,
    )
    with pytest.raises(ConditionFailed):
        backend.images.expire(ID, event_id, T2, T3)
    assert due(backend, ID, T3) == [ID]


def test_a_processing_image_never_expires(backend: Backend) -> None:
    backend.images.create(pending(), None, EPOCH)
    backend.images.start_processing(ID, T1, LATER)

    with pytest.raises(ConditionFailed):
        backend.images.expire(ID, "e", LATER, LATER)
