"""Webhook URL rules and the per-user cap (no IO: the repository and SNS are fakes)."""

from __future__ import annotations

import pytest

from chalicelib.errors import Forbidden, NotFound, ValidationFailed, WebhookLimitReached
from chalicelib.models.domain import WebhookRecord
from chalicelib.repositories.webhooks import SubscriptionGateway, WebhookRepository
from chalicelib.services.webhooks import MAX_WEBHOOKS_PER_USER, WebhookService, check_webhook_url


class MemoryWebhooks(WebhookRepository):
    def __init__(self) -> None:
        self.items: dict[str, WebhookRecord] = {}

    def add(self, record: WebhookRecord) -> None:
        assert record.id not in self.items
        self.items[record.id] = record

    def list_for_user(self, user_id: str, limit: int) -> list[WebhookRecord]:
        return [r for r in self.items.values() if r.user_id == user_id][:limit]

    def get(self, webhook_id: str) -> WebhookRecord | None:
        return self.items.get(webhook_id)

    def remove(self, webhook_id: str) -> None:
        self.items.pop(webhook_id, None)


class MemorySns(SubscriptionGateway):
    def __init__(self) -> None:
        self.subscriptions: dict[str, tuple[str, str]] = {}

    def subscribe(self, url: str, user_id: str) -> str:
        arn = f"arn:aws:sns:us-east-1:1:topic:{len(self.subscriptions)}"
        self.subscriptions[arn] = (url, user_id)
        return arn

    def is_confirmed(self, subscription_arn: str) -> bool:
        return False

    def unsubscribe(self, subscription_arn: str) -> None:
        del self.subscriptions[subscription_arn]


def _service(local: bool = False) -> tuple[WebhookService, MemoryWebhooks, MemorySns]:
    webhooks, sns = MemoryWebhooks(), MemorySns()
    counter = iter(range(1000))
    return WebhookService(webhooks, sns, local_stage=local, new_id=lambda: f"wh{next(counter)}"), webhooks, sns


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/image-events",
        "https://example.com:8443/a?b=c",
    ],
)
def test_public_https_urls_are_accepted_in_aws_stages(url):
    assert check_webhook_url(url, local_stage=False) == url


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com/x",  # not https
        "https://user:secret@example.com/x",  # credentials
        "https://example.com/x#frag",
        "https://127.0.0.1/x",
        "https://localhost/x",
        "https://10.0.0.5/x",
        "https://192.168.1.1/x",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/x",
        "ftp://example.com/x",
        "example.com/x",
        "https://example.com:99999/x",
    ],
)
def test_unsafe_or_non_https_urls_are_refused_in_aws_stages(url):
    with pytest.raises(ValidationFailed) as refused:
        check_webhook_url(url, local_stage=False)
    assert [d.field for d in refused.value.details] == ["url"]


def test_the_local_stage_delivers_to_loopback_only():
    assert check_webhook_url("http://127.0.0.1:9000/hook", local_stage=True)
    assert check_webhook_url("http://localhost:9000/hook", local_stage=True)
    with pytest.raises(ValidationFailed):
        check_webhook_url("http://example.com/hook", local_stage=True)


def test_each_webhook_is_filtered_to_its_owner():
    service, _, sns = _service()
    service.create("alice", "https://a.example.com/hook")
    service.create("bob", "https://b.example.com/hook")
    assert sorted(sns.subscriptions.values()) == [
        ("https://a.example.com/hook", "alice"),
        ("https://b.example.com/hook", "bob"),
    ]


def test_the_same_url_twice_returns_the_existing_webhook():
    service, webhooks, sns = _service()
    first, created = service.create("alice", "https://a.example.com/hook")
    again, created_again = service.create("alice", "https://a.example.com/hook")
    assert (created, created_again) == (True, False)
    assert again.record == first.record
    assert len(webhooks.items) == len(sns.subscriptions) == 1


def test_a_user_has_at_most_the_cap_of_webhooks():
    service, _, sns = _service()
    for n in range(MAX_WEBHOOKS_PER_USER):
        service.create("alice", f"https://a.example.com/{n}")
    with pytest.raises(WebhookLimitReached):
        service.create("alice", "https://a.example.com/one-too-many")
    assert len(sns.subscriptions) == MAX_WEBHOOKS_PER_USER
    service.create("bob", "https://b.example.com/hook")  # the cap is per user


def test_only_the_owner_deletes_a_webhook_and_it_unsubscribes():
    service, webhooks, sns = _service()
    webhook, _ = service.create("alice", "https://a.example.com/hook")
    with pytest.raises(Forbidden):
        service.delete("mallory", webhook.record.id)
    assert len(sns.subscriptions) == 1
    service.delete("alice", webhook.record.id)
    assert webhooks.items == {} and sns.subscriptions == {}
    with pytest.raises(NotFound):
        service.delete("alice", webhook.record.id)
