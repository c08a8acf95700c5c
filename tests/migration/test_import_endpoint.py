"""``PUT /internal/images/{id}``: the service-credential upsert of legacy images."""

from __future__ import annotations

import json
import uuid
from typing import Any

from tests.conftest import local_token
from tests.functional.conftest import Stack

SERVICE = "legacy-gallery"


def service_headers(scope: str = "images:import") -> dict[str, str]:
    token = local_token(SERVICE, scopes=(scope,))
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def user_headers(user_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {local_token(user_id)}", "Content-Type": "application/json"}


def legacy_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "userId": "alice",
        "albumId": "album-1",
        "title": "Castle MOC",
        "description": "From the old gallery",
        "tags": ["castle", "moc"],
        "originalFilename": "castle.jpg",
        "contentType": "image/jpeg",
        "fileSize": 2480133,
        "imageKey": "images/alice/castle.jpg",
        "thumbnailKey": "images/alice/thumbs/castle.jpg",
        "width": 1600,
        "height": 1200,
        "createdAt": "2021-03-04T05:06:07.123456+00:00",
        "updatedAt": "2022-01-02T03:04:05.678901+00:00",
    }
    body.update(overrides)
    return body


def put(api: Any, image_id: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    return api.http.put(f"/internal/images/{image_id}", headers=headers or service_headers(), body=json.dumps(body))


def test_a_service_token_imports_a_completed_image_that_keeps_its_legacy_uuid_and_keys(
    api: Any, aws_stack: Stack
) -> None:
    image_id = str(uuid.uuid4())

    response = put(api, image_id, legacy_body())

    assert response.status_code == 201
    assert response.headers["X-Import-Outcome"] == "created"
    image = json.loads(response.body)
    assert image["id"] == image_id
    assert image["status"] == "completed"
    assert image["userId"] == "alice"
    assert image["tags"] == ["castle", "moc"]
    assert image["createdAt"] == "2021-03-04T05:06:07.123Z"
    assert image["updatedAt"] == "2022-01-02T03:04:05.678Z"
    assert image["uploadedAt"] == image["createdAt"]
    assert image["version"] == 1
    assert image["imageUrl"].endswith("/images/alice/castle.jpg")
    assert image["thumbnailUrl"].endswith("/images/alice/thumbs/castle.jpg")
    owner_view = api.http.get(f"/images/{image_id}", headers=user_headers("alice"))
    assert owner_view.status_code == 200
    assert json.loads(owner_view.body)["imageUrl"] == image["imageUrl"]
    item = aws_stack.dynamodb.get_item(
        TableName=aws_stack.table_name, Key={"PK": {"S": f"IMAGE#{image_id}"}, "SK": {"S": "METADATA"}}
    )["Item"]
    assert "GSI3PK" not in item  # no image.completed event is announced for a migrated image
    assert item["GSI1PK"] == {"S": "USER#alice"}


def test_an_image_without_a_legacy_thumbnail_uses_the_image_as_its_thumbnail(api: Any) -> None:
    response = put(api, str(uuid.uuid4()), legacy_body(thumbnailKey=None))

    image = json.loads(response.body)
    assert image["thumbnailUrl"] == image["imageUrl"]


def test_the_cognito_resource_server_form_of_the_scope_is_accepted(api: Any) -> None:
    response = put(api, str(uuid.uuid4()), legacy_body(), service_headers("image-service/images:import"))

    assert response.status_code == 201


def test_a_token_without_the_import_scope_is_refused_with_403_and_nothing_is_stored(api: Any) -> None:
    image_id = str(uuid.uuid4())

    for scope in ("images:read", "images:import:extra", "images-import", "other/images:importer"):
        response = put(api, image_id, legacy_body(), service_headers(scope))
        assert response.status_code == 403, scope
        assert json.loads(response.body)["error"]["code"] == "forbidden"
    assert api.http.get(f"/images/{image_id}", headers=user_headers("alice")).status_code == 404


def test_a_user_token_is_refused_with_403(api: Any) -> None:
    response = put(api, str(uuid.uuid4()), legacy_body(), user_headers("alice"))

    assert response.status_code == 403


def test_no_token_is_refused_with_401(api: Any) -> None:
    response = put(api, str(uuid.uuid4()), legacy_body(), {"Content-Type": "application/json"})

    assert response.status_code == 401


def test_a_newer_import_replaces_the_record_bumps_the_version_and_leaves_the_old_album(api: Any) -> None:
    image_id = str(uuid.uuid4())
    put(api, image_id, legacy_body())

    response = put(
        api, image_id, legacy_body(title="Renamed", albumId=None, updatedAt="2023-05-06T07:08:09.000000+00:00")
    )

    assert response.status_code == 200
    assert response.headers["X-Import-Outcome"] == "updated"
    image = json.loads(response.body)
    assert (image["title"], image["albumId"], image["version"]) == ("Renamed", None, 2)
    album = api.http.get("/images?albumId=album-1", headers=user_headers("alice"))
    assert image_id not in [i["id"] for i in json.loads(album.body)["images"]]


def test_an_older_import_is_refused_with_409_stale_update_and_changes_nothing(api: Any) -> None:
    image_id = str(uuid.uuid4())
    put(api, image_id, legacy_body(title="Newest", updatedAt="2024-01-01T00:00:00+00:00"))

    response = put(api, image_id, legacy_body(title="Older", updatedAt="2023-01-01T00:00:00+00:00"))

    assert response.status_code == 409
    assert json.loads(response.body)["error"]["code"] == "stale_update"
    stored = json.loads(api.http.get(f"/images/{image_id}", headers=user_headers("alice")).body)
    assert (stored["title"], stored["version"]) == ("Newest", 1)


def test_the_same_row_imported_again_answers_200_and_writes_nothing(api: Any) -> None:
    image_id = str(uuid.uuid4())
    put(api, image_id, legacy_body())

    response = put(api, image_id, legacy_body(title="Same timestamp, other title"))

    assert response.status_code == 200
    assert response.headers["X-Import-Outcome"] == "unchanged"
    assert json.loads(response.body)["title"] == "Castle MOC"
    assert json.loads(response.body)["version"] == 1


def test_an_import_never_overwrites_a_newer_edit_made_in_the_image_service(api: Any) -> None:
    image_id = str(uuid.uuid4())
    put(api, image_id, legacy_body(updatedAt="2020-01-01T00:00:00+00:00"))
    edited = api.http.patch(
        f"/images/{image_id}", headers=user_headers("alice"), body=json.dumps({"title": "Edited", "version": 1})
    )
    assert edited.status_code == 200

    response = put(api, image_id, legacy_body(title="Legacy", updatedAt="2021-01-01T00:00:00+00:00"))

    assert response.status_code == 409
    stored = json.loads(api.http.get(f"/images/{image_id}", headers=user_headers("alice")).body)
    assert stored["title"] == "Edited"


MAX_OBJECT_BYTES = 5 * 1024**4  # 5 TiB, S3's largest object

INVALID_FIELDS: list[tuple[dict[str, Any], str]] = [
    ({"fileSize": -1}, "fileSize"),
    ({"fileSize": MAX_OBJECT_BYTES + 1}, "fileSize"),
    ({"fileSize": 10**40}, "fileSize"),
    ({"width": 10**40}, "width"),
    ({"imageKey": ""}, "imageKey"),
    ({"imageKey": "/absolute/key.jpg"}, "imageKey"),
    ({"contentType": "jpeg"}, "contentType"),
    ({"createdAt": "2021-03-04T05:06:07"}, "createdAt"),
    ({"userId": "a/b"}, "userId"),
    ({"tags": ["ok", None]}, "tags.1"),
    ({"unexpected": 1}, "unexpected"),
]


def test_an_invalid_legacy_row_is_refused_with_400_naming_the_field(api: Any) -> None:
    for override, field in INVALID_FIELDS:
        response = put(api, str(uuid.uuid4()), legacy_body(**override))

        assert response.status_code == 400, override
        error = json.loads(response.body)["error"]
        assert error["code"] == "validation_error"
        assert field in [detail["field"] for detail in error["details"]], error


def test_an_id_that_is_neither_uuid_nor_ulid_is_refused_with_400(api: Any) -> None:
    response = put(api, "not-an-id", legacy_body())

    assert response.status_code == 400
    assert json.loads(response.body)["error"]["details"][0]["field"] == "id"


def test_a_file_of_s3s_largest_object_size_is_imported(api: Any) -> None:
    response = put(api, str(uuid.uuid4()), legacy_body(fileSize=MAX_OBJECT_BYTES))

    assert response.status_code == 201, response.body
    assert json.loads(response.body)["fileSize"] == MAX_OBJECT_BYTES
