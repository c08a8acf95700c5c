"""Webhooks and expiry over HTTP against the local stack."""

from __future__ import annotations

import io
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from PIL import Image

from image_client.sns_verify import SnsVerificationError, verify_message
from local_stack.process import local_stack
from local_stack.webhook_receiver import WebhookReceiver, local_certificates
from tests.conftest import LOCAL_ENV, local_token

TOPIC_ARN = LOCAL_ENV["EVENTS_TOPIC_ARN"]


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (120, 80), (30, 160, 60)).save(buffer, "JPEG")
    return buffer.getvalue()


def _subscribe(api_url: str, user: str, url: str) -> dict[str, Any]:
    response = requests.post(
        f"{api_url}/webhooks",
        json={"url": url},
        headers={"Authorization": f"Bearer {local_token(user)}"},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    webhook: dict[str, Any] = response.json()
    return webhook


def test_a_webhook_gets_exactly_one_completed_event_for_its_own_upload_even_when_delivered_twice(
    stack, client_for, aws
):
    me, someone_else = f"hook-{uuid.uuid4().hex[:8]}", f"other-{uuid.uuid4().hex[:8]}"
    with WebhookReceiver().running() as receiver:
        webhook = _subscribe(stack.api_url, me, receiver.url)
        assert webhook["status"] in ("confirmed", "pending_confirmation")
        mine, theirs = client_for(me), client_for(someone_else)
        data = _jpeg()
        created = mine.create_upload("mine.jpg", "image/jpeg", len(data))
        other = theirs.create_upload("theirs.jpg", "image/jpeg", len(data))
        mine.upload(created, data)
        theirs.upload(other, data)
        assert mine.wait_until_done(created["id"], 60)["status"] == "completed"
        assert theirs.wait_until_done(other["id"], 60)["status"] == "completed"

        # The same S3 notification again, as S3/SQS may deliver it.
        sqs = aws("sqs")
        queue = sqs.get_queue_url(QueueName="image-service-uploads-local")["QueueUrl"]
        key = created["upload"]["fields"]["key"]
        record = {
            "eventName": "ObjectCreated:Post",
            "s3": {"bucket": {"name": "image-service-uploads-local"}, "object": {"key": key}},
        }
        sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"Records": [record]}))
        time.sleep(3)  # the worker polls every second; the duplicate must have been handled by now
        events = receiver.wait_for(1, timeout=10)

    # Exactly one logical event: a duplicate that arrives while the first delivery is still
    # publishing may send it again, always with the same eventId and body (docs/notifications.md).
    assert {e["eventId"] for e in events} == {events[0]["eventId"]}
    assert all(e == events[0] for e in events)
    assert len(events) <= 2
    event = events[0]
    assert event["type"] == "image.completed"
    assert event["image"]["id"] == created["id"]
    assert event["image"]["userId"] == me
    assert event["eventId"]
    # Each delivery is signed by SNS (moto, here) and verifies with the subscriber helper.
    fetch = local_certificates(stack.cdn_url)
    for delivery in receiver.deliveries:
        verified = verify_message(delivery, expected_topic_arn=TOPIC_ARN, fetch_certificate=fetch)
        assert verified.json()["image"]["userId"] == me
    tampered = {**receiver.deliveries[0], "Message": receiver.deliveries[0]["Message"].replace(me, someone_else)}
    with pytest.raises(SnsVerificationError):
        verify_message(tampered, expected_topic_arn=TOPIC_ARN, fetch_certificate=fetch)


def test_webhooks_are_listed_for_their_owner_only_and_deleted_by_their_owner_only(stack):
    owner, intruder = f"own-{uuid.uuid4().hex[:8]}", f"int-{uuid.uuid4().hex[:8]}"
    webhook = _subscribe(stack.api_url, owner, "http://127.0.0.1:9/hook")

    def call(method: str, path: str, user: str) -> requests.Response:
        headers = {"Authorization": f"Bearer {local_token(user)}"}
        return requests.request(method, f"{stack.api_url}{path}", headers=headers, timeout=30)

    assert [w["id"] for w in call("GET", "/webhooks", owner).json()["webhooks"]] == [webhook["id"]]
    assert call("GET", "/webhooks", intruder).json()["webhooks"] == []
    refused = call("DELETE", f"/webhooks/{webhook['id']}", intruder)
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "forbidden")
    assert call("DELETE", f"/webhooks/{webhook['id']}", owner).status_code == 204
    assert call("GET", "/webhooks", owner).json()["webhooks"] == []


def test_an_abandoned_upload_turns_expired_and_its_event_arrives():
    # A stack of its own, with a 2-second upload window and no grace, swept every second.
    short_window = {"UPLOAD_URL_TTL_SECONDS": "2", "EXPIRY_GRACE_SECONDS": "0"}
    user = f"gone-{uuid.uuid4().hex[:8]}"
    headers = {"Authorization": f"Bearer {local_token(user)}"}
    with local_stack(sweep_seconds=1, environment=short_window) as stack, WebhookReceiver().running() as receiver:
        _subscribe(stack.api_url, user, receiver.url)
        created = requests.post(
            f"{stack.api_url}/images",
            json={"filename": "never.jpg", "contentType": "image/jpeg", "size": 100},
            headers=headers,
            timeout=30,
        ).json()
        events = receiver.wait_for(1, timeout=20)
        status = requests.get(f"{stack.api_url}/images/{created['id']}/status", headers=headers, timeout=30).json()
    assert status["status"] == "expired"
    assert status["error"]["code"] == "upload_expired"
    assert [(e["type"], e["image"]["id"]) for e in events] == [("image.expired", created["id"])]


class _ReceiverByWebhook:
    """One HTTP endpoint for several webhooks: each delivery's image event, by the
    ``imageServiceWebhookId`` SNS's endpoint carries (docs/notifications.md)."""

    def __init__(self) -> None:
        self.events: dict[str, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                delivery = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                (webhook_id,) = parse_qs(urlsplit(self.path).query).get("imageServiceWebhookId", ["none"])[-1:]
                if delivery.get("Type") == "Notification":
                    with receiver._lock:
                        receiver.events.setdefault(webhook_id, []).append(json.loads(delivery["Message"]))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook?team=imaging"

    def images(self, webhook_id: str) -> set[tuple[str, str]]:
        with self._lock:
            return {(e["image"]["userId"], e["image"]["id"]) for e in self.events.get(webhook_id, [])}

    def wait_for(self, expected: dict[str, set[tuple[str, str]]], timeout: float) -> dict[str, set[tuple[str, str]]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(not want <= self.images(w) for w, want in expected.items()):
            time.sleep(0.1)
        time.sleep(0.5)  # anything that should not come would come by now
        with self._lock:
            webhook_ids = list(self.events)
        return {w: self.images(w) for w in webhook_ids}

    def __enter__(self) -> _ReceiverByWebhook:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def test_two_users_with_one_url_each_receive_their_own_events_and_keep_them_when_the_other_unsubscribes(
    stack, client_for, aws
):
    alice, bob = f"alice-{uuid.uuid4().hex[:8]}", f"bob-{uuid.uuid4().hex[:8]}"
    data = _jpeg()

    def upload(user: str) -> str:
        client = client_for(user)
        created = client.create_upload("shared.jpg", "image/jpeg", len(data))
        client.upload(created, data)
        assert client.wait_until_done(created["id"], 60)["status"] == "completed"
        return str(created["id"])

    def webhooks(user: str) -> list[str]:
        headers = {"Authorization": f"Bearer {local_token(user)}"}
        response = requests.get(f"{stack.api_url}/webhooks", headers=headers, timeout=30)
        return [w["id"] for w in response.json()["webhooks"]]

    with _ReceiverByWebhook() as receiver:
        first, second = _subscribe(stack.api_url, alice, receiver.url), _subscribe(stack.api_url, bob, receiver.url)
        assert first["url"] == second["url"] == receiver.url and first["id"] != second["id"]
        alices, bobs = upload(alice), upload(bob)
        assert receiver.wait_for({first["id"]: {(alice, alices)}, second["id"]: {(bob, bobs)}}, timeout=20) == {
            first["id"]: {(alice, alices)},
            second["id"]: {(bob, bobs)},
        }

        # The first subscriber leaves: the second one's subscription stays, and only it.
        headers = {"Authorization": f"Bearer {local_token(alice)}"}
        deleted = requests.delete(f"{stack.api_url}/webhooks/{first['id']}", headers=headers, timeout=30)
        assert deleted.status_code == 204
        later = upload(bob)
        assert receiver.wait_for({second["id"]: {(bob, bobs), (bob, later)}}, timeout=20) == {
            first["id"]: {(alice, alices)},
            second["id"]: {(bob, bobs), (bob, later)},
        }
        assert (webhooks(alice), webhooks(bob)) == ([], [second["id"]])

        # Bob's subscription removed behind the service's back (the UnsubscribeURL, or
        # SNS dropping an unconfirmed one): GET /webhooks no longer shows it.
        sns = aws("sns")
        (arn,) = [
            s["SubscriptionArn"]
            for s in sns.list_subscriptions_by_topic(TopicArn=TOPIC_ARN)["Subscriptions"]
            if s["Endpoint"].startswith(receiver.url) and s["Endpoint"].endswith(second["id"])
        ]
        sns.unsubscribe(SubscriptionArn=arn)
        assert webhooks(bob) == []
