"""The scheduled sweep (expiry and the event outbox) and the DLQ redrive, against moto."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from chalicelib import aws, dependencies
from chalicelib.errors import TransientFailure
from chalicelib.models.common import utc_now
from chalicelib.models.responses import ImageEvent
from chalicelib.repositories.events import EventPublisher
from chalicelib.services.announcer import EventAnnouncer
from chalicelib.services.processing import ProcessingService, UploadedObject
from chalicelib.services.sweeper import Sweeper
from chalicelib.settings import get_settings
from scripts import redrive
from tests.functional.support import image_bytes


class UnreachableTopic(EventPublisher):
    """SNS refusing every publish, as during an outage."""

    def __init__(self) -> None:
        self.attempts = 0

    def publish(self, event: ImageEvent) -> None:
        self.attempts += 1
        raise TransientFailure()


def _sweeper(minutes_later: float, grace_minutes: float = 15) -> Sweeper:
    publisher = EventPublisher(aws.sns(), get_settings().events_topic_arn)
    announcer = EventAnnouncer(dependencies.image_repository(), publisher, dependencies.presenter())
    moment = utc_now() + timedelta(minutes=minutes_later)
    return Sweeper(
        dependencies.image_repository(),
        dependencies.object_store(),
        announcer,
        grace=timedelta(minutes=grace_minutes),
        relay_delay=timedelta(seconds=60),
        clock=lambda: moment,
    )


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


def test_an_abandoned_upload_expires_after_the_grace_period_with_one_event(uploader, aws_stack, sns_events):
    created = uploader.create("bob")
    assert _sweeper(minutes_later=20).run().expired == 0  # 15 min window + 15 min grace not over
    # A file that arrives too late is removed with the expiry.
    aws_stack.s3.put_object(Bucket=aws_stack.upload_bucket, Key=created["upload"]["fields"]["key"], Body=b"late")

    report = _sweeper(minutes_later=31).run()

    assert (report.expired, report.announced) == (1, 1)
    status = uploader.status(created["id"], "bob")
    assert (status["status"], status["error"]["code"]) == ("expired", "upload_expired")
    listed = aws_stack.s3.list_objects_v2(Bucket=aws_stack.upload_bucket, Prefix=created["upload"]["fields"]["key"])
    assert listed.get("KeyCount", 0) == 0
    events = sns_events.drain()
    assert [(e.body["type"], e.attributes["userId"]) for e in events] == [("image.expired", "bob")]
    assert _sweeper(minutes_later=40).run() == type(report)()  # nothing left to do


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


def test_a_delete_that_stopped_after_the_tombstone_leaves_nothing_for_the_sweep(uploader, aws_stack):
    from chalicelib.repositories.images import ImageQueries

    created = uploader.create("dora")
    queries = ImageQueries(aws.dynamodb(), get_settings().table_name)
    queries.begin_delete(created["id"], "dora", "2026-11-22T00:00:00.000Z")  # the crash comes right after

    report = _sweeper(minutes_later=120).run()

    assert (report.expired, report.announced, report.not_yet) == (0, 0, 0)
    record = dependencies.image_repository().get(created["id"])
    assert record is not None and record.deleted_at is not None
