"""Domain errors: messages that quote what a client sent keep it short and escaped, and
the one mapping of error types to HTTP statuses (``chalicelib.api.http``) covers them all."""

from __future__ import annotations

import importlib
import pkgutil

import chalicelib
from chalicelib.api.http import HTTP_STATUS, error_response, status_for
from chalicelib.errors import (
    MAX_QUOTED_ID_LENGTH,
    DomainError,
    NotFound,
    StaleUpdate,
    Unauthenticated,
    ValidationFailed,
    quoted_id,
)
from chalicelib.services.imports import ImportRefused


def test_an_id_the_service_could_have_issued_is_quoted_whole() -> None:
    ulid = "01JD3ZK4Q8N6W2T1R5Y7B9C0DE"
    assert NotFound.of("image", ulid).message == f"No image with id '{ulid}'."
    uuid = "123e4567-e89b-12d3-a456-426614174000"
    assert quoted_id(uuid) == repr(uuid)


def test_a_long_id_is_cut_to_a_short_prefix() -> None:
    message = NotFound.of("webhook", "A" * 100_000).message

    assert message == f"No webhook with id '{'A' * MAX_QUOTED_ID_LENGTH}…'."
    assert len(message) < 80


def test_control_characters_are_escaped_and_cannot_lengthen_the_message_without_bound() -> None:
    assert quoted_id("a\nb") == "'a\\nb'"
    worst = quoted_id("\U0010ffff" * 10_000)  # each escapes to 10 characters
    assert "\n" not in quoted_id("\n" * 50) and len(worst) <= MAX_QUOTED_ID_LENGTH * 10 + 3


# -- the one mapping from domain errors to HTTP statuses ---------------------------------


def _every_domain_error() -> set[type[DomainError]]:
    """Every subclass of ``DomainError`` the runtime defines (every chalicelib module is
    imported first, so an error declared beside its service is found too)."""
    for module in pkgutil.walk_packages(chalicelib.__path__, "chalicelib."):
        importlib.import_module(module.name)
    found: set[type[DomainError]] = set()
    pending = [DomainError]
    while pending:
        for subclass in pending.pop().__subclasses__():
            if subclass.__module__.startswith("chalicelib.") and subclass not in found:
                found.add(subclass)
                pending.append(subclass)
    return found


def test_domain_errors_carry_no_http_status() -> None:
    errors: set[type[DomainError]] = {DomainError, *_every_domain_error()}
    for error in errors:
        assert not hasattr(error, "status_code"), error


def test_every_domain_error_has_a_status_of_its_own_kind_not_the_500_of_a_crash() -> None:
    """An error type added without an entry in ``http.HTTP_STATUS`` fails here: it would
    otherwise answer 500 like a crash. A subclass of a mapped error (``ImportRefused`` is a
    ``Forbidden``) answers like its parent, which is what subclassing it says."""
    errors = _every_domain_error()
    assert len(errors) >= 14
    unmapped = sorted(
        error.__qualname__
        for error in errors
        if next(kind for kind in error.__mro__ if kind in HTTP_STATUS) is DomainError
    )
    assert unmapped == []


def test_each_error_code_answers_with_the_status_api_md_gives_it() -> None:
    expected = {
        "validation_error": 400,
        "unsupported_media_type": 400,
        "invalid_cursor": 400,
        "unauthorized": 401,
        "forbidden": 403,
        "not_found": 404,
        "version_conflict": 409,
        "webhook_limit_reached": 409,
        "stale_update": 409,
        "payload_too_large": 413,
        "idempotency_key_reused": 422,
        "precondition_required": 428,
        "service_unavailable": 503,
        "internal_error": 500,
    }
    errors: set[type[DomainError]] = {DomainError, *_every_domain_error()}
    answered = {error.code: status_for(_instance(error)) for error in errors}
    assert answered == expected


def _instance(error: type[DomainError]) -> DomainError:
    if issubclass(error, ValidationFailed):
        return error("invalid", [])
    return error()


def test_the_response_carries_the_mapped_status_and_a_401_says_how_to_authenticate() -> None:
    unauthenticated = error_response(Unauthenticated(), "req-1")
    assert unauthenticated.status_code == 401
    assert unauthenticated.headers["WWW-Authenticate"] == 'Bearer realm="image-service"'
    refused = error_response(ImportRefused(), "req-2")
    assert refused.status_code == 403 and "WWW-Authenticate" not in refused.headers
    assert error_response(StaleUpdate(), "req-3").status_code == 409
