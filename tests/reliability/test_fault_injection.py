"""The processor under faults: crashes after each side effect, duplicate, parallel and late
deliveries, DynamoDB throttling and lost responses, conditional races, S3 5xx and SNS
failures. Every scenario ends with exactly one terminal state, its outputs present, and
exactly one logical event (one distinct eventId, every delivery identical)."""

from __future__ import annotations

import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any, cast

import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders

from chalicelib import aws
from chalicelib.errors import TransientFailure
from chalicelib.repositories.images import ImageQueries
from chalicelib.repositories.queue import UploadQueue
from chalicelib.services.announcer import EventAnnouncer
from chalicelib.services.processing import Outcome
from chalicelib.services.sweeper import Sweeper
from chalicelib.settings import get_settings
from tests.functional.support import deliver, image_bytes, image_item, s3_event_body
from tests.reliability.faults import (
    SERVER_ERROR,
    SNS_ERROR,
    THROTTLED,
    Adapters,
    CrashAfterMark,
    CrashAfterPublish,
    CrashAfterStart,
    CrashAfterTransition,
    CrashAfterWrite,
    Fault,
    FaultyClient,
    RivalFinishesFirst,
    SimulatedCrash,
    events_of,
    healthy,
    settled,
)

DATA = image_bytes(160, 120)


def uploaded(uploader: Any, data: bytes = DATA, user: str = "alice") -> tuple[str, str]:
    """A created image whose bytes are in S3; returns (image id, its S3 notification body)."""
    created = uploader.create(user, size=len(data))
    bodies = uploader.put(created, data)
    assert len(bodies) == 1
    return created["id"], bodies[0]


# -- a crash after each side effect, then redelivery ----------------------------------

CRASH_POINTS: dict[str, dict[str, Any]] = {
    "after_start_processing": {"repository_class": CrashAfterStart},
    "after_the_rendition_write": {"store_class": CrashAfterWrite, "store_options": {"crash_on": "rendition"}},
    "after_the_thumbnail_write": {"store_class": CrashAfterWrite, "store_options": {"crash_on": "thumbnail"}},
    "after_the_state_change": {"repository_class": CrashAfterTransition},
    "after_the_publish": {"publisher_class": CrashAfterPublish},
    "after_marking_published": {"repository_class": CrashAfterMark},
}


@pytest.mark.parametrize("crash_point", list(CRASH_POINTS))
def test_a_crash_after_each_side_effect_then_redelivery_ends_with_one_state_and_one_event(
    uploader, aws_stack, sns_events, crash_point
):
    image_id, body = uploaded(uploader)
    with pytest.raises(SimulatedCrash):
        Adapters(aws_stack, **CRASH_POINTS[crash_point]).service().handle_message(body)
    outcomes = healthy(aws_stack).handle_message(body)

    already_terminal = crash_point in ("after_the_state_change", "after_the_publish", "after_marking_published")
    assert outcomes == [Outcome.DUPLICATE if already_terminal else Outcome.COMPLETED]
    events = sns_events.drain()
    settled(aws_stack, events, image_id)
    published_twice = crash_point == "after_the_publish"
    assert len(events_of(events, image_id)) == (2 if published_twice else 1)


def test_a_crash_at_every_point_in_a_row_still_ends_with_one_event(uploader, aws_stack, sns_events):
    image_id, body = uploaded(uploader)
    for options in CRASH_POINTS.values():
        adapters = Adapters(aws_stack, **options)
        with contextlib.suppress(SimulatedCrash):
            adapters.service().handle_message(body)
    assert healthy(aws_stack).handle_message(body) == [Outcome.DUPLICATE]
    settled(aws_stack, sns_events.drain(), image_id)


def test_after_a_crash_between_the_state_change_and_the_publish_the_sweeper_relays_the_one_event(
    uploader, aws_stack, sns_events
):
    image_id, body = uploaded(uploader)
    with pytest.raises(SimulatedCrash):
        Adapters(aws_stack, repository_class=CrashAfterTransition).service().handle_message(body)
    assert sns_events.drain() == []
    settings = get_settings()
    processing = healthy(aws_stack)
    sweeper = Sweeper(
        processing._images,
        processing._store,
        EventAnnouncer(processing._images, processing._publisher, processing._presenter),
        UploadQueue(aws.sqs(), settings.upload_queue_name),
        grace=timedelta(seconds=settings.expiry_grace_seconds),
        processing_deadline=timedelta(seconds=settings.processing_deadline_seconds),
        queries=ImageQueries(aws.dynamodb(), settings.table_name),
        relay_delay=timedelta(0),
    )

    first = sweeper.run()
    second = sweeper.run()
    late = healthy(aws_stack).handle_message(body)  # the SQS redelivery arrives after the sweep

    assert (first.announced, second.announced) == (1, 0)
    assert late == [Outcome.DUPLICATE]
    events = sns_events.drain()
    settled(aws_stack, events, image_id)
    assert len(events_of(events, image_id)) == 1


# -- the same event delivered 2-5 times: in a row, in parallel, late ------------------


@pytest.mark.parametrize("copies", [2, 5])
def test_the_same_notification_delivered_again_and_again_publishes_one_event(uploader, aws_stack, sns_events, copies):
    image_id, body = uploaded(uploader)
    service = healthy(aws_stack)

    outcomes = [outcome for _ in range(copies) for outcome in service.handle_message(body)]

    assert outcomes == [Outcome.COMPLETED] + [Outcome.DUPLICATE] * (copies - 1)
    events = sns_events.drain()
    settled(aws_stack, events, image_id)
    assert len(events_of(events, image_id)) == 1


@pytest.mark.parametrize("copies", [2, 3, 5])
def test_the_same_notification_delivered_in_parallel_completes_once_with_one_logical_event(
    uploader, aws_stack, sns_events, copies
):
    image_id, body = uploaded(uploader)
    # One DynamoDB lock shared by every delivery: each request is atomic, as in DynamoDB.
    dynamodb = FaultyClient(aws_stack.dynamodb, serialise=True)
    services = [Adapters(aws_stack, dynamodb=dynamodb).service() for _ in range(copies)]
    barrier = threading.Barrier(copies, timeout=30)

    def deliver(index: int) -> list[Outcome]:
        barrier.wait()
        return services[index].handle_message(body)

    with ThreadPoolExecutor(max_workers=copies) as pool:
        outcomes = [o for result in pool.map(deliver, range(copies)) for o in result]

    assert outcomes.count(Outcome.COMPLETED) == 1, outcomes
    assert outcomes.count(Outcome.DUPLICATE) == copies - 1, outcomes
    settled(aws_stack, sns_events.drain(), image_id)


def test_a_late_delivery_after_completion_changes_nothing_and_publishes_nothing(uploader, aws_stack, sns_events):
    image_id, body = uploaded(uploader)
    service = healthy(aws_stack)
    service.handle_message(body)
    before = image_item(aws_stack, image_id)
    first_events = sns_events.drain()

    assert service.handle_message(body) == [Outcome.DUPLICATE]

    assert image_item(aws_stack, image_id) == before
    assert sns_events.drain() == []
    settled(aws_stack, first_events, image_id)


def test_a_late_delivery_after_the_image_was_deleted_is_ignored_and_recreates_nothing(
    uploader, api, aws_stack, sns_events, auth_for
):
    image_id, body = uploaded(uploader)
    healthy(aws_stack).handle_message(body)
    sns_events.drain()
    assert api.http.delete(f"/images/{image_id}", headers=auth_for("alice")).status_code == 204

    assert healthy(aws_stack).handle_message(body) == [Outcome.IGNORED]

    assert image_item(aws_stack, image_id) is None
    assert uploader.image_keys(f"images/alice/{image_id}") == set()
    assert sns_events.drain() == []


# -- conditional failures: a rival delivery or a delete wins the race ------------------


def test_when_a_rival_delivery_finishes_first_the_loser_publishes_no_second_event(uploader, aws_stack, sns_events):
    image_id, body = uploaded(uploader)
    adapters = Adapters(aws_stack, repository_class=RivalFinishesFirst)
    service = adapters.service()
    rival_outcomes: list[Outcome] = []
    service._images.rival = lambda: rival_outcomes.extend(healthy(aws_stack).handle_message(body))  # type: ignore[attr-defined]

    outcomes = service.handle_message(body)

    assert rival_outcomes == [Outcome.COMPLETED]
    assert outcomes == [Outcome.DUPLICATE]
    events = sns_events.drain()
    settled(aws_stack, events, image_id)
    assert len(events_of(events, image_id)) == 1


def test_when_the_image_is_deleted_during_processing_its_renditions_are_removed_and_no_event_is_sent(
    uploader, api, aws_stack, sns_events, auth_for
):
    image_id, body = uploaded(uploader)
    service = Adapters(aws_stack, repository_class=RivalFinishesFirst).service()
    deleted: list[int] = []
    service._images.rival = lambda: deleted.append(  # type: ignore[attr-defined]
        api.http.delete(f"/images/{image_id}", headers=auth_for("alice")).status_code
    )

    outcomes = service.handle_message(body)

    assert deleted == [204]
    assert outcomes == [Outcome.IGNORED]
    assert image_item(aws_stack, image_id) is None
    assert uploader.image_keys(f"images/alice/{image_id}") == set()
    assert sns_events.drain() == []


# -- throttling and lost responses from DynamoDB --------------------------------------

DYNAMODB_FAULTS = {
    # name: (method, which call, applied?) -- processing calls: get_item, update_item x3
    "get_item_throttled": ("get_item", 1, False),
    "start_processing_throttled": ("update_item", 1, False),
    "finish_processing_throttled": ("update_item", 2, False),
    "mark_published_throttled": ("update_item", 3, False),
    "start_processing_applied_but_response_lost": ("update_item", 1, True),
    "finish_processing_applied_but_response_lost": ("update_item", 2, True),
    "mark_published_applied_but_response_lost": ("update_item", 3, True),
}


@pytest.mark.parametrize("fault_name", list(DYNAMODB_FAULTS))
def test_a_dynamodb_throttle_or_lost_response_is_retried_into_one_state_and_one_event(
    uploader, aws_stack, sns_events, fault_name
):
    method, call, applied = DYNAMODB_FAULTS[fault_name]
    image_id, body = uploaded(uploader)
    dynamodb = FaultyClient(aws_stack.dynamodb, Fault(method, frozenset({call}), *THROTTLED, applied=applied))

    with pytest.raises(TransientFailure):
        Adapters(aws_stack, dynamodb=dynamodb).service().handle_message(body)
    healthy(aws_stack).handle_message(body)

    assert dynamodb.injected == [f"{method}#{call}:{THROTTLED[0]}"]
    settled(aws_stack, sns_events.drain(), image_id)


def test_throttling_on_every_processing_call_in_turn_still_ends_with_one_event(uploader, aws_stack, sns_events):
    image_id, body = uploaded(uploader)
    # Each redelivery fails at the next call: get, start, finish, mark.
    dynamodb = FaultyClient(
        aws_stack.dynamodb,
        Fault("get_item", frozenset({1}), *THROTTLED),
        Fault("update_item", frozenset({1, 3, 5}), *THROTTLED),
    )
    service = Adapters(aws_stack, dynamodb=dynamodb).service()
    failures = 0
    for _ in range(8):  # bounded redeliveries (the queue's maxReceiveCount is 5)
        try:
            service.handle_message(body)
        except TransientFailure:
            failures += 1
            continue
        break
    assert failures == 4
    settled(aws_stack, sns_events.drain(), image_id)


# -- S3 5xx on head/get/put, SNS failures -------------------------------------------

S3_FAULTS = {
    "head_object_5xx": ("head_object", False),
    "get_object_5xx": ("get_object", False),
    "put_object_5xx": ("put_object", False),
    "put_object_applied_but_response_lost": ("put_object", True),
}


@pytest.mark.parametrize("fault_name", list(S3_FAULTS))
def test_an_s3_server_error_is_retried_into_one_state_and_one_event(uploader, aws_stack, sns_events, fault_name):
    method, applied = S3_FAULTS[fault_name]
    image_id, body = uploaded(uploader)
    s3 = FaultyClient(aws_stack.s3, Fault(method, frozenset({1}), *SERVER_ERROR, applied=applied))

    with pytest.raises(TransientFailure):
        Adapters(aws_stack, s3=s3).service().handle_message(body)
    assert image_item(aws_stack, image_id)["eventPublished"] is not True  # type: ignore[index]
    healthy(aws_stack).handle_message(body)

    settled(aws_stack, sns_events.drain(), image_id)


@pytest.mark.parametrize("applied", [False, True], ids=["refused", "accepted_but_response_lost"])
def test_an_sns_publish_failure_leaves_the_event_owed_and_the_redelivery_publishes_it_once(
    uploader, aws_stack, sns_events, applied
):
    image_id, body = uploaded(uploader)
    sns = FaultyClient(aws_stack.sns, Fault("publish", frozenset({1}), *SNS_ERROR, applied=applied))

    with pytest.raises(TransientFailure):
        Adapters(aws_stack, sns=sns).service().handle_message(body)
    owed = image_item(aws_stack, image_id)
    assert owed is not None and owed["status"] == "completed" and owed["eventPublished"] is False
    assert "GSI3PK" in owed, "an unpublished event must stay in the sweep outbox"
    assert healthy(aws_stack).handle_message(body) == [Outcome.DUPLICATE]

    events = sns_events.drain()
    settled(aws_stack, events, image_id)
    assert len(events_of(events, image_id)) == (2 if applied else 1)


def test_a_failed_image_survives_faults_the_same_way(uploader, aws_stack, sns_events):
    data = b"this is not an image at all" * 10
    image_id, body = uploaded(uploader, data)
    with pytest.raises(SimulatedCrash):
        Adapters(aws_stack, publisher_class=CrashAfterPublish).service().handle_message(body)
    assert healthy(aws_stack).handle_message(body) == [Outcome.DUPLICATE]
    item = settled(aws_stack, sns_events.drain(), image_id, status="failed")
    assert item["errorCode"]


def test_a_notification_for_a_key_no_record_knows_is_ignored(aws_stack, sns_events):
    key = "uploads/alice/01J00000000000000000000099"
    aws_stack.s3.put_object(Bucket=aws_stack.upload_bucket, Key=key, Body=DATA)
    outcomes = healthy(aws_stack).handle_message(s3_event_body(aws_stack.upload_bucket, key, len(DATA)))
    assert outcomes == [Outcome.IGNORED]
    assert sns_events.drain() == []


# -- the SQS handler's batch semantics ---------------------------------------------------


class FailGetObjectFor:
    """A botocore ``before-call`` hook on the app's S3 client: GetObject of one key answers 500."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.failures = 0

    def __call__(self, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        # before-call gets the serialised request: the key is in its URL path.
        if not str(params.get("url_path", "")).endswith(self.key):
            return None
        self.failures += 1
        parsed = {
            "Error": {"Code": "InternalError", "Message": "simulated"},
            "ResponseMetadata": {"HTTPStatusCode": 500},
        }
        return AWSResponse("https://s3.invalid", 500, HTTPHeaders(), None), parsed


def test_a_batch_with_one_failing_record_completes_the_others_and_only_the_failed_one_is_retried(
    api, aws_stack, sns_events, uploader
):
    first, first_body = uploaded(uploader)
    second, second_body = uploaded(uploader)
    third, third_body = uploaded(uploader)
    hook = FailGetObjectFor(f"uploads/alice/{second}")
    client = aws.s3()
    client.meta.events.register_first("before-call.s3.GetObject", cast(Any, hook))
    try:
        response = deliver(api, [first_body, second_body, third_body])
    finally:
        client.meta.events.unregister("before-call.s3.GetObject", cast(Any, hook))
    assert hook.failures == 1
    assert len(response["batchItemFailures"]) == 1  # the second record only (partial batch response)
    assert image_item(aws_stack, second)["status"] == "processing"  # type: ignore[index]

    # Lambda returns the failed record to the queue; it comes back alone (and maybe the others too).
    deliver(api, [second_body])
    deliver(api, [first_body, second_body, third_body])

    events = sns_events.drain()
    for image_id in (first, second, third):
        settled(aws_stack, events, image_id)
        assert len(events_of(events, image_id)) == 1
