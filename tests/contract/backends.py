"""The two implementations of the service's adapters, behind one test-side interface.

``FakeBackend`` holds the in-memory fakes of ``tests/unit/fakes.py``; ``MotoBackend`` the
real adapters of ``chalicelib/repositories`` on an in-process moto stage provisioned by
the stages' own code. The contract suite (``tests/contract``) runs every case on both, and
the stateful test (``tests/reliability/test_stateful.py``) drives the real services on
both, so a behaviour the fakes have and AWS (as moto has it) has not fails a test.

Besides the adapters, a backend answers what a test needs to see of the world that no
adapter method reads: every image record in the table, the objects in the buckets, the
messages the upload queue and the events topic received, the SNS subscriptions.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.models.domain import ImageRecord
from chalicelib.models.responses import ImageEvent
from chalicelib.repositories.duplicates import DuplicateIndex
from chalicelib.repositories.events import EventPublisher
from chalicelib.repositories.images import ImageQueries, ImageRepository, item_to_record, record_to_item
from chalicelib.repositories.queue import RESUBMITTED, UploadQueue
from chalicelib.repositories.storage import PROCESSED, STATE_TAG, UNPROCESSED, ObjectStore
from chalicelib.repositories.webhooks import SubscriptionGateway, WebhookRepository
from chalicelib.services.processing import UploadedObject, parse_notification
from chalicelib.settings import Settings
from tests.unit.fakes import (
    FakeDuplicateIndex,
    FakeImageQueries,
    FakeImageRepository,
    FakeObjectStore,
    FakePublisher,
    FakeSubscriptionGateway,
    FakeUploadQueue,
    FakeWebhookRepository,
    unit_settings,
)

BACKENDS = ("fake", "moto")
# PutObject takes tags as a query string; the upload form pins the same tag.
UNPROCESSED_TAGGING_QUERY = f"{STATE_TAG}={UNPROCESSED}"


class Backend(ABC):
    """The adapters the services take, and a view of the state behind them."""

    name: str
    settings: Settings
    images: ImageRepository
    queries: ImageQueries
    duplicates: DuplicateIndex
    store: ObjectStore
    queue: UploadQueue
    publisher: EventPublisher
    webhooks: WebhookRepository
    subscriptions: SubscriptionGateway

    @abstractmethod
    def reset(self) -> None:
        """Forget everything: an empty table, empty buckets and queues, no subscriptions."""

    @abstractmethod
    def seed(self, record: ImageRecord) -> None:
        """Store a record as it is (test setup), with the index keys its item would have."""

    @abstractmethod
    def image_records(self) -> dict[str, ImageRecord]:
        """Every image record in the table, tombstones included."""

    @abstractmethod
    def put_upload(self, key: str, data: bytes) -> None:
        """A client's upload arriving at ``key`` (tagged unprocessed, as the form pins)."""

    @abstractmethod
    def upload_keys(self) -> set[str]: ...

    @abstractmethod
    def image_keys(self) -> set[str]: ...

    @abstractmethod
    def read_image(self, key: str) -> bytes | None: ...

    @abstractmethod
    def is_processed(self, key: str) -> bool:
        """The upload at ``key`` exists and is tagged processed."""

    @abstractmethod
    def resubmitted(self) -> list[UploadedObject]:
        """What the sweep handed back to the upload queue since the last call, as the
        processor will read it."""

    @abstractmethod
    def delivered_events(self) -> list[ImageEvent]:
        """The events subscribers of the topic received since the last call."""

    @abstractmethod
    def subscription_owners(self) -> dict[str, str]:
        """Each subscription's endpoint and the user its filter policy lets through."""

    @abstractmethod
    def drop_subscription(self, subscription_arn: str) -> None:
        """Remove a subscription behind the service's back (the subscriber unsubscribed)."""


class FakeBackend(Backend):
    name = "fake"

    def __init__(self) -> None:
        self.settings = unit_settings()
        self.reset()

    def reset(self) -> None:
        self.fake_images = FakeImageRepository()
        self.fake_store = FakeObjectStore()
        self.fake_queue = FakeUploadQueue()
        self.fake_publisher = FakePublisher()
        self.fake_subscriptions = FakeSubscriptionGateway()
        self.images = self.fake_images
        self.queries = FakeImageQueries(self.fake_images)
        self.duplicates = FakeDuplicateIndex(self.fake_images)
        self.store = self.fake_store
        self.queue = self.fake_queue
        self.publisher = self.fake_publisher
        self.webhooks = FakeWebhookRepository()
        self.subscriptions = self.fake_subscriptions
        self._seen_resubmits = 0
        self._seen_events = 0

    def seed(self, record: ImageRecord) -> None:
        self.fake_images.put(record)

    def image_records(self) -> dict[str, ImageRecord]:
        return dict(self.fake_images.records)

    def put_upload(self, key: str, data: bytes) -> None:
        self.fake_store.uploads[key] = data
        self.fake_store.processed.discard(key)

    def upload_keys(self) -> set[str]:
        return set(self.fake_store.uploads)

    def image_keys(self) -> set[str]:
        return set(self.fake_store.images)

    def read_image(self, key: str) -> bytes | None:
        return self.fake_store.images.get(key)

    def is_processed(self, key: str) -> bool:
        return key in self.fake_store.uploads and key in self.fake_store.processed

    def resubmitted(self) -> list[UploadedObject]:
        new = self.fake_queue.resubmitted[self._seen_resubmits :]
        self._seen_resubmits += len(new)
        return [UploadedObject(bucket, key) for bucket, key in new]

    def delivered_events(self) -> list[ImageEvent]:
        new = self.fake_publisher.published[self._seen_events :]
        self._seen_events += len(new)
        return list(new)

    def subscription_owners(self) -> dict[str, str]:
        return self.fake_subscriptions.owners_by_endpoint()

    def drop_subscription(self, subscription_arn: str) -> None:
        self.fake_subscriptions.subscriptions.pop(subscription_arn, None)


@dataclass
class MotoStage:
    """A stage provisioned on in-process moto, and clients on it."""

    dynamodb: Any
    s3: Any
    sqs: Any
    sns: Any
    table_name: str
    upload_bucket: str
    image_bucket: str
    queue_name: str
    queue_url: str
    topic_arn: str
    capture_url: str  # a queue subscribed to the topic with raw delivery: what subscribers get


@contextmanager
def moto_stage() -> Iterator[MotoStage]:
    """The local stage's resources on moto, made by the provisioning code the stages use
    (as ``tests/functional/conftest.py``'s ``aws_stack``), for as long as the block runs."""
    from infra.provision import Clients, StageResources, provision
    from infra.stage_config import FAKE_AWS_ENVIRONMENT
    from local_stack.moto_sns import match_sns_subscribe
    from tests.conftest import LOCAL_ENV

    with pytest.MonkeyPatch.context() as patch:
        for name, value in {**FAKE_AWS_ENVIRONMENT, **LOCAL_ENV}.items():
            patch.setenv(name, value)
        patch.delenv("AWS_ENDPOINT_URL", raising=False)
        patch.delenv("AWS_PROFILE", raising=False)
        match_sns_subscribe()  # SNS's answer to a Subscribe naming an existing subscription
        with mock_aws():
            resources = StageResources.from_environment("local", dict(os.environ))
            report = provision(resources, Clients.create("us-east-1"))
            sqs, sns = boto3.client("sqs", region_name="us-east-1"), boto3.client("sns", region_name="us-east-1")
            topic_arn = report.outputs["EVENTS_TOPIC_ARN"]
            capture_url = sqs.create_queue(QueueName="contract-captured-events")["QueueUrl"]
            capture_arn = sqs.get_queue_attributes(QueueUrl=capture_url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            sns.subscribe(
                TopicArn=topic_arn, Protocol="sqs", Endpoint=capture_arn, Attributes={"RawMessageDelivery": "true"}
            )
            yield MotoStage(
                dynamodb=boto3.client("dynamodb", region_name="us-east-1"),
                s3=boto3.client("s3", region_name="us-east-1"),
                sqs=sqs,
                sns=sns,
                table_name=resources.table_name,
                upload_bucket=resources.upload_bucket,
                image_bucket=resources.image_bucket,
                queue_name=resources.queue_name,
                queue_url=sqs.get_queue_url(QueueName=resources.queue_name)["QueueUrl"],
                topic_arn=topic_arn,
                capture_url=capture_url,
            )


def _receive_all(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Every message now visible on a queue (each received once, then deleted)."""
    messages: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
        "Messages", []
    ):
        messages.extend(batch)
        entries = [{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(batch)]
        sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries)
    return messages


class MotoBackend(Backend):
    name = "moto"

    def __init__(self, stage: MotoStage) -> None:
        self.stage = stage
        self.settings = unit_settings(upload_bucket=stage.upload_bucket, image_bucket=stage.image_bucket)
        self.images = ImageRepository(stage.dynamodb, stage.table_name)
        self.queries = ImageQueries(stage.dynamodb, stage.table_name)
        self.duplicates = DuplicateIndex(stage.dynamodb, stage.table_name)
        self.store = ObjectStore(stage.s3, stage.s3, stage.upload_bucket, stage.image_bucket)
        self.queue = UploadQueue(stage.sqs, stage.queue_name)
        self.publisher = EventPublisher(stage.sns, stage.topic_arn)
        self.webhooks = WebhookRepository(stage.dynamodb, stage.table_name)
        self.subscriptions = SubscriptionGateway(stage.sns, stage.topic_arn)

    def reset(self) -> None:
        stage = self.stage
        for page in stage.dynamodb.get_paginator("scan").paginate(
            TableName=stage.table_name, ProjectionExpression="PK, SK"
        ):
            items = page.get("Items", [])
            for start in range(0, len(items), 25):
                stage.dynamodb.batch_write_item(
                    RequestItems={
                        stage.table_name: [{"DeleteRequest": {"Key": item}} for item in items[start : start + 25]]
                    }
                )
        for bucket in (stage.upload_bucket, stage.image_bucket):
            for page in stage.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                objects = [{"Key": entry["Key"]} for entry in page.get("Contents", [])]
                if objects:
                    stage.s3.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
        for url in (stage.queue_url, stage.capture_url):
            _receive_all(stage.sqs, url)
        for subscription in stage.sns.list_subscriptions_by_topic(TopicArn=stage.topic_arn)["Subscriptions"]:
            if subscription["Protocol"] != "sqs":  # the capture queue stays
                stage.sns.unsubscribe(SubscriptionArn=subscription["SubscriptionArn"])

    def seed(self, record: ImageRecord) -> None:
        self.stage.dynamodb.put_item(TableName=self.stage.table_name, Item=record_to_item(record))

    def image_records(self) -> dict[str, ImageRecord]:
        records: dict[str, ImageRecord] = {}
        for page in self.stage.dynamodb.get_paginator("scan").paginate(
            TableName=self.stage.table_name, ConsistentRead=True
        ):
            for item in page.get("Items", []):
                if item["PK"]["S"].startswith("IMAGE#"):
                    record = item_to_record(item)
                    records[record.id] = record
        return records

    def put_upload(self, key: str, data: bytes) -> None:
        self.stage.s3.put_object(Bucket=self.stage.upload_bucket, Key=key, Body=data, Tagging=UNPROCESSED_TAGGING_QUERY)

    def _keys(self, bucket: str) -> set[str]:
        keys: set[str] = set()
        for page in self.stage.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            keys.update(entry["Key"] for entry in page.get("Contents", []))
        return keys

    def upload_keys(self) -> set[str]:
        return self._keys(self.stage.upload_bucket)

    def image_keys(self) -> set[str]:
        return self._keys(self.stage.image_bucket)

    def read_image(self, key: str) -> bytes | None:
        try:
            body: bytes = self.stage.s3.get_object(Bucket=self.stage.image_bucket, Key=key)["Body"].read()
        except self.stage.s3.exceptions.NoSuchKey:
            return None
        return body

    def is_processed(self, key: str) -> bool:
        try:
            tags = self.stage.s3.get_object_tagging(Bucket=self.stage.upload_bucket, Key=key)["TagSet"]
        except self.stage.s3.exceptions.NoSuchKey:
            return False
        return {tag["Key"]: tag["Value"] for tag in tags}.get(STATE_TAG) == PROCESSED

    def resubmitted(self) -> list[UploadedObject]:
        objects: list[UploadedObject] = []
        for message in _receive_all(self.stage.sqs, self.stage.queue_url):
            body = json.loads(message["Body"])
            # S3's own notifications of the uploads share the queue; keep the sweep's.
            if [record.get("eventName") for record in body.get("Records", [])] == [RESUBMITTED]:
                objects += parse_notification(message["Body"])
        return objects

    def delivered_events(self) -> list[ImageEvent]:
        messages = _receive_all(self.stage.sqs, self.stage.capture_url)
        return [ImageEvent.model_validate_json(message["Body"]) for message in messages]

    def subscription_owners(self) -> dict[str, str]:
        owners: dict[str, str] = {}
        for subscription in self.stage.sns.list_subscriptions_by_topic(TopicArn=self.stage.topic_arn)["Subscriptions"]:
            if subscription["Protocol"] == "sqs":
                continue
            attributes = self.stage.sns.get_subscription_attributes(SubscriptionArn=subscription["SubscriptionArn"])
            [owner] = json.loads(attributes["Attributes"]["FilterPolicy"])["userId"]
            owners[subscription["Endpoint"]] = owner
        return owners

    def drop_subscription(self, subscription_arn: str) -> None:
        self.stage.sns.unsubscribe(SubscriptionArn=subscription_arn)
