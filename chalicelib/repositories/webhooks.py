"""Webhook records (DynamoDB) and their SNS subscriptions.

The records' keys (the webhook's, and the user index under a prefix of its own so image
listings never see webhooks) are ``chalicelib.repositories.keys``'s.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from pydantic.alias_generators import to_camel, to_snake

from chalicelib.models.domain import WebhookRecord
from chalicelib.repositories.dynamo import error_code, from_item, get_consistent, to_item, to_value, translated_errors
from chalicelib.repositories.keys import KEY_ATTRIBUTES, USER_INDEX, webhook_key, webhook_keys, webhooks_partition

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sns import SNSClient

# How SNS retries a webhook (docs/notifications.md). SNS's default for HTTP/S is 3 retries
# 20 s apart, after which the message is dropped. This one: 1 immediate retry, 1 after
# 20 s, 3 backing off exponentially from 20 s to 300 s, then 8 every 300 s: ~47 minutes
# of retries. SNS refuses a policy whose retries take more than 3,600 s; even counting
# every backoff retry at 300 s this one takes 3,320 s. After it, SNS moves the message
# to the webhook dead-letter queue (RedrivePolicy).
WEBHOOK_DELIVERY_POLICY: dict[str, Any] = {
    "healthyRetryPolicy": {
        "minDelayTarget": 20,
        "maxDelayTarget": 300,
        "numRetries": 13,
        "numNoDelayRetries": 1,
        "numMinDelayRetries": 1,
        "numMaxDelayRetries": 8,
        "backoffFunction": "exponential",
    }
}
WEBHOOK_PROTOCOLS = frozenset({"http", "https"})


def queue_arn_beside(topic_arn: str, queue_name: str) -> str:
    """The ARN of the SQS queue ``queue_name`` in the topic's account and region (an SNS
    dead-letter queue must be in both)."""
    _, partition, _, region, account, _ = topic_arn.split(":", 5)
    return f"arn:{partition}:sqs:{region}:{account}:{queue_name}"


def delivery_attributes(dead_letter_queue_arn: str | None) -> dict[str, str]:
    """The retry and dead-letter attributes of a webhook subscription."""
    attributes = {"DeliveryPolicy": json.dumps(WEBHOOK_DELIVERY_POLICY)}
    if dead_letter_queue_arn:
        attributes["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": dead_letter_queue_arn})
    return attributes


class WebhookRepository:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def add(self, record: WebhookRecord) -> None:
        values: dict[str, Any] = {to_camel(k): v for k, v in record.model_dump().items()}
        values.update(webhook_keys(record.id, record.user_id, record.created_at))
        with translated_errors():
            self._client.put_item(
                TableName=self._table, Item=to_item(values), ConditionExpression="attribute_not_exists(PK)"
            )

    def list_for_user(self, user_id: str, limit: int) -> list[WebhookRecord]:
        with translated_errors():
            response = self._client.query(
                TableName=self._table,
                IndexName=USER_INDEX,
                KeyConditionExpression="GSI1PK = :pk",
                ExpressionAttributeValues={":pk": to_value(webhooks_partition(user_id))},
                Limit=limit,
            )
        return [self._record(item) for item in response.get("Items", [])]

    def get(self, webhook_id: str) -> WebhookRecord | None:
        item = get_consistent(self._client, self._table, webhook_key(webhook_id))
        return self._record(item) if item else None

    def remove(self, webhook_id: str) -> None:
        with translated_errors():
            self._client.delete_item(TableName=self._table, Key=webhook_key(webhook_id))

    @staticmethod
    def _record(item: Any) -> WebhookRecord:
        values = {to_snake(k): v for k, v in from_item(item).items() if k not in KEY_ATTRIBUTES}
        return WebhookRecord.model_validate(values)


class SubscriptionState(StrEnum):
    CONFIRMED = "confirmed"
    PENDING = "pending_confirmation"
    GONE = "gone"  # SNS has no such subscription (unsubscribed, or dropped unconfirmed)


class SubscribeRefused(Exception):
    """SNS refused a Subscribe for a reason a retry will not fix (SNS's error code and message)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code)
        self.code = code
        self.message = message


class SubscriptionGateway:
    """SNS subscriptions of the events topic, each filtered to one user's events, retried
    by ``WEBHOOK_DELIVERY_POLICY`` and dead-lettered to ``dead_letter_queue`` (a queue name
    in the topic's account and region; empty: none).

    SNS identifies a subscription by topic, protocol and endpoint: the caller gives each
    webhook an endpoint of its own (``subscription_endpoint``), so no two share one.
    """

    def __init__(self, client: SNSClient, topic_arn: str, dead_letter_queue: str = "") -> None:
        self._client = client
        self._topic_arn = topic_arn
        self._dead_letter_queue_arn = queue_arn_beside(topic_arn, dead_letter_queue) if dead_letter_queue else None

    def subscribe(self, endpoint: str, user_id: str) -> str:
        """The ARN of the subscription of ``endpoint`` to ``user_id``'s events. Raises
        ``SubscribeRefused`` for SNS's non-transient refusals (``TransientFailure`` else)."""
        protocol = endpoint.split(":", 1)[0].lower()
        try:
            with translated_errors():
                response = self._client.subscribe(
                    TopicArn=self._topic_arn,
                    Protocol=protocol,
                    Endpoint=endpoint,
                    # Set in the Subscribe call itself (sns:Subscribe; no SetSubscriptionAttributes).
                    Attributes={
                        # The filter is what keeps one user's events from another user's endpoint.
                        "FilterPolicy": json.dumps({"userId": [user_id]}),
                        "FilterPolicyScope": "MessageAttributes",
                        **delivery_attributes(self._dead_letter_queue_arn),
                    },
                    ReturnSubscriptionArn=True,
                )
        except ClientError as exc:
            raise SubscribeRefused(error_code(exc), str(exc.response.get("Error", {}).get("Message", ""))) from exc
        return str(response["SubscriptionArn"])

    def state(self, subscription_arn: str) -> SubscriptionState:
        try:
            with translated_errors():
                attributes = self._client.get_subscription_attributes(SubscriptionArn=subscription_arn)["Attributes"]
        except ClientError as exc:
            if error_code(exc) == "NotFound":
                return SubscriptionState.GONE
            raise
        pending = str(attributes.get("PendingConfirmation", "true")).lower() != "false"
        return SubscriptionState.PENDING if pending else SubscriptionState.CONFIRMED

    def unsubscribe(self, subscription_arn: str) -> None:
        try:
            with translated_errors():
                self._client.unsubscribe(SubscriptionArn=subscription_arn)
        except ClientError as exc:
            # Gone already, or still pending confirmation (SNS drops those after 3 days).
            if error_code(exc) not in ("NotFound", "InvalidParameter"):
                raise
