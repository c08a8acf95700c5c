"""``GET /health``: liveness without auth and without touching AWS."""

from __future__ import annotations

from chalice.app import Blueprint, Response

from chalicelib.api.http import api_view, json_response
from chalicelib.models.responses import HealthOut
from chalicelib.settings import get_settings

health_api = Blueprint(__name__)


@health_api.route("/health", methods=["GET"])
@api_view
def health() -> Response:
    return json_response(HealthOut())


@health_api.route("/openapi.json", methods=["GET"])
@api_view
def openapi() -> Response:
    # Imported on first request: building the document is not cold-start work.
    from chalicelib.api.openapi import openapi_document

    settings = get_settings()
    return json_response(openapi_document(settings.max_upload_bytes, settings.cors_allowed_origins))
