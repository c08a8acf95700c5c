"""``/internal`` routes: service-to-service calls (the legacy gallery's migration)."""

from __future__ import annotations

from chalice.app import Blueprint, Response

from chalicelib import dependencies
from chalicelib.api.http import api_view, authenticate, json_response, parse_body
from chalicelib.models.imports import ImportImageRequest
from chalicelib.repositories.imports import UpsertOutcome
from chalicelib.services.imports import require_import_scope

internal_api = Blueprint(__name__)


@internal_api.route("/internal/images/{image_id}", methods=["PUT"])
@api_view
def import_image(image_id: str) -> Response:
    """Upsert a legacy image: 201 created, 200 replaced or unchanged, 409 stale_update."""
    request = internal_api.current_request
    require_import_scope(authenticate(request))
    body = parse_body(request, ImportImageRequest)
    result = dependencies.import_service().import_image(image_id, body)
    return json_response(
        dependencies.presenter().image(result.record),
        201 if result.outcome is UpsertOutcome.CREATED else 200,
        {
            "Location": f"/images/{image_id}",
            "Cache-Control": "no-store",
            "X-Import-Outcome": result.outcome.value,
        },
    )
