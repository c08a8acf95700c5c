"""The scheduled sweep (expiry and the event outbox) and the DLQ redrive, against moto."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from chalicelib import aws, dependencies
from chalicelib.errors import TransientFailure
from chalicelib.models.common import format_time, utc_now
from chalicelib.models.responses import ImageEvent
from chalicelib.repositories.events import EventPublisher
from chalicelib.repositories.images import ImageQueries
from chalicelib.repositories.queue import UploadQueue
from chalicelib.services.announcer import EventAnnouncer
from chalicelib.services.processing import ProcessingService, UploadedObject
from chalicelib.services.sweeper import Sweeper, SweepIncomplete, SweepReport
from chalicelib.settings import get_settings
from operations import redrive
from tests.functional.support import deliver, image_bytes, upload_notifications
from tests.reliability.faults import CrashAfterPublish, SimulatedCrash


class FailsOnce(EventPublisher):
    """The real topic, refusing only the first publish."""

    def __init__(self) -> None:
        super().__init__(aws.sns(), get_settings().events_topic_arn)
        self.failed_for: str | None = None

    def publish(self, event: ImageEvent) -> None:
        if self.failed_for is None:
            self.failed_for = event.image.user_id
            raise TransientFailure()
        super().publish(event)


class UnreachableTopic(EventPublisher):
    """SNS refusing every publish, as during an outage."""

    def __init__(self) -> None:
        self.attempts = 0

    def publish(self, event: ImageEvent) -> None:
        self.attempts += 1
        raise TransientFailure()


def _sweeper(minutes_later: float, grace_minutes: float = 15, publisher: EventPublisher | None = None) -> Sweeper:
    publisher = publisher or EventPublisher(aws.sns(), get_settings().events_topic_arn)
    announcer = EventAnnouncer(dependencies.image_repository(), publisher, dependencies.presenter())
    moment = utc_now() + timedelta(minutes=minutes_later)
    return Sweeper(
        dependencies.image_repository(),
        dependencies.object_store(),
        announcer,
        UploadQueue(aws.sqs(), get_settings().upload_queue_name),
        grace=timedelta(minutes=grace_minutes),
        processing_deadline=timedelta(seconds=get_settings().processing_deadline_seconds),
        queries=ImageQueries(aws.dynamodb(), get_settings().table_name),
        relay_delay=timedelta(seconds=60),
        clock=lambda: moment,
    )


def _processor(process: Callable[[bytes, Any], Any]) -> ProcessingService:
    return ProcessingService(
        dependencies.image_repository(),
        dependencies.object_store(),
        dependencies.event_publisher(),
        dependencies.presenter(),
        get_settings(),
        processor=process,
    )


def _processor_with(publisher: EventPublisher) -> ProcessingService:
    return ProcessingService(
        dependencies.image_repository(),
        dependencies.object_store(),
        publisher,
        dependencies.presenter(),
        get_settings(),
    )


def _crash(data: bytes, limits: Any) -> Any:
    raise RuntimeError("simulated: the function timed out mid-decode")


def test_an_event_whose_publish_failed_is_relayed_once_by_the_sweep(uploader, aws_stack, sns_events):
    created = uploader.create("alice")
    uploader.put(created, image_bytes())
    outage = UnreachableTopic()
    processor = ProcessingService(
        dependencies.image_repository(),
        dependencies.object_store(),
        outage,
        dependencies.presenter(),
        get_settings(),
    )
    key = created["upload"]["fields"]["key"]
    with pytest.raises(TransientFailure):
        processor.handle_object(UploadedObject(bucket=aws_stack.upload_bucket, key=key))
    assert outage.attempts == 1
    assert uploader.status(created["id"])["status"] == "completed"
    assert sns_events.drain() == []

    assert _sweeper(minutes_later=0).run().announced == 0  # too fresh: the processor may still publish
    report = _sweeper(minutes_later=2).run()
    assert report.announced == 1
    events = sns_events.drain()
    assert [(e.body["type"], e.body["image"]["id"]) for e in events] == [("image.completed", created["id"])]
    assert _sweeper(minutes_later=3).run().announced == 0
    assert sns_events.drain() == []


def test_a_re_published_event_is_identical_even_after_a_patch_in_between(
    uploader, aws_stack, api, auth_for, sns_events
):
    created = uploader.create("jo")
    uploader.put(created, image_bytes())
    published_then_crashed = _processor_with(CrashAfterPublish(aws.sns(), get_settings().events_topic_arn))
    key = created["upload"]["fields"]["key"]
    with pytest.raises(SimulatedCrash):  # SNS took the event; the record does not say so
        published_then_crashed.handle_object(UploadedObject(bucket=aws_stack.upload_bucket, key=key))
    completed_at = uploader.status(created["id"], "jo")["updatedAt"]
    patched = api.http.patch(
        f"/images/{created['id']}", headers=auth_for("jo"), body=json.dumps({"title": "renamed", "version": 1})
    )
    assert patched.json_body["updatedAt"] > completed_at

    assert _sweeper(minutes_later=2).run().announced == 1

    first, second = sns_events.drain()
    assert first == second  # the same logical event, byte for byte
    assert first.body["occurredAt"] == completed_at  # when it completed, not when it was renamed


def test_an_abandoned_upload_expires_after_the_grace_period_with_one_event(uploader, aws_stack, sns_events):
    created = uploader.create("bob")
    assert _sweeper(minutes_later=20).run().expired == 0  # 15 min window + 15 min grace not over

    report = _sweeper(minutes_later=31).run()

    assert (report.expired, report.resubmitted, report.announced) == (1, 0, 1)
    status = uploader.status(created["id"], "bob")
    assert (status["status"], status["error"]["code"]) == ("expired", "upload_expired")
    events = sns_events.drain()
    assert [(e.body["type"], e.attributes["userId"]) for e in events] == [("image.expired", "bob")]
    assert _sweeper(minutes_later=40).run() == type(report)()  # nothing left to do


def test_an_upload_whose_notification_was_lost_is_handed_back_to_the_queue_not_expired(
    uploader, aws_stack, api, sns_events
):
    created = uploader.create("erin")
    key = created["upload"]["fields"]["key"]
    assert uploader.put(created, image_bytes())  # arrived in time; its notification is lost
    assert upload_notifications(aws_stack) == []

    report = _sweeper(minutes_later=31).run()

    assert (report.expired, report.resubmitted) == (0, 1)
    assert uploader.status(created["id"], "erin")["status"] == "pending"
    assert aws_stack.s3.head_object(Bucket=aws_stack.upload_bucket, Key=key)["ContentLength"] > 0
    # Not handed back again on every run: the record is due again at its processing deadline.
    assert _sweeper(minutes_later=36).run().resubmitted == 0
    resubmitted = upload_notifications(aws_stack)
    assert len(resubmitted) == 1
    deliver(api, resubmitted)  # the processor reads it like any S3 notification
    assert uploader.status(created["id"], "erin")["status"] == "completed"
    assert [e.body["type"] for e in sns_events.drain()] == ["image.completed"]
    assert _sweeper(minutes_later=24 * 60).run() == SweepReport()


def test_an_image_no_delivery_could_process_fails_at_its_deadline_with_one_event(uploader, aws_stack, sns_events):
    created = uploader.create("fay")
    uploader.put(created, image_bytes())
    key = created["upload"]["fields"]["key"]
    for _ in range(5):  # every delivery dies mid-processing, until the message is dead-lettered
        with pytest.raises(RuntimeError):
            _processor(_crash).handle_object(UploadedObject(bucket=aws_stack.upload_bucket, key=key))
    assert uploader.status(created["id"], "fay")["status"] == "processing"

    assert _sweeper(minutes_later=50).run().failed == 0  # the deadline (1 h) is not over
    report = _sweeper(minutes_later=61).run()

    assert (report.failed, report.announced) == (1, 1)
    status = uploader.status(created["id"], "fay")
    assert (status["status"], status["error"]["code"]) == ("failed", "processing_failed")
    assert [(e.body["type"], e.body["image"]["error"]["code"]) for e in sns_events.drain()] == [
        ("image.failed", "processing_failed")
    ]
    # A redriven copy of the message arriving afterwards changes nothing.
    assert dependencies.processing_service().handle_object(UploadedObject(aws_stack.upload_bucket, key)) == "duplicate"
    assert uploader.status(created["id"], "fay")["status"] == "failed"
    assert sns_events.drain() == []


def test_a_delivery_that_finishes_after_the_sweeper_failed_the_image_leaves_no_renditions(
    uploader, aws_stack, sns_events
):
    created = uploader.create("gus")
    uploader.put(created, image_bytes())
    key = created["upload"]["fields"]["key"]
    from processors import process_image

    def slow(data: bytes, limits: Any) -> Any:
        result = process_image(data, limits)
        assert _sweeper(minutes_later=61).run().failed == 1  # the deadline passed while it ran
        return result

    assert _processor(slow).handle_object(UploadedObject(aws_stack.upload_bucket, key)) == "duplicate"

    assert uploader.status(created["id"], "gus")["status"] == "failed"
    assert aws_stack.s3.list_objects_v2(Bucket=aws_stack.image_bucket).get("KeyCount", 0) == 0
    assert [e.body["type"] for e in sns_events.drain()] == ["image.failed"]


def test_a_record_that_cannot_be_swept_does_not_stop_the_others(uploader, sns_events):
    first, second = uploader.create("hal"), uploader.create("ida")
    outage = FailsOnce()

    with pytest.raises(SweepIncomplete):
        _sweeper(minutes_later=31, publisher=outage).run()

    # Both expired; the one whose publish failed is relayed by the next run.
    assert {uploader.status(first["id"], "hal")["status"], uploader.status(second["id"], "ida")["status"]} == {
        "expired"
    }
    assert len(sns_events.drain()) == 1
    assert _sweeper(minutes_later=33).run().announced == 1
    assert sorted(e.attributes["userId"] for e in sns_events.drain()) == [outage.failed_for]


def test_an_upload_that_arrived_never_expires(uploader, sns_events):
    image_id, _ = uploader.process(image_bytes(), "carol")
    report = _sweeper(minutes_later=120).run()
    assert report.expired == 0
    assert uploader.status(image_id, "carol")["status"] == "completed"
    assert [e.body["type"] for e in sns_events.drain()] == ["image.completed"]


def test_redrive_moves_dead_letters_back_without_losing_one(aws_stack):
    dlq_url = aws_stack.sqs.get_queue_url(QueueName="image-service-uploads-local-dlq")["QueueUrl"]
    bodies = [json.dumps({"Records": [], "n": n}) for n in range(13)]
    for body in bodies:
        aws_stack.sqs.send_message(QueueUrl=dlq_url, MessageBody=body)

    peeked = redrive.peek(aws_stack.sqs, dlq_url, limit=50)
    assert sorted(m["Body"] for m in peeked) == sorted(bodies)  # looking consumes nothing
    moved = redrive.move(aws_stack.sqs, dlq_url, aws_stack.queue_url, limit=1000)

    assert moved == 13
    back: dict[str, str] = {}
    for _ in range(3):
        batch = aws_stack.sqs.receive_message(
            QueueUrl=aws_stack.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=300
        ).get("Messages", [])
        back.update({m["MessageId"]: m["Body"] for m in batch if '"n"' in m["Body"]})
    assert sorted(back.values()) == sorted(bodies)
    left = aws_stack.sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["ApproximateNumberOfMessages"])
    assert left["Attributes"]["ApproximateNumberOfMessages"] == "0"


def test_a_delete_that_stopped_after_the_tombstone_is_finished_by_the_sweep(uploader, aws_stack, api, auth_for):
    image_id, _ = uploader.process(image_bytes(), "dora")
    queries = ImageQueries(aws.dynamodb(), get_settings().table_name)
    queries.begin_delete(image_id, "dora", format_time(utc_now()))  # the crash comes right after
    assert api.http.get(f"/images/{image_id}", headers=auth_for("dora")).status_code == 404
    assert aws_stack.s3.list_objects_v2(Bucket=aws_stack.image_bucket).get("KeyCount", 0) == 2  # still public

    assert _sweeper(minutes_later=5).run().deletes_finished == 0  # a retried DELETE may still be coming
    report = _sweeper(minutes_later=11).run()

    assert (report.deletes_finished, report.expired, report.announced) == (1, 0, 0)
    assert aws_stack.s3.list_objects_v2(Bucket=aws_stack.image_bucket).get("KeyCount", 0) == 0
    listed = aws_stack.s3.list_objects_v2(Bucket=aws_stack.upload_bucket, Prefix=f"uploads/dora/{image_id}")
    assert listed.get("KeyCount", 0) == 0
    assert dependencies.image_repository().get(image_id) is None
    assert api.http.delete(f"/images/{image_id}", headers=auth_for("dora")).status_code == 404
    assert _sweeper(minutes_later=20).run() == SweepReport()
