"""Webhook deliveries are retried for up to SNS's hour, then kept in a dead-letter queue.

SNS's default HTTP/S policy gives up after 3 retries 20 s apart and drops the message;
each webhook subscription carries its own DeliveryPolicy and a RedrivePolicy to the
stage's webhook DLQ, which provisioning creates (SSE, writable by the topic only).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from chalicelib.services.webhooks import subscription_endpoint
from infra.provision import Clients, Report, StageResources, provision, write_stage_config
from infra.stage_config import CONFIG_PATH, stage_environment
from tests.conftest import LOCAL_ENV
from tests.functional.conftest import Stack

SNS_MAX_HTTP_RETRY_SECONDS = 3600  # SNS refuses an HTTP/S policy whose retries take longer
SNS_DEFAULT_RETRY_SECONDS = 3 * 20


def provision_again() -> Report:
    return provision(StageResources.from_environment("local", dict(os.environ)), Clients.create("us-east-1"))


def webhook_dlq(stack: Stack) -> tuple[str, dict[str, str]]:
    url = stack.sqs.get_queue_url(QueueName=LOCAL_ENV["WEBHOOK_DLQ_NAME"])["QueueUrl"]
    attributes = stack.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return attributes["QueueArn"], attributes


def subscription_arn(stack: Stack, endpoint: str) -> str:
    subscriptions = stack.sns.list_subscriptions_by_topic(TopicArn=stack.topic_arn)["Subscriptions"]
    (arn,) = [s["SubscriptionArn"] for s in subscriptions if s["Endpoint"] == endpoint]
    return str(arn)


def subscription_attributes(stack: Stack, endpoint: str) -> dict[str, str]:
    arn = subscription_arn(stack, endpoint)
    attributes: dict[str, str] = stack.sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]
    return attributes


def retry_phases(policy: dict[str, Any]) -> tuple[int, int, int, int]:
    """(immediate, at the minimum delay, backoff, at the maximum delay) retries."""
    immediate, at_min, at_max = (
        policy.get(k, 0) for k in ("numNoDelayRetries", "numMinDelayRetries", "numMaxDelayRetries")
    )
    return immediate, at_min, policy["numRetries"] - immediate - at_min - at_max, at_max


def worst_case_seconds(policy: dict[str, Any]) -> int:
    """Every backoff retry counted at the maximum delay: SNS's own total cannot be more."""
    _, at_min, backoff, at_max = retry_phases(policy)
    return int(at_min * policy["minDelayTarget"] + (backoff + at_max) * policy["maxDelayTarget"])


def exponential_seconds(policy: dict[str, Any]) -> float:
    """The schedule with the backoff phase growing exponentially from the minimum to the maximum."""
    _, at_min, backoff, at_max = retry_phases(policy)
    low, high = policy["minDelayTarget"], policy["maxDelayTarget"]
    ramp = [low * math.pow(high / low, i / (backoff - 1)) for i in range(backoff)] if backoff > 1 else [high] * backoff
    return float(at_min * low + sum(ramp) + at_max * high)


def test_a_webhook_subscription_retries_for_up_to_an_hour_and_dead_letters_what_it_cannot_deliver(
    api: Any, aws_stack: Stack, auth_for: Any
) -> None:
    url = "http://127.0.0.1:9/hook"
    response = api.http.post("/webhooks", headers=auth_for("alice"), body=json.dumps({"url": url}))
    assert response.status_code == 201

    attributes = subscription_attributes(aws_stack, subscription_endpoint(url, response.json_body["id"]))
    dlq_arn, _ = webhook_dlq(aws_stack)
    assert json.loads(attributes["RedrivePolicy"]) == {"deadLetterTargetArn": dlq_arn}
    assert json.loads(attributes["FilterPolicy"]) == {"userId": ["alice"]}  # still only her events
    policy = json.loads(attributes["DeliveryPolicy"])["healthyRetryPolicy"]
    assert policy["backoffFunction"] == "exponential"
    assert 0 <= policy["numRetries"] <= 100
    assert 1 <= policy["minDelayTarget"] <= policy["maxDelayTarget"] <= SNS_MAX_HTTP_RETRY_SECONDS
    assert all(phase >= 0 for phase in retry_phases(policy))
    # Valid whatever SNS's backoff curve: even at the maximum delay throughout it fits the hour.
    assert worst_case_seconds(policy) <= SNS_MAX_HTTP_RETRY_SECONDS
    # And it keeps trying for most of that hour, far beyond SNS's default minute.
    assert exponential_seconds(policy) >= 40 * 60 > 10 * SNS_DEFAULT_RETRY_SECONDS
    immediate = retry_phases(policy)[0]
    assert immediate >= 1 and policy["minDelayTarget"] <= 20  # a blip is retried at once, then soon


def test_the_webhook_dlq_is_encrypted_and_writable_by_the_events_topic_only(aws_stack: Stack) -> None:
    dlq_arn, attributes = webhook_dlq(aws_stack)

    assert attributes["SqsManagedSseEnabled"] == "true"  # SSE-SQS: SNS needs no KMS key grant
    assert int(attributes["MessageRetentionPeriod"]) == 14 * 24 * 3600
    (statement,) = json.loads(attributes["Policy"])["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"Service": "sns.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Resource"] == dlq_arn
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": aws_stack.topic_arn}}


def test_provisioning_gives_existing_webhook_subscriptions_the_policies_once(aws_stack: Stack) -> None:
    """Webhooks subscribed before the policies existed get them from the next provisioning."""
    endpoint = "https://hooks.example.com/old?token=s3cret"
    aws_stack.sns.subscribe(
        TopicArn=aws_stack.topic_arn,
        Protocol="https",
        Endpoint=endpoint,
        Attributes={"FilterPolicy": json.dumps({"userId": ["bob"]}), "FilterPolicyScope": "MessageAttributes"},
    )
    queue_arn = aws_stack.sqs.get_queue_attributes(QueueUrl=aws_stack.queue_url, AttributeNames=["QueueArn"])
    aws_stack.sns.subscribe(  # not a webhook: left alone
        TopicArn=aws_stack.topic_arn, Protocol="sqs", Endpoint=queue_arn["Attributes"]["QueueArn"]
    )

    first = provision_again()
    second = provision_again()

    attributes = subscription_attributes(aws_stack, endpoint)
    dlq_arn, _ = webhook_dlq(aws_stack)
    assert json.loads(attributes["RedrivePolicy"]) == {"deadLetterTargetArn": dlq_arn}
    assert "healthyRetryPolicy" in json.loads(attributes["DeliveryPolicy"])
    assert json.loads(attributes["FilterPolicy"]) == {"userId": ["bob"]}
    assert [c for c in first.changes if c.startswith("subscription ")] == [
        f"subscription {subscription_arn(aws_stack, endpoint)}: DeliveryPolicy, RedrivePolicy set"
    ]
    assert not any("s3cret" in change for change in first.changes)  # endpoints are not printed
    assert [c for c in second.changes if c.startswith(("subscription ", "queue "))] == []
    sqs_subscription = subscription_attributes(aws_stack, queue_arn["Attributes"]["QueueArn"])
    assert "RedrivePolicy" not in sqs_subscription


def test_an_aws_stage_gets_its_webhook_dlq_and_its_name_in_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    config = tmp_path / "config.json"
    config.write_text(CONFIG_PATH.read_text())
    with mock_aws():
        resources = StageResources.from_environment("prod", stage_environment("prod"))
        clients = Clients.create("us-east-1")
        report = provision(resources, clients)
        url = clients.sqs.get_queue_url(QueueName="image-service-webhooks-prod-dlq")["QueueUrl"]
        attributes = clients.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]

    assert "queue image-service-webhooks-prod-dlq created" in report.changes
    assert attributes["SqsManagedSseEnabled"] == "true"
    assert report.outputs["WEBHOOK_DLQ_NAME"] == "image-service-webhooks-prod-dlq"
    write_stage_config("prod", report.outputs, config)
    environment = json.loads(config.read_text())["stages"]["prod"]["environment_variables"]
    assert environment["WEBHOOK_DLQ_NAME"] == "image-service-webhooks-prod-dlq"
    assert stage_environment("prod")["WEBHOOK_DLQ_NAME"] == "image-service-webhooks-prod-dlq"  # committed
