"""Each webhook record owns its SNS subscription: two users (or two records) with one URL
never share one, a DELETE removes only its own, and a subscription removed behind the
service's back leaves GET /webhooks. On moto, with SNS's rule for a Subscribe that names
an existing subscription (``scripts/moto_sns.py``)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.functional.conftest import Stack

URL = "http://127.0.0.1:9/hook"


def _subscribe(stack: Stack, user_id: str, **extra: str) -> str:
    attributes = {"FilterPolicy": json.dumps({"userId": [user_id]}), **extra}
    response = stack.sns.subscribe(
        TopicArn=stack.topic_arn, Protocol="http", Endpoint=URL, Attributes=attributes, ReturnSubscriptionArn=True
    )
    return str(response["SubscriptionArn"])


def test_moto_answers_a_subscribe_naming_an_existing_subscription_as_sns_does(aws_stack: Stack) -> None:
    first = _subscribe(aws_stack, "alice")
    # The same attributes (or none, or a subset): the existing subscription, unchanged.
    assert _subscribe(aws_stack, "alice") == first
    assert _subscribe(aws_stack, "alice", FilterPolicyScope="MessageAttributes") == first
    none = aws_stack.sns.subscribe(
        TopicArn=aws_stack.topic_arn, Protocol="http", Endpoint=URL, ReturnSubscriptionArn=True
    )
    assert none["SubscriptionArn"] == first
    # Different attributes: refused, and the existing subscription keeps its own.
    with pytest.raises(ClientError) as refused:
        _subscribe(aws_stack, "bob")
    error: Any = refused.value.response["Error"]
    assert error["Code"] == "InvalidParameter"
    assert "Subscription already exists with different attributes" in error["Message"]
    attributes = aws_stack.sns.get_subscription_attributes(SubscriptionArn=first)["Attributes"]
    assert json.loads(attributes["FilterPolicy"]) == {"userId": ["alice"]}


def test_the_moto_patch_refuses_a_moto_it_was_not_written_for(monkeypatch: pytest.MonkeyPatch) -> None:
    import moto

    from scripts.moto_sns import MOTO_VERSION, match_sns_subscribe

    assert moto.__version__ == MOTO_VERSION
    monkeypatch.setattr(moto, "__version__", "5.3.0")
    with pytest.raises(RuntimeError, match=r"moto 5\.2\.5.*moto 5\.3\.0 is installed"):
        match_sns_subscribe()
