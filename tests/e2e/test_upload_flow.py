"""The upload pipeline over HTTP against the local stack."""

from __future__ import annotations

import io
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from PIL import Image

from image_client.client import ApiError


def _unique_user(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _jpeg(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


def test_a_corpus_photo_goes_from_create_to_completed_and_its_renditions_are_fetchable(client_for, corpus_dir: Path):
    client = client_for(_unique_user("photo"))
    data = (corpus_dir / "kite.jpg").read_bytes()
    created = client.create_upload("kite.jpg", "image/jpeg", len(data), title="Kite")
    assert created["status"] == "pending"
    client.upload(created, data, "kite.jpg")
    final = client.wait_until_done(created["id"], timeout=120)
    assert final["status"] == "completed", final
    rendition = Image.open(io.BytesIO(client.fetch(final["imageUrl"])))
    thumbnail = Image.open(io.BytesIO(client.fetch(final["thumbnailUrl"])))
    assert (rendition.format, rendition.size) == ("WEBP", (2048, 1280))
    assert (thumbnail.format, thumbnail.size) == ("WEBP", (400, 400))


def test_sixteen_concurrent_creates_with_one_idempotency_key_make_one_image(client_for, aws):
    user = _unique_user("idem")
    client = client_for(user)
    key = f"key-{uuid.uuid4()}"

    def create(_: int) -> tuple[str, str]:
        response = requests.post(
            f"{client.api_url}/images",
            json={"filename": "a.jpg", "contentType": "image/jpeg", "size": 1234},
            headers={"Authorization": f"Bearer {client.token}", "Idempotency-Key": key},
            timeout=30,
        )
        assert response.status_code in (200, 201), response.text
        return str(response.status_code), response.json()["id"]

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(create, range(16)))
    assert len({image_id for _, image_id in results}) == 1
    assert [status for status, _ in results].count("201") == 1
    stored = aws("dynamodb").query(
        TableName="ImageMetadata-local",
        IndexName="GSI1",
        KeyConditionExpression="GSI1PK = :user",
        ExpressionAttributeValues={":user": {"S": f"USER#{user}"}},
    )
    assert stored["Count"] == 1


def test_a_text_file_declared_as_jpeg_ends_failed_with_a_reason(client_for):
    client = client_for(_unique_user("text"))
    data = b"this is plainly not a photo\n" * 10
    created = client.create_upload("notes.jpg", "image/jpeg", len(data))
    client.upload(created, data, "notes.jpg")
    final = client.wait_until_done(created["id"], timeout=60)
    assert final["status"] == "failed"
    assert final["error"]["code"] == "unsupported_format"
    assert "JPEG" in final["error"]["message"]


def test_an_upload_larger_than_declared_never_completes(client_for):
    # Real S3 refuses the POST (content-length-range); moto does not, so the processor
    # re-checks the stored size against the declared one.
    client = client_for(_unique_user("big"))
    data = _jpeg(64, 64)
    created = client.create_upload("small.jpg", "image/jpeg", len(data) // 2)
    client.upload(created, data, "small.jpg")
    final = client.wait_until_done(created["id"], timeout=60)
    assert final["status"] == "failed"
    assert final["error"]["code"] == "size_mismatch"


def test_a_user_cannot_read_another_users_status(client_for):
    owner, intruder = client_for(_unique_user("owner")), client_for(_unique_user("intruder"))
    created = owner.create_upload("a.jpg", "image/jpeg", 100)
    with pytest.raises(ApiError) as refused:
        intruder.status(created["id"])
    assert (refused.value.status, refused.value.code) == (403, "forbidden")


def test_a_duplicated_upload_event_changes_nothing_and_publishes_no_second_event(client_for, aws):
    sqs, sns = aws("sqs"), aws("sns")
    topic_arn = next(t["TopicArn"] for t in sns.list_topics()["Topics"] if t["TopicArn"].endswith("events-local"))
    capture_url = sqs.create_queue(QueueName=f"capture-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    capture_arn = sqs.get_queue_attributes(QueueUrl=capture_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    user = _unique_user("dup")
    sns.subscribe(
        TopicArn=topic_arn,
        Protocol="sqs",
        Endpoint=capture_arn,
        Attributes={"RawMessageDelivery": "true", "FilterPolicy": json.dumps({"userId": [user]})},
    )
    client = client_for(user)
    data = _jpeg(300, 200)
    created = client.create_upload("dup.jpg", "image/jpeg", len(data))
    client.upload(created, data, "dup.jpg")
    first = client.wait_until_done(created["id"], timeout=60)
    assert first["status"] == "completed"

    # Deliver the same S3 notification again, as S3/SQS may.
    key = created["upload"]["fields"]["key"]
    duplicate = {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Post",
                "s3": {"bucket": {"name": "image-service-uploads-local"}, "object": {"key": key}},
            }
        ]
    }
    upload_queue = sqs.get_queue_url(QueueName="image-service-uploads-local")["QueueUrl"]
    for _ in range(2):
        sqs.send_message(QueueUrl=upload_queue, MessageBody=json.dumps(duplicate))
    # Wait until the worker has consumed the duplicates.
    for _ in range(100):
        attributes = sqs.get_queue_attributes(
            QueueUrl=upload_queue,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        if (
            attributes["ApproximateNumberOfMessages"] == "0"
            and attributes["ApproximateNumberOfMessagesNotVisible"] == "0"
        ):
            break
        time.sleep(0.1)
    after = client.status(created["id"])
    assert after["updatedAt"] == first["updatedAt"]
    events = []
    for _ in range(3):
        events += sqs.receive_message(QueueUrl=capture_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        )
    bodies = [json.loads(m["Body"]) for m in events]
    assert [b["type"] for b in bodies] == ["image.completed"]
    assert bodies[0]["image"]["id"] == created["id"]
