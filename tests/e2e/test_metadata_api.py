"""The image metadata API over HTTP against the local stack: list, get, patch, delete."""

from __future__ import annotations

import io
import time
import uuid

import pytest
import requests
from PIL import Image

from image_client.client import ApiError, ImageServiceClient


def _user(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 120, 200)).save(buffer, "PNG")
    return buffer.getvalue()


def _call(client: ImageServiceClient, method: str, path: str, **kwargs) -> requests.Response:
    headers = {"Authorization": f"Bearer {client.token}", **kwargs.pop("headers", {})}
    return requests.request(method, f"{client.api_url}{path}", headers=headers, timeout=30, **kwargs)


def _list_all(client: ImageServiceClient, limit: int, album_id: str | None = None) -> list[str]:
    ids: list[str] = []
    cursor = None
    for _ in range(100):
        params: dict[str, str | int] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        if album_id:
            params["albumId"] = album_id
        page = _call(client, "GET", "/images", params=params)
        assert page.status_code == 200, page.text
        body = page.json()
        assert len(body["images"]) <= limit
        ids += [image["id"] for image in body["images"]]
        cursor = body["nextCursor"]
        if cursor is None:
            return ids
    raise AssertionError("pagination did not end")


def test_small_pages_return_every_image_exactly_once_newest_first(client_for):
    client = client_for(_user("pages"))
    created = [client.create_upload(f"{n}.jpg", "image/jpeg", 100 + n)["id"] for n in range(23)]
    listed = _list_all(client, limit=4)
    assert listed == list(reversed(created))  # ULIDs and createdAt both grow with time


def test_edited_truncated_and_foreign_cursors_are_rejected(client_for):
    alice, bob = client_for(_user("alice")), client_for(_user("bob"))
    for n in range(3):
        alice.create_upload(f"{n}.jpg", "image/jpeg", 100)
    cursor = _call(alice, "GET", "/images", params={"limit": 1}).json()["nextCursor"]
    assert cursor
    payload, signature = cursor.split(".")
    tampered = [
        cursor[:-2],
        payload[:-1] + ("A" if payload[-1] != "A" else "B") + "." + signature,
        "not-a-cursor",
        payload,
    ]
    for bad in tampered:
        response = _call(alice, "GET", "/images", params={"cursor": bad})
        assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_cursor"), bad
    foreign = _call(bob, "GET", "/images", params={"cursor": cursor})
    assert (foreign.status_code, foreign.json()["error"]["code"]) == (400, "invalid_cursor")


def test_another_users_image_is_forbidden_everywhere_and_never_listed(client_for):
    owner, intruder = client_for(_user("owner")), client_for(_user("intruder"))
    image_id = owner.create_upload("mine.jpg", "image/jpeg", 100)["id"]
    intruder.create_upload("theirs.jpg", "image/jpeg", 100)
    for method, path, kwargs in [
        ("GET", f"/images/{image_id}", {}),
        ("GET", f"/images/{image_id}/status", {}),
        ("PATCH", f"/images/{image_id}", {"json": {"title": "pwned", "version": 1}}),
        ("DELETE", f"/images/{image_id}", {}),
    ]:
        response = _call(intruder, method, path, **kwargs)
        assert (response.status_code, response.json()["error"]["code"]) == (403, "forbidden"), (method, path)
    assert image_id not in _list_all(intruder, limit=50)
    assert _call(owner, "GET", f"/images/{image_id}").json()["title"] is None  # untouched


def test_patch_needs_the_current_version_and_increments_it(client_for):
    client = client_for(_user("patch"))
    image_id = client.create_upload("p.jpg", "image/jpeg", 100, title="Before")["id"]
    no_version = _call(client, "PATCH", f"/images/{image_id}", json={"title": "After"})
    assert (no_version.status_code, no_version.json()["error"]["code"]) == (428, "precondition_required")
    first = _call(client, "PATCH", f"/images/{image_id}", json={"title": "After", "version": 1})
    assert first.status_code == 200, first.text
    assert (first.json()["title"], first.json()["version"], first.headers["ETag"]) == ("After", 2, '"2"')
    stale = _call(client, "PATCH", f"/images/{image_id}", json={"title": "Lost update", "version": 1})
    assert (stale.status_code, stale.json()["error"]["code"]) == (409, "version_conflict")
    by_header = _call(client, "PATCH", f"/images/{image_id}", json={"tags": ["a", "b"]}, headers={"If-Match": '"2"'})
    assert by_header.status_code == 200
    assert (by_header.json()["tags"], by_header.json()["title"], by_header.json()["version"]) == (
        ["a", "b"],
        "After",
        3,
    )


def test_changing_the_album_moves_the_image_between_album_listings(client_for):
    client = client_for(_user("album"))
    album_a, album_b = f"a-{uuid.uuid4().hex[:6]}", f"b-{uuid.uuid4().hex[:6]}"
    image_id = client.create_upload("x.jpg", "image/jpeg", 100, albumId=album_a)["id"]
    other = client.create_upload("y.jpg", "image/jpeg", 100)["id"]
    assert _list_all(client, 10, album_a) == [image_id]
    moved = _call(client, "PATCH", f"/images/{image_id}", json={"albumId": album_b, "version": 1})
    assert moved.json()["albumId"] == album_b
    assert _list_all(client, 10, album_a) == []
    assert _list_all(client, 10, album_b) == [image_id]
    cleared = _call(client, "PATCH", f"/images/{image_id}", json={"albumId": None, "version": 2})
    assert cleared.json()["albumId"] is None
    assert _list_all(client, 10, album_b) == []
    assert set(_list_all(client, 10)) == {image_id, other}


def test_delete_removes_the_record_and_every_object(client_for, aws):
    client = client_for(_user("delete"))
    data = _png()
    created = client.create_upload("d.png", "image/png", len(data))
    client.upload(created, data, "d.png")
    final = client.wait_until_done(created["id"], timeout=60)
    assert final["status"] == "completed"
    assert client.fetch(final["thumbnailUrl"])
    response = _call(client, "DELETE", f"/images/{created['id']}")
    assert response.status_code == 204
    with pytest.raises(ApiError) as gone:
        client.status(created["id"])
    assert gone.value.status == 404
    for url in (final["imageUrl"], final["thumbnailUrl"]):
        assert requests.get(url, timeout=10).status_code == 404
    s3 = aws("s3")
    listed = s3.list_objects_v2(Bucket="image-service-uploads-local", Prefix=created["upload"]["fields"]["key"])
    assert listed.get("KeyCount", 0) == 0
    again = _call(client, "DELETE", f"/images/{created['id']}")
    assert (again.status_code, again.json()["error"]["code"]) == (404, "not_found")
    assert created["id"] not in _list_all(client, 50)


@pytest.mark.parametrize("path", ["/no-such-endpoint", "/images/x/y/z"])
def test_an_unknown_route_is_a_404_in_the_api_error_body_without_echoing_the_token(client_for, path) -> None:
    client = client_for(_user("nowhere"))

    response = _call(client, "GET", path)

    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == "not_found" and error["requestId"]
    assert client.token not in response.text


def test_the_local_stack_logs_request_paths_without_their_query_string(stack) -> None:
    secret = f"query-secret-{uuid.uuid4().hex}"

    assert requests.get(f"{stack.api_url}/demo?token={secret}", timeout=30).status_code == 200

    for _ in range(50):  # the log is read by a thread: give it a moment
        if any('"GET /demo?... HTTP/1.1" 200' in line for line in list(stack.log)):
            break
        time.sleep(0.1)
    lines = list(stack.log)
    assert any('"GET /demo?... HTTP/1.1" 200' in line for line in lines)
    assert not any(secret in line for line in lines)
