"""moto's SNS, made to keep SNS's rule for a Subscribe that names an existing subscription.

SNS identifies a subscription by its topic, protocol and endpoint. A Subscribe naming an
existing one returns that subscription when every attribute the request gives equals the
subscription's, and otherwise fails with ``InvalidParameter`` "Invalid parameter:
Attributes Reason: Subscription already exists with different attributes"; attributes
the request leaves out are not compared (LocalStack's AWS-validated tests, PRs 8976 and
9167, pin the same rule). moto 5.2.5 returns the existing subscription and then writes
the request's attributes over it: a second webhook on the same URL took the first one's
subscription and replaced its ``FilterPolicy`` (another user's events went to the first
endpoint, and its own stopped). With this patch the local stack and the functional tests
see SNS's answer instead.

``local_stack/supervisor.py`` applies it in the process that runs moto's server;
``tests/functional/conftest.py`` applies it to the in-process mocks. It is written
against moto 5.2.5 (requirements-dev.txt) and refuses any other version, since it
replaces a moto method whose internals it relies on.
"""

from __future__ import annotations

import json
from typing import Any

from local_stack.patched_versions import require

ALREADY_EXISTS = "Invalid parameter: Attributes Reason: Subscription already exists with different attributes"


def _check_moto_version() -> None:
    require(
        "moto",
        "local_stack/moto_sns.py (SNSResponse.subscribe)",
        "check that moto still overwrites an existing subscription's attributes on Subscribe",
    )


def _normalised(name: str, value: Any) -> str:
    """An attribute as SNS compares it: booleans as ``true``/``false``, JSON policies by content."""
    if isinstance(value, bool) or name == "RawMessageDelivery":
        return str(value).lower()
    if name in ("FilterPolicy", "DeliveryPolicy", "RedrivePolicy") and value:
        try:
            return json.dumps(json.loads(value), sort_keys=True)
        except (TypeError, ValueError):
            return str(value)
    return "" if value is None else str(value)


def _differs(subscription: Any, requested: dict[str, Any]) -> bool:
    current = {"FilterPolicyScope": "MessageAttributes", **subscription.attributes}
    return any(_normalised(name, value) != _normalised(name, current.get(name)) for name, value in requested.items())


def match_sns_subscribe() -> None:
    """Make moto's Subscribe keep SNS's identity rule (idempotent). Raises if the installed
    moto is not the version this was written for."""
    _check_moto_version()
    from moto.sns.exceptions import SNSInvalidParameter
    from moto.sns.responses import SNSResponse

    if getattr(SNSResponse.subscribe, "patched", False):
        return
    original = SNSResponse.subscribe

    def subscribe(self: Any) -> Any:
        requested = self._get_attributes()
        if requested:
            existing = self.backend._find_subscription(
                self._get_param("TopicArn"), self._get_param("Endpoint"), self._get_param("Protocol")
            )
            if existing is not None and _differs(existing, requested):
                raise SNSInvalidParameter(ALREADY_EXISTS)
        return original(self)

    subscribe.patched = True  # type: ignore[attr-defined]
    SNSResponse.subscribe = subscribe  # type: ignore[method-assign]
