"""PATCH /images/{id} and GET /images with bad input: API.md codes, details, never a 5xx."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from tests.functional.support import error_of, fields_named, post_image
from tests.migration.test_import_endpoint import legacy_body, service_headers

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


def listed(api: Any, headers: dict[str, str], query: str) -> list[str]:
    response = api.http.get(f"/images?{query}", headers=headers)
    assert response.status_code == 200, response.body
    return [image["id"] for image in response.json_body["images"]]


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


def test_a_cursor_for_the_longest_album_and_user_ids_is_accepted(api: Any, auth_for: AuthFor) -> None:
    user_id = "\U0001f600" * 128  # the longest user id, each character four bytes of UTF-8
    album_id = "\U0001f4f7" * 128  # the longest album id, likewise
    first, second = (new_image(api, auth_for, user_id, albumId=album_id) for _ in range(2))

    page = api.http.get(f"/images?limit=1&albumId={quote(album_id)}", headers=auth_for(user_id))
    assert page.status_code == 200, page.body
    cursor = page.json_body["nextCursor"]
    assert cursor
    rest = api.http.get(f"/images?limit=1&albumId={quote(album_id)}&cursor={cursor}", headers=auth_for(user_id))

    assert rest.status_code == 200, rest.body
    assert [page.json_body["images"][0]["id"], rest.json_body["images"][0]["id"]] == [second, first]


# -- album ids -------------------------------------------------------------------------


def test_an_imported_album_with_a_space_is_listed_for_its_owner(api: Any, auth_for: AuthFor) -> None:
    image_id = str(uuid.uuid4())
    imported = api.http.put(
        f"/internal/images/{image_id}", headers=service_headers(), body=json.dumps(legacy_body(albumId="Summer 2020"))
    )
    assert imported.status_code == 201, imported.body

    assert listed(api, auth_for("alice"), "albumId=Summer%202020") == [image_id]
    assert listed(api, auth_for("mallory"), "albumId=Summer%202020") == []
    # ...and its album can be sent back unchanged, and chosen for new images.
    edited = patch(api, image_id, auth_for("alice"), {"albumId": "Summer 2020", "title": "Beach", "version": 1})
    assert edited.status_code == 200, edited.body
    assert edited.json_body["albumId"] == "Summer 2020"
    uploaded = new_image(api, auth_for, albumId="Summer 2020")
    assert listed(api, auth_for("alice"), "albumId=Summer%202020") == [uploaded, image_id]


def test_an_album_id_is_free_text_stored_and_listed_as_it_is(api: Any, auth_for: AuthFor) -> None:
    for album_id in ("ALBUM#../x", "Été à Paris", "a/b?c=d&e", "x" * 128):
        image_id = new_image(api, auth_for, albumId=album_id)

        assert listed(api, auth_for("alice"), f"albumId={quote(album_id, safe='')}") == [image_id], album_id


def test_a_blank_control_or_over_long_album_id_is_400_naming_album_id(api: Any, auth_for: AuthFor) -> None:
    image_id = new_image(api, auth_for)

    for album_id in ("", " ", "\u3000", "tab\there", "nul\x00", "x" * 129):
        created = post_image(api, auth_for("alice"), albumId=album_id)
        edited = patch(api, image_id, auth_for("alice"), {"albumId": album_id, "version": 1})
        listing = api.http.get(f"/images?albumId={quote(album_id, safe='')}", headers=auth_for("alice"))

        for response in (created, edited, listing):
            assert fields_named(error_of(response, 400, "validation_error")) == {"albumId"}, album_id
