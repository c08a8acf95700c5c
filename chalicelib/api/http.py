"""The HTTP edge: body parsing, authentication, and the one mapping of errors to responses."""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Callable
from typing import Any

from chalice.app import Request, Response
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from chalicelib import dependencies, logs
from chalicelib.auth import Principal, bearer_token
from chalicelib.errors import (
    DomainError,
    FieldProblem,
    Forbidden,
    IdempotencyKeyReused,
    InvalidCursor,
    NotFound,
    PayloadTooLarge,
    PreconditionRequired,
    StaleUpdate,
    TransientFailure,
    Unauthenticated,
    UnsupportedMediaType,
    ValidationFailed,
    VersionConflict,
    WebhookLimitReached,
)
from chalicelib.models.common import pattern_message
from chalicelib.models.responses import ErrorDetail, ErrorInfo, ErrorResponse

JSON_CONTENT_TYPE = "application/json; charset=utf-8"

# Chalice answers some requests itself (unknown method, wrong Content-Type, crashes)
# with {"Code": ..., "Message": ...}; we reshape those into the API.md error body.
_CHALICE_CODES = {
    "UnsupportedMediaType": ("unsupported_media_type", "Send the request body as application/json."),
    "MethodNotAllowedError": ("method_not_allowed", "This method is not allowed on this path."),
    "BadRequestError": ("bad_request", "The request is not valid."),
    "NotFoundError": ("not_found", "No such resource."),
    "InternalServerError": ("internal_error", "Something went wrong on our side. Try again later."),
}


# The one mapping from domain error to HTTP status (API.md's table of error codes). Every
# error type has its entry; a subclass of one (``ImportRefused`` is a ``Forbidden``) answers
# like it, and ``DomainError`` itself, a crash, is the 500.
HTTP_STATUS: dict[type[DomainError], int] = {
    DomainError: 500,
    ValidationFailed: 400,
    UnsupportedMediaType: 400,
    InvalidCursor: 400,
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    VersionConflict: 409,
    WebhookLimitReached: 409,
    StaleUpdate: 409,
    PayloadTooLarge: 413,
    IdempotencyKeyReused: 422,
    PreconditionRequired: 428,
    TransientFailure: 503,
}


def status_for(error: DomainError) -> int:
    """The HTTP status of ``error``: its type's, or that of the nearest type it derives from."""
    for kind in type(error).__mro__:
        if kind in HTTP_STATUS:
            return HTTP_STATUS[kind]
    return HTTP_STATUS[DomainError]


def request_id(request: Request | None) -> str:
    context = getattr(request, "context", None) or {}
    value = context.get("requestId") if isinstance(context, dict) else None
    return str(value) if value else str(uuid.uuid4())


def json_response(
    body: BaseModel | dict[str, Any], status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    payload = body.model_dump(mode="json", by_alias=True) if isinstance(body, BaseModel) else body
    return Response(
        body=json.dumps(payload, separators=(",", ":")),
        status_code=status_code,
        headers={"Content-Type": JSON_CONTENT_TYPE, **(headers or {})},
    )


def error_response(error: DomainError, req_id: str) -> Response:
    status = status_for(error)
    details = getattr(error, "details", None)
    info = ErrorInfo(
        code=error.code,
        message=error.message,
        request_id=req_id,
        details=[ErrorDetail(field=d.field, message=d.message) for d in details] if details else None,
    )
    headers = {"WWW-Authenticate": 'Bearer realm="image-service"'} if status == 401 else {}
    return json_response(ErrorResponse(error=info), status, headers)


def problem_message(error: ErrorDetails) -> str:
    """A validation error in a client's words: a pattern mismatch says what the value must
    be (``described_pattern``), never the regular expression; a validator's ``ValueError``
    says its own message, without pydantic's "Value error, " in front."""
    context = error.get("ctx") or {}
    if error["type"] == "string_pattern_mismatch":
        return pattern_message(str(context.get("pattern", "")))
    if error["type"] == "value_error" and "error" in context:
        return str(context["error"])
    return error["msg"]


def field_problems(exc: ValidationError) -> list[FieldProblem]:
    return [
        FieldProblem(field=".".join(str(p) for p in err["loc"]) or "body", message=problem_message(err))
        for err in exc.errors()
    ]


def _validate[M: BaseModel](model: type[M], payload: dict[str, Any], what: str) -> M:
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise ValidationFailed(f"The {what} has invalid fields.", field_problems(exc)) from exc


def parse_body[M: BaseModel](request: Request, model: type[M]) -> M:
    """Validate the JSON body into ``model``; any problem is a 400 naming the fields."""
    raw = request.raw_body
    if not raw:
        raise _body_problem("The request body must be a JSON object.", "is empty; send a JSON object")
    try:
        payload = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, bad UTF-8, absurd nesting
        raise _body_problem("The request body is not valid JSON.", "is not valid JSON") from exc
    if not isinstance(payload, dict):
        raise _body_problem("The request body must be a JSON object.", "must be a JSON object")
    return _validate(model, payload, "request body")


def _body_problem(message: str, detail: str) -> ValidationFailed:
    return ValidationFailed(message, [FieldProblem(field="body", message=detail)])


def parse_query[M: BaseModel](request: Request, model: type[M]) -> M:
    """Validate the query string into ``model``; problems are a 400 naming the parameters."""
    return _validate(model, dict(request.query_params or {}), "query string")


def authenticate(request: Request) -> Principal:
    principal = dependencies.token_verifier().verify(bearer_token(request.headers.get("authorization")))
    logs.bind(userId=principal.user_id)
    return principal


def api_view(view: Callable[..., Response]) -> Callable[..., Response]:
    """Wrap a view so domain errors become API.md error bodies and crashes a bare 500."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            return view(*args, **kwargs)
        except DomainError as exc:
            if status_for(exc) >= 500:
                logs.error("request failed", exc_info=True, code=exc.code)
            return error_response(exc, _current_request_id())
        except Exception:
            logs.error("unhandled error", exc_info=True)
            return error_response(DomainError(), _current_request_id())

    return wrapper


def _current_request_id() -> str:
    return logs.current("requestId") or str(uuid.uuid4())


def reshape_chalice_errors(request: Request, get_response: Callable[[Request], Response]) -> Response:
    """HTTP middleware: request-scoped log context and API.md-shaped built-in errors."""
    req_id = request_id(request)
    with logs.log_context(requestId=req_id):
        response = get_response(request)
        body = response.body
        if response.status_code >= 400 and isinstance(body, dict) and "Code" in body and "error" not in body:
            code, message = _CHALICE_CODES.get(str(body.get("Code")), ("error", "The request could not be handled."))
            # Keep what Chalice said besides the body, e.g. the Allow header of a 405.
            kept = {k: v for k, v in response.headers.items() if isinstance(v, str) and k.lower() != "content-type"}
            response = json_response(
                {"error": {"code": code, "message": message, "requestId": req_id}},
                response.status_code,
                kept,
            )
        response.headers.setdefault("X-Request-Id", req_id)
        return response


def install(app: Any) -> None:
    """Register the HTTP middleware on the Chalice app."""
    app.register_middleware(reshape_chalice_errors, "http")
