"""PATCH /images/{id} and GET /images with bad input: API.md codes, details, never a 5xx."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tests.functional.support import error_of, fields_named, post_image

AuthFor = Callable[[str], dict[str, str]]
MAX_VERSION = 2**53 - 1  # Number.MAX_SAFE_INTEGER


def patch(api: Any, image_id: str, headers: dict[str, str], body: object) -> Any:
    raw = body if isinstance(body, str) else json.dumps(body)
    return api.http.patch(f"/images/{image_id}", headers=headers, body=raw)


def new_image(api: Any, auth_for: AuthFor, user_id: str = "alice", **overrides: Any) -> str:
    response = post_image(api, auth_for(user_id), **overrides)
    assert response.status_code == 201, response.body
    image_id: str = response.json_body["id"]
    return image_id


# -- PATCH: versions -------------------------------------------------------------------


def test_a_body_version_beyond_the_largest_is_400_naming_version(api: Any, auth_for: AuthFor) -> None:
    image_id = new_image(api, auth_for)

    for version in (10**40, 10**20, MAX_VERSION + 1, 1e40):
        response = patch(api, image_id, auth_for("alice"), {"title": "x", "version": version})

        error = error_of(response, 400, "validation_error")
        assert fields_named(error) == {"version"}, (version, error)


def test_the_largest_version_is_a_stale_version_not_bad_input(api: Any, auth_for: AuthFor) -> None:
    image_id = new_image(api, auth_for)

    by_body = patch(api, image_id, auth_for("alice"), {"title": "x", "version": MAX_VERSION})
    by_header = patch(api, image_id, {**auth_for("alice"), "If-Match": f'"{MAX_VERSION}"'}, {"title": "x"})

    error_of(by_body, 409, "version_conflict")
    error_of(by_header, 409, "version_conflict")


def test_an_if_match_that_is_not_a_version_is_400_naming_if_match(api: Any, auth_for: AuthFor) -> None:
    image_id = new_image(api, auth_for)

    for value in ('"' + "9" * 45 + '"', "9" * 5000, f'"{MAX_VERSION + 1}"', '"0"', '"-1"', '"abc"', '"3.0"', '"²"'):
        response = patch(api, image_id, {**auth_for("alice"), "If-Match": value}, {"title": "x"})

        error = error_of(response, 400, "validation_error")
        assert fields_named(error) == {"If-Match"}, (value[:60], error)


def test_a_body_version_and_an_if_match_that_disagree_are_400_naming_both(api: Any, auth_for: AuthFor) -> None:
    image_id = new_image(api, auth_for)

    response = patch(api, image_id, {**auth_for("alice"), "If-Match": '"2"'}, {"title": "x", "version": 1})

    error = error_of(response, 400, "validation_error")
    assert fields_named(error) == {"version", "If-Match"}, error


def test_nothing_to_update_is_400_with_a_detail_on_the_body(api: Any, auth_for: AuthFor) -> None:
    image_id = new_image(api, auth_for)

    for headers, body in ((auth_for("alice"), {"version": 1}), ({**auth_for("alice"), "If-Match": '"1"'}, {})):
        response = patch(api, image_id, headers, body)

        error = error_of(response, 400, "validation_error")
        assert fields_named(error) == {"body"}, error


def test_a_patch_body_that_is_not_a_json_object_is_400_with_a_detail_on_the_body(api: Any, auth_for: AuthFor) -> None:
    image_id = new_image(api, auth_for)

    for raw in ("", "{bad json", "[]", "null", '"text"', "1"):
        response = patch(api, image_id, auth_for("alice"), raw)

        error = error_of(response, 400, "validation_error")
        assert fields_named(error) == {"body"}, (raw, error)


# -- GET /images: cursors --------------------------------------------------------------


def test_any_cursor_that_is_not_one_of_ours_is_400_invalid_cursor(api: Any, auth_for: AuthFor) -> None:
    new_image(api, auth_for)

    for cursor in ("", "x" * 3000, "a" * 5000 + "." + "b" * 5000, "a.b", "not-a-cursor", "%00%01", "%C3%A9.%C3%A9"):
        response = api.http.get(f"/images?cursor={cursor}", headers=auth_for("alice"))

        error_of(response, 400, "invalid_cursor")
