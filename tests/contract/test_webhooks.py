"""``WebhookRepository`` and ``SubscriptionGateway``: records per user, and SNS's identity
rule for subscriptions, the same cases on the fakes and on DynamoDB and SNS (moto, with
``local_stack/moto_sns.py``'s Subscribe rule)."""

from __future__ import annotations

import pytest

from chalicelib.errors import ConditionFailed
from chalicelib.models.domain import WebhookRecord
from chalicelib.repositories.webhooks import SubscribeRefused, SubscriptionState
from tests.contract.backends import Backend

ENDPOINT = "https://hooks.example.com/events?imageServiceWebhookId=01J1"


def webhook(webhook_id: str, user_id: str = "alice", created_at: str = "2026-03-14T09:00:00.000Z") -> WebhookRecord:
    return WebhookRecord(
        id=webhook_id,
        user_id=user_id,
        url="https://hooks.example.com/events",
        subscription_arn=f"arn:aws:sns:us-east-1:123456789012:events:{webhook_id}",
        created_at=created_at,
    )


def test_webhooks_read_back_and_list_per_user_oldest_first_up_to_the_limit(backend: Backend) -> None:
    second = webhook("w2", created_at="2026-03-14T09:00:02.000Z")
    first = webhook("w1", created_at="2026-03-14T09:00:01.000Z")
    third = webhook("w3", created_at="2026-03-14T09:00:03.000Z")
    for record in (second, first, third, webhook("b1", "bob")):
        backend.webhooks.add(record)

    assert backend.webhooks.get("w1") == first
    assert backend.webhooks.get("nope") is None
    assert backend.webhooks.list_for_user("alice", 10) == [first, second, third]
    assert backend.webhooks.list_for_user("alice", 2) == [first, second]
    assert backend.webhooks.list_for_user("carol", 10) == []


def test_a_webhook_id_is_added_once(backend: Backend) -> None:
    backend.webhooks.add(webhook("w1"))

    with pytest.raises(ConditionFailed):
        backend.webhooks.add(webhook("w1", "bob"))

    assert backend.webhooks.get("w1") == webhook("w1")


def test_removing_a_webhook_and_removing_it_again(backend: Backend) -> None:
    backend.webhooks.add(webhook("w1"))

    backend.webhooks.remove("w1")
    backend.webhooks.remove("w1")

    assert backend.webhooks.get("w1") is None
    assert backend.webhooks.list_for_user("alice", 10) == []


def test_webhooks_never_appear_in_an_image_listing(backend: Backend) -> None:
    backend.webhooks.add(webhook("w1"))

    assert backend.queries.list_for_user("alice", 10, None, None).records == []


# -- SNS subscriptions -------------------------------------------------------------------


def test_a_subscription_is_filtered_to_its_user_and_confirmed(backend: Backend) -> None:
    arn = backend.subscriptions.subscribe(ENDPOINT, "alice")

    assert backend.subscription_owners() == {ENDPOINT: "alice"}
    assert backend.subscriptions.state(arn) is SubscriptionState.CONFIRMED


def test_subscribing_the_same_endpoint_for_the_same_user_is_the_same_subscription(backend: Backend) -> None:
    arn = backend.subscriptions.subscribe(ENDPOINT, "alice")

    assert backend.subscriptions.subscribe(ENDPOINT, "alice") == arn
    assert backend.subscription_owners() == {ENDPOINT: "alice"}


def test_an_endpoint_subscribed_for_one_user_is_refused_for_another(backend: Backend) -> None:
    backend.subscriptions.subscribe(ENDPOINT, "alice")

    with pytest.raises(SubscribeRefused) as refused:
        backend.subscriptions.subscribe(ENDPOINT, "bob")

    assert refused.value.code == "InvalidParameter"
    assert backend.subscription_owners() == {ENDPOINT: "alice"}  # the first owner's filter stays


def test_two_endpoints_are_two_subscriptions(backend: Backend) -> None:
    other = ENDPOINT.replace("01J1", "01J2")

    alices = backend.subscriptions.subscribe(ENDPOINT, "alice")
    bobs = backend.subscriptions.subscribe(other, "bob")

    assert alices != bobs
    assert backend.subscription_owners() == {ENDPOINT: "alice", other: "bob"}


def test_an_unsubscribed_or_dropped_subscription_is_gone(backend: Backend) -> None:
    kept = backend.subscriptions.subscribe(ENDPOINT, "alice")
    removed = backend.subscriptions.subscribe(ENDPOINT.replace("01J1", "01J2"), "alice")
    dropped = backend.subscriptions.subscribe(ENDPOINT.replace("01J1", "01J3"), "alice")

    backend.subscriptions.unsubscribe(removed)
    backend.subscriptions.unsubscribe(removed)  # again: nothing to do, no error
    backend.drop_subscription(dropped)  # the subscriber used the UnsubscribeURL

    assert backend.subscriptions.state(removed) is SubscriptionState.GONE
    assert backend.subscriptions.state(dropped) is SubscriptionState.GONE
    assert backend.subscriptions.state(kept) is SubscriptionState.CONFIRMED
    assert backend.subscription_owners() == {ENDPOINT: "alice"}
