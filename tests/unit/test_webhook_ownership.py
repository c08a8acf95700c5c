"""Each webhook record owns its own SNS subscription (no IO: SNS's identity rule is in the
fake gateway, as moto has it with local_stack/moto_sns.py and as SNS has it)."""

from __future__ import annotations

import pytest

from chalicelib.api.http import status_for
from chalicelib.errors import TransientFailure, ValidationFailed, WebhookLimitReached
from chalicelib.services.webhooks import (
    MAX_WEBHOOKS_PER_USER,
    SUBSCRIPTION_SETTLE_SECONDS,
    WebhookService,
    subscription_endpoint,
)
from tests.unit.fakes import Clock, FakeSubscriptionGateway, FakeWebhookRepository, Ids

URL = "https://hooks.example.com/events"


def _service(confirm: bool = True) -> tuple[WebhookService, FakeWebhookRepository, FakeSubscriptionGateway, Clock]:
    webhooks, sns, clock = FakeWebhookRepository(), FakeSubscriptionGateway(confirm=confirm), Clock()
    return WebhookService(webhooks, sns, local_stage=False, clock=clock, new_id=Ids()), webhooks, sns, clock


@pytest.mark.parametrize(
    ("url", "endpoint"),
    [
        ("https://h.example.com/x", "https://h.example.com/x?imageServiceWebhookId=01J"),
        ("https://h.example.com", "https://h.example.com?imageServiceWebhookId=01J"),
        ("https://h.example.com/x?a=1&b=%20", "https://h.example.com/x?a=1&b=%20&imageServiceWebhookId=01J"),
        ("https://h.example.com/x?", "https://h.example.com/x?imageServiceWebhookId=01J"),
        ("https://h.example.com/x?a=1&", "https://h.example.com/x?a=1&imageServiceWebhookId=01J"),
        (  # a user's own parameter of that name stays; the webhook's own comes last
            "https://h.example.com/x?imageServiceWebhookId=other",
            "https://h.example.com/x?imageServiceWebhookId=other&imageServiceWebhookId=01J",
        ),
    ],
)
def test_the_endpoint_is_the_users_url_with_the_webhook_id_added_last(url, endpoint):
    assert subscription_endpoint(url, "01J") == endpoint


def test_two_users_with_one_url_get_a_subscription_each_filtered_to_its_owner():
    service, _, sns, _ = _service()
    alice, created = service.create("alice", URL)
    bob, bob_created = service.create("bob", URL)

    assert created and bob_created
    assert alice.record.url == bob.record.url == URL  # the API answers the URL given
    assert alice.record.subscription_arn != bob.record.subscription_arn
    assert sns.owners_by_endpoint() == {
        subscription_endpoint(URL, alice.record.id): "alice",
        subscription_endpoint(URL, bob.record.id): "bob",
    }
    assert [w.record for w in service.list("alice")] == [alice.record]
    assert [w.record for w in service.list("bob")] == [bob.record]


@pytest.mark.parametrize("first_to_go", ["alice", "bob"])
def test_either_delete_leaves_the_other_users_webhook_on_the_same_url_intact(first_to_go):
    service, _, sns, _ = _service()
    mine = {user: service.create(user, URL)[0] for user in ("alice", "bob")}
    other = "bob" if first_to_go == "alice" else "alice"

    service.delete(first_to_go, mine[first_to_go].record.id)

    assert sns.owners_by_endpoint() == {subscription_endpoint(URL, mine[other].record.id): other}
    assert [w.record for w in service.list(other)] == [mine[other].record]
    assert service.list(first_to_go) == []


def test_the_same_user_and_url_again_is_still_the_existing_webhook():
    service, webhooks, sns, _ = _service()
    first, _ = service.create("alice", URL)
    again, created = service.create("alice", URL)
    assert not created and again.record == first.record
    assert len(webhooks.items) == len(sns.subscriptions) == 1


def test_a_subscription_removed_behind_the_services_back_leaves_the_list_and_its_record():
    service, webhooks, sns, clock = _service()
    kept, _ = service.create("alice", "https://hooks.example.com/kept")
    gone, _ = service.create("alice", URL)
    clock.advance(seconds=SUBSCRIPTION_SETTLE_SECONDS)
    del sns.subscriptions[gone.record.subscription_arn]  # the subscriber used the UnsubscribeURL

    assert [w.record for w in service.list("alice")] == [kept.record]
    assert set(webhooks.items) == {kept.record.id}  # removed, not only hidden


def test_a_young_webhook_sns_does_not_find_is_hidden_but_kept_until_it_has_settled():
    service, webhooks, sns, clock = _service()
    webhook, _ = service.create("alice", URL)
    subscription = sns.subscriptions.pop(webhook.record.subscription_arn)

    assert service.list("alice") == []
    assert webhook.record.id in webhooks.items  # SNS may not show a new subscription yet
    sns.subscriptions[webhook.record.subscription_arn] = subscription
    assert [w.record for w in service.list("alice")] == [webhook.record]

    del sns.subscriptions[webhook.record.subscription_arn]
    clock.advance(seconds=SUBSCRIPTION_SETTLE_SECONDS)
    assert service.list("alice") == []
    assert webhooks.items == {}


def test_posting_a_url_whose_subscription_is_gone_subscribes_it_afresh():
    service, webhooks, sns, _ = _service()
    old, _ = service.create("alice", URL)
    del sns.subscriptions[old.record.subscription_arn]

    new, created = service.create("alice", URL)

    assert created and new.record.id != old.record.id
    assert set(webhooks.items) == {new.record.id}
    assert sns.owners_by_endpoint() == {subscription_endpoint(URL, new.record.id): "alice"}


def test_the_cap_counts_only_webhooks_whose_subscription_exists():
    service, _, sns, clock = _service()
    first = service.create("alice", "https://hooks.example.com/0")[0]
    for n in range(1, MAX_WEBHOOKS_PER_USER):
        service.create("alice", f"https://hooks.example.com/{n}")
    with pytest.raises(WebhookLimitReached):
        service.create("alice", URL)
    clock.advance(seconds=SUBSCRIPTION_SETTLE_SECONDS)
    del sns.subscriptions[first.record.subscription_arn]

    assert service.create("alice", URL)[1]
    assert len(service.list("alice")) == MAX_WEBHOOKS_PER_USER


def test_sns_refusing_the_endpoint_is_a_400_on_url_and_any_other_refusal_a_503():
    service, webhooks, sns, _ = _service()
    sns.refuse = ("InvalidParameter", "Invalid parameter: Endpoint")
    with pytest.raises(ValidationFailed) as invalid:
        service.create("alice", URL)
    assert [d.field for d in invalid.value.details] == ["url"]
    assert "Endpoint" not in invalid.value.message  # no AWS text reaches the client

    for code, message in [
        ("FilterPolicyLimitExceeded", "Filter policy limit exceeded"),
        ("SubscriptionLimitExceeded", "Subscription limit exceeded"),
        ("AuthorizationError", "not authorized to perform sns:Subscribe"),
        ("InvalidParameter", "Invalid parameter: Attributes Reason: DeliveryPolicy"),
    ]:
        sns.refuse = (code, message)
        with pytest.raises(TransientFailure) as unavailable:
            service.create("alice", URL)
        assert (status_for(unavailable.value), unavailable.value.code) == (503, "service_unavailable")
    assert webhooks.items == {} and sns.subscriptions == {}


def test_a_pending_subscription_is_listed_as_pending_and_its_delete_removes_the_record():
    service, webhooks, _, _ = _service(confirm=False)
    webhook, _ = service.create("alice", URL)
    assert [w.confirmed for w in service.list("alice")] == [False]
    service.delete("alice", webhook.record.id)
    assert webhooks.items == {}
