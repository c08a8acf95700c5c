"""Helpers for the functional tests: small generated images, the upload queue, events."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

from boto3.dynamodb.types import TypeDeserializer
from PIL import Image

from tests.conftest import LOCAL_ENV

UPLOAD_QUEUE_NAME = LOCAL_ENV["UPLOAD_QUEUE_NAME"]
HANDLER = "handle_upload_events"
LEAK_WORDS = ("Traceback", "botocore", "boto3", "ClientError", "pydantic", "chalicelib", 'File "', "Exception")

_deserializer = TypeDeserializer()


def image_bytes(width: int = 320, height: int = 200, fmt: str = "JPEG", colour: str = "teal") -> bytes:
    """A small generated image (gradient, so the encoder has something to do)."""
    mode = "RGBA" if fmt == "PNG" else "RGB"
    image = Image.new(mode, (width, height), colour)
    for x in range(0, width, max(1, width // 16)):
        image.paste((x * 255 // max(1, width), 80, 160), (x, 0, min(width, x + 4), height))
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def create_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"filename": "castle.jpg", "contentType": "image/jpeg", "size": 2_480_133}
    body.update(overrides)
    return body


def post_image(api: Any, headers: dict[str, str], **overrides: Any) -> Any:
    return api.http.post("/images", headers=headers, body=json.dumps(create_body(**overrides)))


def decode_policy(policy: str) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(base64.b64decode(policy))
    return decoded


def plain_item(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _deserializer.deserialize(value) for name, value in item.items()}


def image_item(stack: Any, image_id: str) -> dict[str, Any] | None:
    response = stack.dynamodb.get_item(
        TableName=stack.table_name,
        Key={"PK": {"S": f"IMAGE#{image_id}"}, "SK": {"S": "METADATA"}},
        ConsistentRead=True,
    )
    item = response.get("Item")
    return plain_item(item) if item else None


def user_image_items(stack: Any, user_id: str) -> list[dict[str, Any]]:
    """The user's images through GSI1 (as a listing would find them)."""
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {
        "TableName": stack.table_name,
        "IndexName": "GSI1",
        "KeyConditionExpression": "GSI1PK = :pk",
        "ExpressionAttributeValues": {":pk": {"S": f"USER#{user_id}"}},
    }
    while True:
        page = stack.dynamodb.query(**kwargs)
        items.extend(plain_item(i) for i in page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def receive_all(sqs: Any, queue_url: str, attributes: bool = False) -> list[dict[str, Any]]:
    """Every message now visible on a queue (each received once, then deleted)."""
    messages: list[dict[str, Any]] = []
    while True:
        extra: dict[str, Any] = {"MessageAttributeNames": ["All"]} if attributes else {}
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0, **extra)
        received = batch.get("Messages", [])
        if not received:
            return messages
        messages.extend(received)
        for message in received:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def is_test_event(body: str) -> bool:
    return bool(json.loads(body).get("Event") == "s3:TestEvent")


def upload_notifications(stack: Any) -> list[str]:
    """Bodies of the S3 ObjectCreated notifications waiting on the real upload queue."""
    return [m["Body"] for m in receive_all(stack.sqs, stack.queue_url) if not is_test_event(m["Body"])]


def deliver(api: Any, bodies: list[str]) -> Any:
    """Invoke the processor Lambda with an SQS batch of ``bodies``."""
    event = api.events.generate_sqs_event(message_bodies=bodies, queue_name=UPLOAD_QUEUE_NAME)
    return api.lambda_.invoke(HANDLER, event).payload


def s3_event_body(bucket: str, key: str, size: int, event_name: str = "ObjectCreated:Post") -> str:
    """An S3 notification written by hand, with the key URL-encoded as S3 does."""
    return json.dumps(
        {
            "Records": [
                {
                    "eventVersion": "2.1",
                    "eventSource": "aws:s3",
                    "awsRegion": "us-east-1",
                    "eventTime": "2026-01-01T00:00:00.000Z",
                    "eventName": event_name,
                    "s3": {
                        "s3SchemaVersion": "1.0",
                        "configurationId": "upload-created",
                        "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                        "object": {"key": quote_plus(key, safe="/"), "size": size, "eTag": "0" * 32},
                    },
                }
            ]
        }
    )


@dataclass(frozen=True)
class CapturedEvent:
    body: dict[str, Any]
    attributes: dict[str, str]


@dataclass
class EventCapture:
    """An SQS queue subscribed to the events topic with raw message delivery."""

    sqs: Any
    queue_url: str

    def drain(self) -> list[CapturedEvent]:
        return [
            CapturedEvent(
                body=json.loads(m["Body"]),
                attributes={k: v["StringValue"] for k, v in m.get("MessageAttributes", {}).items()},
            )
            for m in receive_all(self.sqs, self.queue_url, attributes=True)
        ]


@dataclass
class Uploader:
    """Creates an image through the API, puts bytes at its upload key, and processes it."""

    api: Any
    stack: Any
    auth_for: Callable[[str], dict[str, str]]

    def create(self, user_id: str = "alice", **overrides: Any) -> dict[str, Any]:
        response = post_image(self.api, self.auth_for(user_id), **overrides)
        assert response.status_code == 201, response.body
        created: dict[str, Any] = response.json_body
        return created

    def put(self, created: dict[str, Any], data: bytes) -> list[str]:
        """Upload like the browser would (to the signed key) and return the notifications."""
        self.stack.s3.put_object(
            Bucket=self.stack.upload_bucket,
            Key=created["upload"]["fields"]["key"],
            Body=data,
            ContentType=created["upload"]["fields"]["Content-Type"],
        )
        return upload_notifications(self.stack)

    def process(
        self, data: bytes, user_id: str = "alice", declared_size: int | None = None, **overrides: Any
    ) -> tuple[str, list[str]]:
        created = self.create(user_id, size=declared_size or len(data), **overrides)
        bodies = self.put(created, data)
        deliver(self.api, bodies)
        return created["id"], bodies

    def status(self, image_id: str, user_id: str = "alice") -> dict[str, Any]:
        response = self.api.http.get(f"/images/{image_id}/status", headers=self.auth_for(user_id))
        assert response.status_code == 200, response.body
        status: dict[str, Any] = response.json_body
        return status

    def get(self, image_id: str, user_id: str = "alice") -> dict[str, Any]:
        response = self.api.http.get(f"/images/{image_id}", headers=self.auth_for(user_id))
        assert response.status_code == 200, response.body
        image: dict[str, Any] = response.json_body
        return image

    def delete(self, image_id: str, user_id: str = "alice") -> None:
        response = self.api.http.delete(f"/images/{image_id}", headers=self.auth_for(user_id))
        assert response.status_code == 204, response.body

    def image_keys(self, prefix: str = "images/") -> set[str]:
        """Every object key of the image bucket under ``prefix``."""
        pages = self.stack.s3.get_paginator("list_objects_v2").paginate(Bucket=self.stack.image_bucket, Prefix=prefix)
        return {item["Key"] for page in pages for item in page.get("Contents", [])}

    def image_head(self, key: str) -> dict[str, Any]:
        head: dict[str, Any] = self.stack.s3.head_object(Bucket=self.stack.image_bucket, Key=key)
        return head

    def image_object(self, key: str) -> bytes | None:
        try:
            body: bytes = self.stack.s3.get_object(Bucket=self.stack.image_bucket, Key=key)["Body"].read()
        except self.stack.s3.exceptions.NoSuchKey:
            return None
        return body


def error_of(response: Any, status: int, code: str) -> dict[str, Any]:
    """Check an API.md error response and return its ``error`` object."""
    assert response.status_code == status, (response.status_code, response.body)
    assert response.headers["Content-Type"].startswith("application/json")
    text = response.body.decode() if isinstance(response.body, bytes) else str(response.body)
    leaked = [word for word in LEAK_WORDS if word in text]
    assert not leaked, (leaked, text)
    body = response.json_body
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"].strip()
    assert isinstance(error["requestId"], str) and error["requestId"]
    assert response.headers.get("X-Request-Id") == error["requestId"]  # docs/api.md
    if status == 401:
        assert response.headers.get("WWW-Authenticate", "").startswith("Bearer")
    assert set(error) <= {"code", "message", "requestId", "details"}, error
    for detail in error.get("details", []):
        assert set(detail) == {"field", "message"}, detail
        assert detail["field"] and detail["message"]
    return error


def fields_named(error: dict[str, Any]) -> set[str]:
    """The top-level request fields named by a validation error's details."""
    return {str(d["field"]).split(".")[0] for d in error.get("details", [])}
