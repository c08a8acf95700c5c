"""Webhook URL rules and the per-user cap (no IO: the repository and SNS are fakes)."""

from __future__ import annotations

import pytest

from chalicelib.errors import Forbidden, NotFound, ValidationFailed, WebhookLimitReached
from chalicelib.services.webhooks import MAX_WEBHOOKS_PER_USER, WebhookService, check_webhook_url
from tests.unit.fakes import FakeSubscriptionGateway, FakeWebhookRepository


def _service(
    local: bool = False, confirm: bool = True
) -> tuple[WebhookService, FakeWebhookRepository, FakeSubscriptionGateway]:
    webhooks, sns = FakeWebhookRepository(), FakeSubscriptionGateway(confirm=confirm)
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


# Hosts that reach loopback, private, shared or link-local addresses (or nothing public)
# once an HTTP client parses them, though they are not the dotted quads a naive check
# recognises. SNS delivers the webhook, so SNS's own HTTP client would be the one fooled.
NON_PUBLIC_HOSTS = [
    "127.1",  # shortened dotted form
    "2130706433",  # 32-bit integer
    "0x7f000001",  # hex
    "0177.0.0.1",  # octal
    "0x7f.1",  # mixed
    "0",  # 0.0.0.0
    "127.0.0.1.",  # trailing dot
    "08.0.0.1",  # ends in a number yet no valid address: refused, not taken as a name
    "1.2.3.4.5",
    "100.64.0.1",  # shared address space (carrier-grade NAT): not private, not global
    "192.0.2.1",  # documentation
    "0.0.0.0",  # noqa: S104 - a host to refuse, not one to bind
    "224.0.0.1",  # multicast
    "255.255.255.255",
    "[::]",
    "[::ffff:127.0.0.1]",  # IPv4-mapped
    "[::ffff:7f00:1]",
    "[2002:7f00:1::]",  # 6to4 of 127.0.0.1
    "[64:ff9b::a00:5]",  # NAT64 of 10.0.0.5
    "[2001:0:4136:e378:8000:63bf:3fff:fdd2]",  # Teredo
    "[fe80::1%25eth0]",  # link-local with a zone
    "[fc00::1]",  # unique local
    # IPv4-compatible (::/96, deprecated): is_global says True, an old stack routes it to IPv4
    "[::127.0.0.1]",
    "[::7f00:1]",
    "[0:0:0:0:0:0:127.0.0.1]",
    "[0000::7F00:0001]",
    "[::10.0.0.5]",
    "[::169.254.169.254]",
    "[::8.8.8.8]",  # even a public IPv4 inside: no client is meant to reach a host this way
    "[::ffff:0:7f00:1]",  # SIIT IPv4-translated, also outside global unicast
    "[100::1]",  # discard-only
    "[4000::1]",  # unassigned (outside 2000::/3)
    "localhost.",
    "LOCALHOST",
    "foo.localhost",
    "foo.localhost.",
    "printer.local",  # mDNS
    "db.internal",
    "router.home.arpa",
    "intranet",  # single label: resolved through search domains, never a public name
    "metadata",
    "intranet.",
    "a..example.com",
    ".example.com",
    "%31%32%37.0.0.1",  # percent-encoded (WHATWG URL parsers decode it)
    "\uff11\uff12\uff17.\uff10.\uff10.\uff11",  # full-width digits (IDNA maps them to 127.0.0.1)
    "127\u30020\u30020\u30021",  # ideographic full stops
    "ex_ample.com",
    "-example.com",
]


@pytest.mark.parametrize("host", NON_PUBLIC_HOSTS)
def test_hosts_that_are_not_public_in_any_spelling_are_refused_in_aws_stages(host):
    with pytest.raises(ValidationFailed) as refused:
        check_webhook_url(f"https://{host}/hook", local_stage=False)
    assert [d.field for d in refused.value.details] == ["url"]


@pytest.mark.parametrize(
    "url",
    [
        "https://8.8.8.8/hook",  # a global address literal is fine
        "https://[2606:4700:4700::1111]/hook",
        "https://example.com./hook",  # a fully qualified public name
        "https://Hooks.Example.COM/hook",
        "https://xn--bcher-kva.example/hook",  # IDNA, in its ASCII form
        "https://a-b.c0.example.co.uk:8443/x",
        "https://1password.example/hook",  # labels may start with a digit
    ],
)
def test_public_hosts_in_other_valid_spellings_are_accepted(url):
    assert check_webhook_url(url, local_stage=False) == url


@pytest.mark.parametrize("host", ["127.1", "2130706433", "foo.localhost", "10.0.0.5", "example.com"])
def test_the_local_stage_still_accepts_only_its_loopback_names(host):
    with pytest.raises(ValidationFailed):
        check_webhook_url(f"http://{host}:9000/hook", local_stage=True)


def test_the_local_stage_delivers_to_loopback_only():
    assert check_webhook_url("http://127.0.0.1:9000/hook", local_stage=True)
    assert check_webhook_url("http://localhost:9000/hook", local_stage=True)
    with pytest.raises(ValidationFailed):
        check_webhook_url("http://example.com/hook", local_stage=True)


def test_each_webhook_is_filtered_to_its_owner():
    service, _, sns = _service()
    service.create("alice", "https://a.example.com/hook")
    service.create("bob", "https://b.example.com/hook")
    assert sns.owners_by_endpoint() == {
        "https://a.example.com/hook?imageServiceWebhookId=wh0": "alice",
        "https://b.example.com/hook?imageServiceWebhookId=wh1": "bob",
    }


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
