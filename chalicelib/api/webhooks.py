"""``/webhooks`` routes."""

from __future__ import annotations

from chalice.app import Blueprint, Response

from chalicelib import dependencies
from chalicelib.api.http import api_view, authenticate, json_response, parse_body
from chalicelib.models.requests import CreateWebhookRequest
from chalicelib.models.responses import WebhookListOut, WebhookOut
from chalicelib.services.webhooks import Webhook

webhooks_api = Blueprint(__name__)


def _out(webhook: Webhook) -> WebhookOut:
    record = webhook.record
    return WebhookOut(
        id=record.id,
        url=record.url,
        status="confirmed" if webhook.confirmed else "pending_confirmation",
        created_at=record.created_at,
    )


@webhooks_api.route("/webhooks", methods=["POST"])
@api_view
def create_webhook() -> Response:
    request = webhooks_api.current_request
    principal = authenticate(request)
    body = parse_body(request, CreateWebhookRequest)
    webhook, created = dependencies.webhook_service().create(principal.user_id, body.url)
    return json_response(_out(webhook), 201 if created else 200)


@webhooks_api.route("/webhooks", methods=["GET"])
@api_view
def list_webhooks() -> Response:
    principal = authenticate(webhooks_api.current_request)
    webhooks = dependencies.webhook_service().list(principal.user_id)
    return json_response(WebhookListOut(webhooks=[_out(w) for w in webhooks]), headers={"Cache-Control": "no-store"})


@webhooks_api.route("/webhooks/{webhook_id}", methods=["DELETE"])
@api_view
def delete_webhook(webhook_id: str) -> Response:
    principal = authenticate(webhooks_api.current_request)
    dependencies.webhook_service().delete(principal.user_id, webhook_id)
    return Response(body="", status_code=204)
