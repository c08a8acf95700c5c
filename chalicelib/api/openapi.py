"""The OpenAPI 3.1 document, generated from the pydantic models that validate requests
and shape responses, so the document cannot drift from the code."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import models_json_schema

from chalicelib.api.cors import ALLOWED_REQUEST_HEADERS, EXPOSED_HEADERS, MAX_AGE_SECONDS
from chalicelib.models.common import ALLOWED_CONTENT_TYPES, IMAGE_ID_PATTERN
from chalicelib.models.imports import ImportImageRequest
from chalicelib.models.requests import AlbumId, CreateImageRequest, CreateWebhookRequest, UpdateImageRequest
from chalicelib.models.responses import (
    CreateImageResponse,
    ErrorResponse,
    HealthOut,
    ImageEvent,
    ImageListOut,
    ImageOut,
    StatusOut,
    WebhookListOut,
    WebhookOut,
)
from chalicelib.services.cursors import MAX_CURSOR_LENGTH

Mode = Literal["validation", "serialization"]
_MODELS: list[tuple[type[BaseModel], Mode]] = [
    (CreateImageRequest, "validation"),
    (UpdateImageRequest, "validation"),
    (CreateImageResponse, "serialization"),
    (ImageOut, "serialization"),
    (ImageListOut, "serialization"),
    (StatusOut, "serialization"),
    (HealthOut, "serialization"),
    (ErrorResponse, "serialization"),
    (ImageEvent, "serialization"),
    (CreateWebhookRequest, "validation"),
    (ImportImageRequest, "validation"),
    (WebhookOut, "serialization"),
    (WebhookListOut, "serialization"),
]

_ERRORS = {
    400: "Invalid input (`validation_error`, `unsupported_media_type`, `invalid_cursor`).",
    401: "Missing or invalid bearer token (`unauthorized`).",
    403: "Another user's image (`forbidden`).",
    404: "Unknown image (`not_found`).",
    409: "Stale version (`version_conflict`), too many webhooks (`webhook_limit_reached`) or an import "
    "older than the stored record (`stale_update`).",
    413: "Declared size above the limit (`payload_too_large`).",
    415: "Request body not sent as application/json (`unsupported_media_type`).",
    422: "Idempotency-Key reused with another body (`idempotency_key_reused`).",
    428: "No version given (`precondition_required`).",
    503: "A dependency is unavailable; retry with backoff (`service_unavailable`).",
}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _json(model: type[BaseModel], description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": _ref(model)}}}
    if headers:
        response["headers"] = headers
    return response


def _operation(
    operation_id: str,
    summary: str,
    responses: dict[int, dict[str, Any]],
    errors: tuple[int, ...],
    *,
    body: type[BaseModel] | None = None,
    parameters: list[dict[str, Any]] | None = None,
    public: bool = False,
) -> dict[str, Any]:
    operation: dict[str, Any] = {"operationId": operation_id, "summary": summary, "responses": {}}
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(body)}}}
    all_errors = errors if public else (401, *errors)
    for status, response in sorted({**responses, **{e: _json(ErrorResponse, _ERRORS[e]) for e in all_errors}}.items()):
        operation["responses"][str(status)] = response
    if public:
        operation["security"] = []
    return operation


_IMAGE_ID = {
    "name": "image_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": IMAGE_ID_PATTERN},
    "description": "A ULID (or a legacy gallery UUID).",
}
_ETAG = {"ETag": {"description": 'The image version, quoted ("3").', "schema": {"type": "string"}}}


def cors_extension(allowed_origins: tuple[str, ...]) -> dict[str, Any]:
    """``x-cors``: which browser pages may call the API (chalicelib/api/cors.py, docs/api.md)."""
    return {
        "description": "Every path answers an OPTIONS preflight with its own methods. Answers to an allowed "
        "origin carry Access-Control-Allow-Origin (that origin, with Vary: Origin; '*' where the stage allows "
        "any), errors included; a refused origin gets no CORS headers. Never credentials: send the token in "
        "the Authorization header.",
        "allowedOrigins": list(allowed_origins),
        "allowedRequestHeaders": list(ALLOWED_REQUEST_HEADERS),
        "exposedResponseHeaders": list(EXPOSED_HEADERS),
        "maxAgeSeconds": MAX_AGE_SECONDS,
        "allowCredentials": False,
    }


@lru_cache(maxsize=4)
def openapi_document(max_upload_bytes: int, cors_allowed_origins: tuple[str, ...] = ()) -> dict[str, Any]:
    _, schemas = models_json_schema(_MODELS, ref_template="#/components/schemas/{model}", by_alias=True)
    components = schemas.get("$defs", {})
    create = components["CreateImageRequest"]["properties"]
    create["contentType"]["enum"] = list(ALLOWED_CONTENT_TYPES)
    create["size"]["maximum"] = max_upload_bytes  # larger: 413 payload_too_large
    image_ops = {
        "post": _operation(
            "createImage",
            "Create an upload: a pending image and a presigned S3 POST",
            {
                201: _json(CreateImageResponse, "Created."),
                200: _json(CreateImageResponse, "Replay of an earlier request with the same Idempotency-Key."),
            },
            (400, 404, 413, 415, 422, 503),
            body=CreateImageRequest,
            parameters=[
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x20-\\x7e]+$"},
                }
            ],
        ),
        "get": _operation(
            "listImages",
            "The caller's images, newest first",
            {200: _json(ImageListOut, "A page of images.")},
            (400, 503),
            parameters=[
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
                {
                    "name": "cursor",
                    "in": "query",
                    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_CURSOR_LENGTH},
                },
                {"name": "albumId", "in": "query", "schema": TypeAdapter(AlbumId).json_schema()},
            ],
        ),
    }
    one_image = {
        "get": _operation(
            "getImage",
            "One image",
            {200: _json(ImageOut, "The image.", _ETAG)},
            (403, 404, 503),
            parameters=[_IMAGE_ID],
        ),
        "patch": _operation(
            "updateImage",
            "Edit title, description, tags or album (optimistic locking)",
            {200: _json(ImageOut, "The updated image.", _ETAG)},
            (400, 403, 404, 409, 415, 428, 503),
            body=UpdateImageRequest,
            parameters=[
                _IMAGE_ID,
                {
                    "name": "If-Match",
                    "in": "header",
                    "required": False,
                    "description": 'The version last seen, quoted: "3" (instead of the body\'s version).',
                    # Up to 16 digits: MAX_VERSION's; a larger number is a 400.
                    "schema": {"type": "string", "pattern": '^\\s*(W/)?"?[1-9][0-9]{0,15}"?\\s*$'},
                },
            ],
        ),
        "delete": _operation(
            "deleteImage",
            "Delete the image, its original and its renditions",
            {204: {"description": "Deleted."}},
            (403, 404, 503),
            parameters=[_IMAGE_ID],
        ),
    }
    status_ops = {
        "get": _operation(
            "getImageStatus",
            "Processing status (one strongly consistent read)",
            {200: _json(StatusOut, "The status.")},
            (403, 404, 503),
            parameters=[_IMAGE_ID],
        )
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Image Service",
            "version": "1.0.0",
            "description": "Presigned uploads, processing status and image metadata. Events: see ImageEvent.",
        },
        "paths": {
            "/images": image_ops,
            "/images/{image_id}": one_image,
            "/images/{image_id}/status": status_ops,
            "/webhooks": {
                "post": _operation(
                    "createWebhook",
                    "Subscribe an HTTPS endpoint to the caller's own image events",
                    {
                        201: _json(WebhookOut, "Subscribed."),
                        200: _json(WebhookOut, "This URL was already subscribed."),
                    },
                    (400, 409, 415, 503),
                    body=CreateWebhookRequest,
                ),
                "get": _operation(
                    "listWebhooks", "The caller's webhooks", {200: _json(WebhookListOut, "Webhooks.")}, (503,)
                ),
            },
            "/webhooks/{webhook_id}": {
                "delete": _operation(
                    "deleteWebhook",
                    "Unsubscribe a webhook",
                    {204: {"description": "Removed."}},
                    (403, 404, 503),
                    parameters=[
                        {
                            "name": "webhook_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "minLength": 1, "maxLength": 64},
                        }
                    ],
                )
            },
            "/internal/images/{image_id}": {
                "put": _operation(
                    "importImage",
                    "Upsert a legacy gallery image (service token with the images:import scope)",
                    {
                        201: _json(ImageOut, "Imported."),
                        200: _json(ImageOut, "Replaced by a newer version, or unchanged."),
                    },
                    (400, 403, 409, 415, 503),
                    body=ImportImageRequest,
                    parameters=[_IMAGE_ID],
                )
            },
            "/health": {"get": _operation("health", "Liveness", {200: _json(HealthOut, "Up.")}, (), public=True)},
            "/openapi.json": {
                "get": _operation(
                    "openapi",
                    "This document",
                    {
                        200: {
                            "description": "OpenAPI 3.1",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                    (),
                    public=True,
                )
            },
        },
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
        "security": [{"bearer": []}],
        "x-cors": cors_extension(cors_allowed_origins),
    }
