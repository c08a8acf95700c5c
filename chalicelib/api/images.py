"""``/images`` routes."""

from __future__ import annotations

from chalice.app import Blueprint, Response
from pydantic import TypeAdapter, ValidationError

from chalicelib import dependencies
from chalicelib.api.http import api_view, authenticate, json_response, parse_body, parse_query
from chalicelib.errors import FieldProblem, ValidationFailed
from chalicelib.models.domain import ImageRecord
from chalicelib.models.requests import CreateImageRequest, IdempotencyKey, ListImagesQuery, UpdateImageRequest
from chalicelib.models.responses import CreateImageResponse, ImageListOut, PresignedUpload

images_api = Blueprint(__name__)

_idempotency_key = TypeAdapter(IdempotencyKey)


def _idempotency_key_header() -> str | None:
    value = images_api.current_request.headers.get("idempotency-key")
    if value is None:
        return None
    try:
        return _idempotency_key.validate_python(value)
    except ValidationError as exc:
        raise ValidationFailed(
            "The Idempotency-Key header must be 1-255 printable ASCII characters.",
            [FieldProblem(field="Idempotency-Key", message="must be 1-255 printable ASCII characters")],
        ) from exc


@images_api.route("/images", methods=["POST"])
@api_view
def create_image() -> Response:
    request = images_api.current_request
    principal = authenticate(request)
    body = parse_body(request, CreateImageRequest)
    ticket = dependencies.upload_service().create(principal.user_id, body, _idempotency_key_header())
    record = ticket.record
    upload = None
    if ticket.form is not None and ticket.expires_at is not None:
        upload = PresignedUpload(url=ticket.form.url, fields=ticket.form.fields, expires_at=ticket.expires_at)
    response = CreateImageResponse(
        id=record.id,
        status=record.status,
        status_url=f"/images/{record.id}/status",
        upload=upload,
        image=dependencies.presenter().image(record),
    )
    return json_response(
        response,
        200 if ticket.replayed else 201,
        {"Location": f"/images/{record.id}", "Cache-Control": "no-store"},
    )


@images_api.route("/images/{image_id}/status", methods=["GET"])
@api_view
def get_image_status(image_id: str) -> Response:
    principal = authenticate(images_api.current_request)
    record = dependencies.image_service().get(principal.user_id, image_id)
    return json_response(dependencies.presenter().status(record), headers={"Cache-Control": "no-store"})


@images_api.route("/images", methods=["GET"])
@api_view
def list_images() -> Response:
    request = images_api.current_request
    principal = authenticate(request)
    page = dependencies.image_service().list(principal.user_id, parse_query(request, ListImagesQuery))
    presenter = dependencies.presenter()
    body = ImageListOut(images=[presenter.image(r) for r in page.records], next_cursor=page.next_cursor)
    return json_response(body, headers={"Cache-Control": "no-store"})


@images_api.route("/images/{image_id}", methods=["GET"])
@api_view
def get_image(image_id: str) -> Response:
    principal = authenticate(images_api.current_request)
    record = dependencies.image_service().get(principal.user_id, image_id)
    return _image_response(record)


@images_api.route("/images/{image_id}", methods=["PATCH"])
@api_view
def update_image(image_id: str) -> Response:
    request = images_api.current_request
    principal = authenticate(request)
    body = parse_body(request, UpdateImageRequest)
    record = dependencies.image_service().update(principal.user_id, image_id, body, request.headers.get("if-match"))
    return _image_response(record)


@images_api.route("/images/{image_id}", methods=["DELETE"])
@api_view
def delete_image(image_id: str) -> Response:
    principal = authenticate(images_api.current_request)
    dependencies.image_service().delete(principal.user_id, image_id)
    return Response(body="", status_code=204)


def _image_response(record: ImageRecord) -> Response:
    return json_response(
        dependencies.presenter().image(record),
        headers={"ETag": f'"{record.version}"', "Cache-Control": "private, no-cache"},
    )
