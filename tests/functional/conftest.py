"""Functional tests: moto in-process, the same provisioning code as the stages, and
``chalice.test.Client``. The environment is set before ``app`` is imported."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra.stage_config import FAKE_AWS_ENVIRONMENT
from local_stack.moto_sns import match_sns_subscribe
from tests.conftest import LOCAL_ENV, PROJECT_ROOT
from tests.functional.support import EventCapture, Uploader


@dataclass
class Stack:
    """Handles on the mocked stage's resources."""

    s3: Any
    sqs: Any
    dynamodb: Any
    sns: Any
    queue_url: str
    upload_bucket: str
    image_bucket: str
    table_name: str
    topic_arn: str


@pytest.fixture
def aws_stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    for name, value in {**FAKE_AWS_ENVIRONMENT, **LOCAL_ENV}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    from chalicelib import dependencies
    from infra.provision import Clients, StageResources, provision

    match_sns_subscribe()  # SNS's answer to a Subscribe naming an existing subscription
    with mock_aws():
        dependencies.reset()
        resources = StageResources.from_environment("local", dict(os.environ))
        report = provision(resources, Clients.create("us-east-1"))
        sqs = boto3.client("sqs", region_name="us-east-1")
        yield Stack(
            s3=boto3.client("s3", region_name="us-east-1"),
            sqs=sqs,
            dynamodb=boto3.client("dynamodb", region_name="us-east-1"),
            sns=boto3.client("sns", region_name="us-east-1"),
            queue_url=sqs.get_queue_url(QueueName=resources.queue_name)["QueueUrl"],
            upload_bucket=resources.upload_bucket,
            image_bucket=resources.image_bucket,
            table_name=resources.table_name,
            topic_arn=report.outputs["EVENTS_TOPIC_ARN"],
        )
        dependencies.reset()


@pytest.fixture
def api(aws_stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``chalice.test.Client`` over the app, with the local stage's configuration."""
    import chalice.test
    from chalice.local import LambdaContext
    from chalice.test import Client

    from app import app

    # chalice.test gives every invocation a context with 3 s left; Lambda gives the
    # function's timeout, which the processor reads to decide which records to start.
    config = json.loads((PROJECT_ROOT / ".chalice" / "config.json").read_text())
    timeout_ms = config["lambda_functions"]["handle_upload_events"]["lambda_timeout"] * 1000
    monkeypatch.setattr(chalice.test, "LambdaContext", functools.partial(LambdaContext, max_runtime_ms=timeout_ms))

    with Client(app, stage_name="local", project_dir=str(PROJECT_ROOT)) as client:
        yield client


# -- added for the upload pipeline tests (the fixtures above are unchanged) -------------


@pytest.fixture
def sns_events(aws_stack: Stack) -> EventCapture:
    """Every event the service publishes, captured by an SQS queue subscribed to the topic
    with raw message delivery (so the SNS message attributes arrive as SQS attributes)."""
    queue_url = aws_stack.sqs.create_queue(QueueName="captured-image-events")["QueueUrl"]
    queue_arn = aws_stack.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    aws_stack.sns.subscribe(
        TopicArn=aws_stack.topic_arn,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={"RawMessageDelivery": "true"},
    )
    return EventCapture(sqs=aws_stack.sqs, queue_url=queue_url)


@pytest.fixture
def uploader(api: Any, aws_stack: Stack, auth_for: Callable[[str], dict[str, str]]) -> Uploader:
    """Creates images through the API, uploads bytes to their keys and runs the processor."""
    return Uploader(api=api, stack=aws_stack, auth_for=auth_for)
