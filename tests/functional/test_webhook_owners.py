"""Each webhook record owns its SNS subscription: two users (or two records) with one URL
never share one, a DELETE removes only its own, and a subscription removed behind the
service's back leaves GET /webhooks. On moto, with SNS's rule for a Subscribe that names
an existing subscription (``local_stack/moto_sns.py``)."""

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
    from local_stack import patched_versions
    from local_stack.moto_sns import match_sns_subscribe

    monkeypatch.setattr(patched_versions, "installed_version", lambda name: "5.3.0")
    with pytest.raises(RuntimeError, match=r"moto 5\.2\.5's internals, but moto 5\.3\.0 is installed"):
        match_sns_subscribe()


def _webhook_subscriptions(stack: Stack) -> dict[str, str]:
    """Each HTTP subscription of the topic: endpoint -> the user its filter policy pins."""
    owners = {}
    for subscription in stack.sns.list_subscriptions_by_topic(TopicArn=stack.topic_arn)["Subscriptions"]:
        if subscription["Protocol"] != "http":
            continue
        arn = subscription["SubscriptionArn"]
        attributes = stack.sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]
        (owners[subscription["Endpoint"]],) = json.loads(attributes["FilterPolicy"])["userId"]
    return owners


def _call(api: Any, auth_for: Any, method: str, path: str, user: str, body: Any = None) -> Any:
    return api.http.request(method, path, headers=auth_for(user), body=json.dumps(body) if body is not None else b"")


@pytest.mark.parametrize("first_to_go", ["alice", "bob"])
def test_two_users_subscribing_one_url_each_get_their_own_subscription_and_either_delete_spares_the_other(
    api: Any, aws_stack: Stack, auth_for: Any, first_to_go: str
) -> None:
    created = {}
    for user in ("alice", "bob"):
        response = _call(api, auth_for, "POST", "/webhooks", user, {"url": URL})
        assert response.status_code == 201, response.body
        created[user] = response.json_body
        assert created[user]["url"] == URL  # the URL as given, not the endpoint SNS delivers to
    ids = {user: webhook["id"] for user, webhook in created.items()}
    assert ids["alice"] != ids["bob"]
    assert _webhook_subscriptions(aws_stack) == {
        f"{URL}?imageServiceWebhookId={ids['alice']}": "alice",
        f"{URL}?imageServiceWebhookId={ids['bob']}": "bob",
    }
    # The same user and URL again: the same webhook, no new subscription.
    again = _call(api, auth_for, "POST", "/webhooks", "alice", {"url": URL})
    assert (again.status_code, again.json_body["id"]) == (200, ids["alice"])
    assert len(_webhook_subscriptions(aws_stack)) == 2

    other = "bob" if first_to_go == "alice" else "alice"
    assert _call(api, auth_for, "DELETE", f"/webhooks/{ids[first_to_go]}", first_to_go).status_code == 204

    assert _webhook_subscriptions(aws_stack) == {f"{URL}?imageServiceWebhookId={ids[other]}": other}
    assert [w["id"] for w in _call(api, auth_for, "GET", "/webhooks", other).json_body["webhooks"]] == [ids[other]]
    assert _call(api, auth_for, "GET", "/webhooks", first_to_go).json_body["webhooks"] == []


def test_a_subscription_removed_behind_the_services_back_leaves_get_webhooks(
    api: Any, aws_stack: Stack, auth_for: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept = _call(api, auth_for, "POST", "/webhooks", "alice", {"url": "http://127.0.0.1:9/kept"}).json_body
    gone = _call(api, auth_for, "POST", "/webhooks", "alice", {"url": URL}).json_body
    (arn,) = [
        s["SubscriptionArn"]
        for s in aws_stack.sns.list_subscriptions_by_topic(TopicArn=aws_stack.topic_arn)["Subscriptions"]
        if s["Endpoint"].startswith(URL)
    ]
    aws_stack.sns.unsubscribe(SubscriptionArn=arn)  # as the subscriber's UnsubscribeURL does

    listed = _call(api, auth_for, "GET", "/webhooks", "alice")
    assert [w["id"] for w in listed.json_body["webhooks"]] == [kept["id"]]
    # Just created, so only hidden; once settled, the record goes too, and DELETE says 404.
    monkeypatch.setattr("chalicelib.services.webhooks.SUBSCRIPTION_SETTLE_SECONDS", 0)
    assert [w["id"] for w in _call(api, auth_for, "GET", "/webhooks", "alice").json_body["webhooks"]] == [kept["id"]]
    assert _call(api, auth_for, "DELETE", f"/webhooks/{gone['id']}", "alice").status_code == 404
    # And the same URL again is a new webhook with a working subscription.
    again = _call(api, auth_for, "POST", "/webhooks", "alice", {"url": URL})
    assert again.status_code == 201 and again.json_body["id"] != gone["id"]
    assert _webhook_subscriptions(aws_stack)[f"{URL}?imageServiceWebhookId={again.json_body['id']}"] == "alice"


def test_sns_refusing_a_subscribe_is_never_a_500(
    api: Any, aws_stack: Stack, auth_for: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A subscription of the next webhook's endpoint with other attributes already exists
    # (no record owns it): SNS refuses the Subscribe, and the client gets a 503 with the
    # API's error body, no record, and no AWS text.
    webhook_id = "01JZZZZZZZZZZZZZZZZZZZZZZZ"
    monkeypatch.setattr("chalicelib.services.webhooks.ULID", lambda: webhook_id)
    aws_stack.sns.subscribe(
        TopicArn=aws_stack.topic_arn,
        Protocol="http",
        Endpoint=f"{URL}?imageServiceWebhookId={webhook_id}",
        Attributes={"FilterPolicy": json.dumps({"userId": ["mallory"]})},
    )

    response = _call(api, auth_for, "POST", "/webhooks", "alice", {"url": URL})

    assert response.status_code == 503
    assert response.json_body["error"]["code"] == "service_unavailable"
    assert "Subscription" not in response.json_body["error"]["message"]
    assert _call(api, auth_for, "GET", "/webhooks", "alice").json_body["webhooks"] == []
