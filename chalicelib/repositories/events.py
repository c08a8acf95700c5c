"""SNS adapter: publishes image events with the attributes subscribers filter on."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib.models.responses import ImageEvent
from chalicelib.repositories.dynamo import translated_errors

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient


class EventPublisher:
    def __init__(self, client: SNSClient, topic_arn: str) -> None:
        self._client = client
        self._topic_arn = topic_arn

    def publish(self, event: ImageEvent) -> None:
        with translated_errors():
            self._client.publish(
                TopicArn=self._topic_arn,
                Message=event.model_dump_json(by_alias=True),
                MessageAttributes={
                    "eventType": {"DataType": "String", "StringValue": event.type},
                    "userId": {"DataType": "String", "StringValue": event.image.user_id},
                },
            )
