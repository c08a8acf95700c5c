"""Authentication (401), ownership (403) and unknown ids (404) over the HTTP API."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import jwt

from tests.conftest import LOCAL_ENV
from tests.functional.conftest import Stack
from tests.functional.support import create_body, error_of, post_image, user_image_items

AuthFor = Callable[[str], dict[str, str]]
TokenFor = Callable[[str], str]
SECRET = LOCAL_ENV["LOCAL_JWT_SECRET"]


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    values: dict[str, Any] = {
        "sub": "alice",
        "iss": LOCAL_ENV["JWT_ISSUER"],
        "aud": LOCAL_ENV["JWT_AUDIENCE"],
        "iat": now,
        "exp": now + 600,
    }
    values.update(overrides)
    return values


def bad_authorization_headers(valid_token: str) -> dict[str, dict[str, str]]:
    now = int(time.time())
    return {
        "missing header": {},
        "empty header": {"Authorization": ""},
        "scheme only": {"Authorization": "Bearer"},
        "token without scheme": {"Authorization": valid_token},
        "wrong scheme": {"Authorization": f"Basic {valid_token}"},
        "garbage token": {"Authorization": "Bearer not.a.token"},
        "truncated token": {"Authorization": f"Bearer {valid_token[:-5]}"},
        "expired token": {
            "Authorization": "Bearer " + jwt.encode(claims(iat=now - 7200, exp=now - 3600), SECRET, algorithm="HS256")
        },
        "wrong secret": {
            "Authorization": "Bearer " + jwt.encode(claims(), "x" * 48 + "-not-the-stage-secret", algorithm="HS256")
        },
        "wrong audience": {
            "Authorization": "Bearer " + jwt.encode(claims(aud="another-app"), SECRET, algorithm="HS256")
        },
        "wrong issuer": {
            "Authorization": "Bearer " + jwt.encode(claims(iss="https://issuer.invalid"), SECRET, algorithm="HS256")
        },
        "alg none": {"Authorization": "Bearer " + jwt.encode(claims(), "", algorithm="none")},
        "no subject": {
            "Authorization": "Bearer "
            + jwt.encode({k: v for k, v in claims().items() if k != "sub"}, SECRET, algorithm="HS256")
        },
    }


def test_every_missing_or_bad_token_is_401_unauthorized(
    api: Any, aws_stack: Stack, auth_for: AuthFor, token_for: TokenFor
) -> None:
    image_id = post_image(api, auth_for("alice")).json_body["id"]

    for case, headers in bad_authorization_headers(token_for("alice")).items():
        create = api.http.post(
            "/images", headers={"Content-Type": "application/json", **headers}, body=json.dumps(create_body())
        )
        status = api.http.get(f"/images/{image_id}/status", headers=headers)

        for response in (create, status):
            assert response.status_code == 401, (case, response.status_code, response.body)
            error_of(response, 401, "unauthorized")
    assert [i["id"] for i in user_image_items(aws_stack, "alice")] == [image_id]
    # Authentication comes first: an anonymous caller learns nothing about the body's validity.
    anonymous = api.http.post("/images", headers={"Content-Type": "application/json"}, body="{bad json")
    error_of(anonymous, 401, "unauthorized")


def test_a_valid_token_is_accepted_with_any_case_of_the_scheme(api: Any, token_for: TokenFor) -> None:
    for scheme in ("Bearer", "bearer", "BEARER"):
        headers = {"Authorization": f"{scheme} {token_for('alice')}", "Content-Type": "application/json"}

        assert api.http.post("/images", headers=headers, body=json.dumps(create_body())).status_code == 201


def test_health_needs_no_token(api: Any) -> None:
    response = api.http.get("/health")

    assert response.status_code == 200
    assert response.json_body == {"status": "ok"}


def test_another_users_image_status_is_403_forbidden(api: Any, auth_for: AuthFor) -> None:
    image_id = post_image(api, auth_for("alice")).json_body["id"]

    response = api.http.get(f"/images/{image_id}/status", headers=auth_for("mallory"))

    error_of(response, 403, "forbidden")
    assert "alice" not in response.body.decode()  # the owner is not revealed
    assert api.http.get(f"/images/{image_id}/status", headers=auth_for("alice")).status_code == 200


def test_an_unknown_or_malformed_image_id_is_404_not_found(api: Any, auth_for: AuthFor) -> None:
    for image_id in (
        "01JD3ZK4Q8N6W2T1R5Y7B9C0DE",  # well-formed, unknown
        "123e4567-e89b-12d3-a456-426614174000",  # legacy UUID shape, unknown
        "not-an-id",
        "01jd3zk4q8n6w2t1r5y7b9c0de",
        "x" * 300,
        "IMAGE%23x",
    ):
        response = api.http.get(f"/images/{image_id}/status", headers=auth_for("alice"))

        error_of(response, 404, "not_found")


def test_a_patch_of_an_unknown_or_another_users_image_is_404_or_403_before_any_version_check(
    api: Any, auth_for: AuthFor
) -> None:
    image_id = post_image(api, auth_for("alice")).json_body["id"]
    unknown = "01JD3ZK4Q8N6W2T1R5Y7B9C0DE"
    # No version (428), nothing to update (400), a bad If-Match (400), body and header
    # disagreeing (400): none of them is looked at before the image is known to be the caller's.
    requests: list[tuple[dict[str, str], dict[str, Any]]] = [
        ({}, {"title": "x"}),
        ({}, {"version": 1}),
        ({"If-Match": '"1"'}, {}),
        ({"If-Match": '"abc"'}, {"title": "x"}),
        ({"If-Match": '"2"'}, {"title": "x", "version": 1}),
    ]
    for extra, body in requests:
        for target, user, status, code in (
            (unknown, "alice", 404, "not_found"),
            (image_id, "mallory", 403, "forbidden"),
        ):
            response = api.http.patch(f"/images/{target}", headers={**auth_for(user), **extra}, body=json.dumps(body))

            error_of(response, status, code)
    # The owner gets the precondition and validation answers.
    error_of(
        api.http.patch(f"/images/{image_id}", headers=auth_for("alice"), body='{"title": "x"}'),
        428,
        "precondition_required",
    )
    error_of(
        api.http.patch(f"/images/{image_id}", headers=auth_for("alice"), body='{"version": 1}'), 400, "validation_error"
    )
