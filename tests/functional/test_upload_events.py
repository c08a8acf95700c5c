"""The processor Lambda: S3 notifications from the real (moto) upload queue, through
``api.lambda_.invoke("handle_upload_events", ...)``, to DynamoDB, the image bucket and SNS."""

from __future__ import annotations

import io
from urllib.parse import unquote, urlparse

from botocore.stub import Stubber
from PIL import Image

from chalicelib import aws
from chalicelib.models.common import ImageStatus
from chalicelib.models.domain import RENDITION_VERSION, event_id_for, ladder_key, versioned_thumbnail_key
from chalicelib.services.uploads import new_image_id
from tests.functional.conftest import Stack
from tests.functional.support import (
    HANDLER,
    EventCapture,
    Uploader,
    deliver,
    image_bytes,
    image_item,
    is_test_event,
    receive_all,
    s3_event_body,
)


def webp_size(data: bytes | None) -> tuple[int, int]:
    assert data is not None
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "WEBP"
        return image.size


def largest(user_id: str, image_id: str, box: int) -> str:
    """The key of an image's largest WebP rendition, fitted inside ``box``."""
    return ladder_key(user_id, image_id, RENDITION_VERSION, box, "webp")


def thumbnail(user_id: str, image_id: str) -> str:
    return versioned_thumbnail_key(user_id, image_id, RENDITION_VERSION)


def url_path(url: str) -> str:
    return unquote(urlparse(url).path)


def in_flight(stack: Stack) -> int:
    attributes = stack.sqs.get_queue_attributes(
        QueueUrl=stack.queue_url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessagesNotVisible"])


def test_a_valid_jpeg_completes_with_a_bounded_rendition_a_thumbnail_and_one_event(
    uploader: Uploader, aws_stack: Stack, sns_events: EventCapture
) -> None:
    image_id, _ = uploader.process(image_bytes(2400, 1200))

    status = uploader.status(image_id)
    assert status["status"] == "completed"
    assert set(status) == {"id", "status", "updatedAt", "imageUrl", "thumbnailUrl"}
    assert url_path(status["imageUrl"]).endswith(f"/{largest('alice', image_id, 2048)}")
    assert url_path(status["thumbnailUrl"]).endswith(f"/{thumbnail('alice', image_id)}")
    assert webp_size(uploader.image_object(largest("alice", image_id, 2048))) == (2048, 1024)
    assert webp_size(uploader.image_object(thumbnail("alice", image_id))) == (400, 400)
    item = image_item(aws_stack, image_id)
    assert item is not None
    assert (item["width"], item["height"]) == (2048, 1024)
    assert item["eventPublished"] is True

    [event] = sns_events.drain()
    assert event.attributes == {"eventType": "image.completed", "userId": "alice"}
    assert set(event.body) == {"eventId", "type", "occurredAt", "image"}
    assert event.body["eventId"] == event_id_for(image_id, ImageStatus.COMPLETED)
    assert event.body["type"] == "image.completed"
    assert event.body["occurredAt"] == status["updatedAt"]
    image = uploader.get(image_id)
    assert event.body["image"] == {
        "id": image_id,
        "userId": "alice",
        "status": "completed",
        "imageUrl": status["imageUrl"],
        "thumbnailUrl": status["thumbnailUrl"],
        "width": 2048,
        "height": 1024,
        "renditions": image["renditions"],
        "srcset": image["srcset"],
        "thumbhash": image["thumbhash"],
        "dominantColor": image["dominantColor"],
    }


def test_a_small_png_is_never_enlarged(uploader: Uploader) -> None:
    image_id, _ = uploader.process(image_bytes(300, 120, fmt="PNG"), contentType="image/png", filename="s.png")

    assert uploader.status(image_id)["status"] == "completed"
    assert webp_size(uploader.image_object(largest("alice", image_id, 320))) == (300, 120)
    assert webp_size(uploader.image_object(thumbnail("alice", image_id))) == (400, 400)


def test_a_text_file_declared_as_jpeg_fails_with_a_reason_and_is_acknowledged(
    uploader: Uploader, sns_events: EventCapture
) -> None:
    data = b"This is not an image at all, just some text pretending to be a JPEG.\n" * 20
    created = uploader.create(size=len(data))
    bodies = uploader.put(created, data)

    payload = deliver(uploader.api, bodies)  # not a batch item failure: the message is acknowledged

    assert payload == {"batchItemFailures": []}

    status = uploader.status(created["id"])
    assert status["status"] == "failed"
    assert status["error"]["code"] == "unsupported_format"
    assert status["error"]["message"].strip()
    assert "imageUrl" not in status
    assert uploader.image_object(largest("alice", created["id"], 320)) is None
    [event] = sns_events.drain()
    assert event.attributes == {"eventType": "image.failed", "userId": "alice"}
    assert event.body["eventId"] == event_id_for(created["id"], ImageStatus.FAILED)
    assert event.body["image"]["status"] == "failed"
    assert event.body["image"]["error"]["code"] == "unsupported_format"
    assert "imageUrl" not in event.body["image"]


def test_an_upload_larger_than_declared_fails_as_size_mismatch_and_never_completes(
    uploader: Uploader, sns_events: EventCapture
) -> None:
    data = image_bytes(640, 480)
    created = uploader.create(size=len(data) - 1)
    bodies = uploader.put(created, data)

    deliver(uploader.api, bodies)
    deliver(uploader.api, bodies)

    status = uploader.status(created["id"])
    assert status["status"] == "failed"
    assert status["error"]["code"] == "size_mismatch"
    assert uploader.image_object(largest("alice", created["id"], 640)) is None
    assert [e.attributes["eventType"] for e in sns_events.drain()] == ["image.failed"]


def test_a_duplicated_delivery_makes_no_second_transition_and_no_second_event(
    uploader: Uploader, aws_stack: Stack, sns_events: EventCapture
) -> None:
    data = image_bytes()
    created = uploader.create(size=len(data))
    bodies = uploader.put(created, data)

    deliver(uploader.api, bodies + bodies)  # the same message twice in one batch
    after_first = image_item(aws_stack, created["id"])
    deliver(uploader.api, bodies)  # and again, later, in another invocation

    assert after_first is not None
    assert after_first["status"] == "completed"
    assert image_item(aws_stack, created["id"]) == after_first
    events = sns_events.drain()
    assert [e.body["eventId"] for e in events] == [event_id_for(created["id"], ImageStatus.COMPLETED)]


def test_the_s3_test_event_is_ignored(uploader: Uploader, aws_stack: Stack, sns_events: EventCapture) -> None:
    created = uploader.create()
    test_events = [m["Body"] for m in receive_all(aws_stack.sqs, aws_stack.queue_url) if is_test_event(m["Body"])]
    assert test_events, "provisioning should have made S3 send its s3:TestEvent"

    assert deliver(uploader.api, test_events) == {"batchItemFailures": []}

    assert uploader.status(created["id"]) == {
        "id": created["id"],
        "status": "pending",
        "updatedAt": created["image"]["updatedAt"],
    }
    assert sns_events.drain() == []


def test_keys_with_spaces_plus_percent_and_unicode_are_url_decoded(
    uploader: Uploader, aws_stack: Stack, sns_events: EventCapture
) -> None:
    user = "a b+c%é"
    data = image_bytes()
    # Through moto's own notification (it URL-encodes the key as S3 does).
    via_moto, _ = uploader.process(data, user_id=user)
    # Through a notification written by hand, encoded the way AWS writes it.
    created = uploader.create(user, size=len(data))
    uploader.put(created, data)
    deliver(uploader.api, [s3_event_body(aws_stack.upload_bucket, f"uploads/{user}/{created['id']}", len(data))])

    for image_id in (via_moto, created["id"]):
        status = uploader.status(image_id, user)
        assert status["status"] == "completed", status
        assert url_path(status["imageUrl"]).endswith(f"/{largest(user, image_id, 320)}")
        assert webp_size(uploader.image_object(largest(user, image_id, 320))) == (320, 200)
    assert sorted(e.attributes["userId"] for e in sns_events.drain()) == [user, user]


def test_an_event_for_an_unknown_image_or_a_foreign_bucket_is_ignored(
    uploader: Uploader, aws_stack: Stack, sns_events: EventCapture
) -> None:
    data = image_bytes()
    created = uploader.create(size=len(data))
    uploader.put(created, data)  # the genuine notification is left undelivered
    key = created["upload"]["fields"]["key"]

    payload = deliver(
        uploader.api,
        [
            s3_event_body("someone-elses-bucket", key, len(data)),
            s3_event_body(aws_stack.upload_bucket, f"uploads/alice/{new_image_id()}", len(data)),
            s3_event_body(aws_stack.upload_bucket, f"uploads/mallory/{created['id']}", len(data)),
            s3_event_body(aws_stack.upload_bucket, f"images/alice/{created['id']}.webp", len(data)),
            s3_event_body(aws_stack.upload_bucket, key, len(data), event_name="ObjectRemoved:Delete"),
        ],
    )

    assert payload == {"batchItemFailures": []}
    item = image_item(aws_stack, created["id"])
    assert item is not None
    assert (item["status"], item["version"]) == ("pending", 1)
    assert sns_events.drain() == []


def test_a_transient_s3_failure_fails_the_batch_and_a_redelivery_completes(
    uploader: Uploader, aws_stack: Stack, sns_events: EventCapture
) -> None:
    data = image_bytes()
    created = uploader.create(size=len(data))
    bodies = uploader.put(created, data)
    key = created["upload"]["fields"]["key"]
    s3 = aws.s3()  # the client the processor's object store uses

    with Stubber(s3) as stubber:
        stubber.add_response(
            "head_object", {"ContentLength": len(data)}, {"Bucket": aws_stack.upload_bucket, "Key": key}
        )
        stubber.add_client_error(
            "get_object",
            service_error_code="SlowDown",
            service_message="Please reduce your request rate.",
            http_status_code=503,
            expected_params={"Bucket": aws_stack.upload_bucket, "Key": key},
        )
        response = deliver(uploader.api, bodies)
        stubber.assert_no_pending_responses()
    assert len(response["batchItemFailures"]) == 1  # the record goes back to the queue

    item = image_item(aws_stack, created["id"])
    assert item is not None
    assert item["status"] in ("pending", "processing")  # not terminal: retryable
    assert sns_events.drain() == []

    deliver(uploader.api, bodies)

    assert uploader.status(created["id"])["status"] == "completed"
    assert [e.attributes["eventType"] for e in sns_events.drain()] == ["image.completed"]


def test_only_the_failed_record_of_a_batch_returns_to_the_queue(uploader: Uploader, aws_stack: Stack) -> None:
    data = image_bytes()
    created = uploader.create(size=len(data))
    aws_stack.s3.put_object(Bucket=aws_stack.upload_bucket, Key=created["upload"]["fields"]["key"], Body=data)
    messages = aws_stack.sqs.receive_message(QueueUrl=aws_stack.queue_url, MaxNumberOfMessages=10)["Messages"]
    [test_event] = [m for m in messages if is_test_event(m["Body"])]
    [upload] = [m for m in messages if not is_test_event(m["Body"])]
    queue_arn = aws_stack.sqs.get_queue_attributes(QueueUrl=aws_stack.queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    event = {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1",
            }
            for m in (test_event, upload)
        ]
    }
    assert in_flight(aws_stack) == 2

    with Stubber(aws.s3()) as stubber:
        stubber.add_client_error("head_object", service_error_code="InternalError", http_status_code=500)
        response = uploader.api.lambda_.invoke(HANDLER, event).payload

    # Lambda deletes the s3:TestEvent and leaves the upload (ReportBatchItemFailures); the
    # processor itself deletes nothing.
    assert response == {"batchItemFailures": [{"itemIdentifier": upload["MessageId"]}]}
    assert in_flight(aws_stack) == 2
    aws_stack.sqs.delete_message(QueueUrl=aws_stack.queue_url, ReceiptHandle=test_event["ReceiptHandle"])
    aws_stack.sqs.change_message_visibility(
        QueueUrl=aws_stack.queue_url, ReceiptHandle=upload["ReceiptHandle"], VisibilityTimeout=0
    )
    assert [m["Body"] for m in receive_all(aws_stack.sqs, aws_stack.queue_url)] == [upload["Body"]]


def test_a_crash_while_writing_renditions_is_retried_to_completion(
    uploader: Uploader, aws_stack: Stack, sns_events: EventCapture
) -> None:
    data = image_bytes()
    created = uploader.create(size=len(data))
    bodies = uploader.put(created, data)
    aws_stack.s3.delete_bucket(Bucket=aws_stack.image_bucket)  # every rendition write now fails

    assert len(deliver(uploader.api, bodies)["batchItemFailures"]) == 1

    assert uploader.status(created["id"])["status"] == "processing"
    assert sns_events.drain() == []

    aws_stack.s3.create_bucket(Bucket=aws_stack.image_bucket)
    deliver(uploader.api, bodies)

    assert uploader.status(created["id"])["status"] == "completed"
    assert webp_size(uploader.image_object(largest("alice", created["id"], 320))) == (320, 200)
    assert [e.attributes["eventType"] for e in sns_events.drain()] == ["image.completed"]
