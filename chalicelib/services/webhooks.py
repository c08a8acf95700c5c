"""Use cases of ``/webhooks``: subscribe, list and remove a user's HTTPS endpoints."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from datetime import datetime
from typing import NamedTuple
from urllib.parse import urlsplit

from ulid import ULID

from chalicelib import logs
from chalicelib.errors import FieldProblem, Forbidden, NotFound, ValidationFailed, WebhookLimitReached
from chalicelib.models.common import format_time, utc_now
from chalicelib.models.domain import WebhookRecord
from chalicelib.repositories.webhooks import SubscriptionGateway, WebhookRepository

MAX_WEBHOOKS_PER_USER = 10
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def _is_private(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_private or address.is_loopback or address.is_link_local or address.is_reserved


class Webhook(NamedTuple):
    record: WebhookRecord
    confirmed: bool


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
            raise bad("The local stack delivers only to 127.0.0.1 or localhost.")
        return url
    if scheme != "https":
        raise bad("Webhooks must use https.")
    if host in _LOOPBACK_HOSTS or _is_private(host):
        raise bad("Webhooks must point at a public host.")
    return url


class WebhookService:
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
        """Subscribe ``url`` to the user's events; (webhook, created). The same URL again is a no-op."""
        url = check_webhook_url(url, self._local_stage)
        existing = self._webhooks.list_for_user(user_id, MAX_WEBHOOKS_PER_USER + 1)
        for record in existing:
            if record.url == url:
                return Webhook(record, self._subscriptions.is_confirmed(record.subscription_arn)), False
        if len(existing) >= MAX_WEBHOOKS_PER_USER:
            raise WebhookLimitReached(f"A user can have at most {MAX_WEBHOOKS_PER_USER} webhooks; delete one first.")
        arn = self._subscriptions.subscribe(url, user_id)
        record = WebhookRecord(
            id=self._new_id(), user_id=user_id, url=url, subscription_arn=arn, created_at=format_time(self._clock())
        )
        self._webhooks.add(record)
        logs.info("webhook subscribed", webhookId=record.id)
        return Webhook(record, self._subscriptions.is_confirmed(arn)), True

    def list(self, user_id: str) -> list[Webhook]:
        records = self._webhooks.list_for_user(user_id, MAX_WEBHOOKS_PER_USER)
        return [Webhook(r, self._subscriptions.is_confirmed(r.subscription_arn)) for r in records]

    def delete(self, user_id: str, webhook_id: str) -> None:
        record = self._webhooks.get(webhook_id) if len(webhook_id) <= 64 else None
        if record is None:
            raise NotFound(f"No webhook with id {webhook_id!r}.")
        if record.user_id != user_id:
            raise Forbidden("This webhook belongs to another user.")
        # Unsubscribe first: a crash after it leaves a record a retried DELETE removes.
        self._subscriptions.unsubscribe(record.subscription_arn)
        self._webhooks.remove(webhook_id)
        logs.info("webhook removed", webhookId=webhook_id)
