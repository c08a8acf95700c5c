"""Use cases of ``/webhooks``: subscribe, list and remove a user's HTTPS endpoints."""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import NamedTuple
from urllib.parse import quote, urlsplit

from ulid import ULID

from chalicelib import logs
from chalicelib.errors import (
    DomainError,
    FieldProblem,
    Forbidden,
    NotFound,
    TransientFailure,
    ValidationFailed,
    WebhookLimitReached,
)
from chalicelib.models.common import format_time, parse_time, utc_now
from chalicelib.models.domain import WebhookRecord
from chalicelib.repositories.webhooks import (
    SubscribeRefused,
    SubscriptionGateway,
    SubscriptionState,
    WebhookRepository,
)

MAX_WEBHOOKS_PER_USER = 10
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})

# A DNS label in ASCII (IDNs in their xn-- form): letters, digits, inner hyphens.
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# A last label that makes URL parsers (WHATWG's, curl's) read the host as an IPv4 address.
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")
# Names that never lead to a public host: RFC 6761 (localhost), RFC 6762 (mDNS), RFC 8375,
# ICANN's private-use .internal, and the usual /etc/hosts domain.
_PRIVATE_SUFFIXES = ("localhost", "local", "internal", "home.arpa", "localdomain")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# IANA's global unicast block. The rest of the IPv6 space is reserved or special-purpose,
# including the deprecated IPv4-compatible ::/96 (``[::127.0.0.1]``), which ``is_global``
# calls global although an old stack would route it to the IPv4 address it carries.
_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, Teredo, NAT64), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _is_public_address(address: IpAddress) -> bool:
    if not address.is_global or address.is_multicast:
        return False
    if isinstance(address, ipaddress.IPv4Address):
        return True
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        return _is_public_address(embedded)
    return address in _GLOBAL_UNICAST


def public_host_problem(host: str) -> str | None:
    """Why ``host`` (a URL's lower-cased hostname) is not a public host, or None.

    Without DNS (SNS makes the delivery; this Lambda never connects): an address literal
    in any spelling an HTTP client accepts (dotted, shortened ``127.1``, integer, hex,
    octal, IPv6 with an embedded IPv4) must be globally routable; a name must be made of
    ASCII DNS labels, have at least two of them, and not be under ``localhost`` or
    another private-use name. Anything else (percent-encoding, full-width digits or
    dots that IDNA would map onto an address, empty labels) is refused.
    """
    if ":" in host:  # an IPv6 literal (urlsplit drops the brackets)
        try:
            address: IpAddress = ipaddress.IPv6Address(host)
        except ValueError:
            return "The URL's host is not a valid address."
        return None if _is_public_address(address) else "Webhooks must point at a public host."
    name = host[:-1] if host.endswith(".") else host  # the fully qualified form of a name
    labels = name.split(".")
    if not all(_LABEL.fullmatch(label) for label in labels):
        return "The URL's host must be a DNS name in ASCII (IDNs in their xn-- form) or an IP address."
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        try:  # inet_aton reads every IPv4 spelling: 127.1, 2130706433, 0x7f000001, 0177.0.0.1
            address = ipaddress.IPv4Address(socket.inet_aton(name))
        except OSError:
            return "The URL's host is not a valid address."
        return None if _is_public_address(address) else "Webhooks must point at a public host."
    if any(name == suffix or name.endswith(f".{suffix}") for suffix in _PRIVATE_SUFFIXES):
        return "Webhooks must point at a public host."
    if len(labels) < 2:
        return "Webhooks must point at a public host with a fully qualified name, like hooks.example.com."
    return None


class Webhook(NamedTuple):
    record: WebhookRecord
    confirmed: bool


# The query parameter that gives each webhook's subscription an endpoint of its own.
WEBHOOK_ID_PARAMETER = "imageServiceWebhookId"
# SNS may not find a subscription for a moment after Subscribe returned it: a webhook this
# young whose subscription SNS does not find is hidden from GET /webhooks but kept.
SUBSCRIPTION_SETTLE_SECONDS = 60


def subscription_endpoint(url: str, webhook_id: str) -> str:
    """The endpoint SNS delivers webhook ``webhook_id`` to: the user's URL (kept as given,
    query included; it has no fragment) with ``imageServiceWebhookId=<id>`` added last.

    SNS identifies a subscription by topic, protocol and endpoint, so two webhooks with
    one URL (two users, or one user's concurrent POSTs) get two subscriptions, each with
    its own filter policy, instead of one subscription whose filter the last Subscribe
    sets (moto) or a refusal of the second (SNS). The id is last and of a fixed length,
    so no two webhook ids give the same endpoint.
    """
    separator = "" if url.endswith(("?", "&")) else "&" if "?" in url else "?"
    return f"{url}{separator}{WEBHOOK_ID_PARAMETER}={quote(webhook_id, safe='')}"


def _subscribe_error(refused: SubscribeRefused) -> DomainError:
    """A 400 naming the URL when SNS refused the endpoint, else a 503 (a quota such as
    FilterPolicyLimitExceeded, or a misconfiguration: logged for the operator)."""
    if refused.code == "InvalidParameter" and "endpoint" in refused.message.lower():
        message = "The notification service refused this URL."
        return ValidationFailed(message, [FieldProblem(field="url", message=message)])
    logs.error("SNS refused a webhook subscription", errorCode=refused.code)
    return TransientFailure("Webhooks cannot be subscribed right now. Try again later.")


def check_webhook_url(url: str, local_stage: bool) -> str:
    """An absolute URL without credentials or fragment: https to a public host in AWS stages;
    in the local stack, http or https to a loopback host only (it has nowhere else to deliver)."""

    def bad(message: str) -> ValidationFailed:
        return ValidationFailed(message, [FieldProblem(field="url", message=message)])

    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        host = (parts.hostname or "").lower()
        _ = parts.port  # a non-numeric or out-of-range port raises here
    except ValueError as exc:
        raise bad("The URL is not valid.") from exc
    if scheme not in ("http", "https") or not host:
        raise bad("The URL must be absolute, like https://example.com/hook.")
    if parts.username is not None or parts.password is not None:
        raise bad("The URL must not carry credentials.")
    if parts.fragment:
        raise bad("The URL must not have a #fragment.")
    if local_stage:
        if host not in _LOOPBACK_HOSTS:
            raise bad("The local stack delivers only to 127.0.0.1, localhost or [::1].")
        return url
    if scheme != "https":
        raise bad("Webhooks must use https.")
    problem = public_host_problem(host)
    if problem is not None:
        raise bad(problem)
    return url


class WebhookService:
    """Each webhook record owns one SNS subscription, of an endpoint of its own
    (``subscription_endpoint``): records never share a subscription, whoever subscribed
    the same URL first, so a DELETE removes its own record's subscription only."""

    def __init__(
        self,
        webhooks: WebhookRepository,
        subscriptions: SubscriptionGateway,
        local_stage: bool,
        clock: Callable[[], datetime] = utc_now,
        new_id: Callable[[], str] = lambda: str(ULID()),
    ) -> None:
        self._webhooks = webhooks
        self._subscriptions = subscriptions
        self._local_stage = local_stage
        self._clock = clock
        self._new_id = new_id

    def create(self, user_id: str, url: str) -> tuple[Webhook, bool]:
        """Subscribe ``url`` to the user's events; (webhook, created). The same URL again is a
        no-op, unless its subscription no longer exists: then it is subscribed afresh."""
        url = check_webhook_url(url, self._local_stage)
        existing = self._webhooks.list_for_user(user_id, MAX_WEBHOOKS_PER_USER + 1)
        for record in existing:
            if record.url == url:
                state = self._subscriptions.state(record.subscription_arn)
                if state is not SubscriptionState.GONE:
                    return Webhook(record, state is SubscriptionState.CONFIRMED), False
                self._forget(record)
                existing.remove(record)
                break
        if len(existing) >= MAX_WEBHOOKS_PER_USER:
            existing = [r for r in existing if not self._forgotten_if_gone(r)]
        if len(existing) >= MAX_WEBHOOKS_PER_USER:
            raise WebhookLimitReached(f"A user can have at most {MAX_WEBHOOKS_PER_USER} webhooks; delete one first.")
        webhook_id = self._new_id()
        try:
            arn = self._subscriptions.subscribe(subscription_endpoint(url, webhook_id), user_id)
        except SubscribeRefused as refused:
            raise _subscribe_error(refused) from refused
        record = WebhookRecord(
            id=webhook_id, user_id=user_id, url=url, subscription_arn=arn, created_at=format_time(self._clock())
        )
        self._webhooks.add(record)
        logs.info("webhook subscribed", webhookId=record.id)
        # Just subscribed: SNS not finding it yet is not a reason to say it is gone.
        return Webhook(record, self._subscriptions.state(arn) is SubscriptionState.CONFIRMED), True

    def list(self, user_id: str) -> list[Webhook]:
        """The user's webhooks whose subscription exists, so the list never shows one SNS no
        longer delivers to; the others are removed (``_forget_once_settled``)."""
        webhooks = []
        for record in self._webhooks.list_for_user(user_id, MAX_WEBHOOKS_PER_USER):
            state = self._subscriptions.state(record.subscription_arn)
            if state is SubscriptionState.GONE:
                self._forget_once_settled(record)
            else:
                webhooks.append(Webhook(record, state is SubscriptionState.CONFIRMED))
        return webhooks

    def _forgotten_if_gone(self, record: WebhookRecord) -> bool:
        if self._subscriptions.state(record.subscription_arn) is not SubscriptionState.GONE:
            return False
        return self._forget_once_settled(record)

    def _forget_once_settled(self, record: WebhookRecord) -> bool:
        """Remove a record whose subscription SNS does not find, unless it is younger than
        ``SUBSCRIPTION_SETTLE_SECONDS`` (then it is only hidden); whether it was removed."""
        age = self._clock() - parse_time(record.created_at)
        if age < timedelta(seconds=SUBSCRIPTION_SETTLE_SECONDS):
            return False
        self._forget(record)
        return True

    def _forget(self, record: WebhookRecord) -> None:
        # Unsubscribe all the same: a no-op for a subscription that is gone, and it leaves
        # no subscription without a record should SNS have answered NotFound by mistake.
        self._subscriptions.unsubscribe(record.subscription_arn)
        self._webhooks.remove(record.id)
        logs.info("webhook removed: its subscription no longer exists", webhookId=record.id)

    def delete(self, user_id: str, webhook_id: str) -> None:
        record = self._webhooks.get(webhook_id) if len(webhook_id) <= 64 else None
        if record is None:
            raise NotFound.of("webhook", webhook_id)
        if record.user_id != user_id:
            raise Forbidden("This webhook belongs to another user.")
        # Unsubscribe first: a crash after it leaves a record a retried DELETE removes.
        self._subscriptions.unsubscribe(record.subscription_arn)
        self._webhooks.remove(webhook_id)
        logs.info("webhook removed", webhookId=webhook_id)
