"""An import can neither take over an image the service itself created nor hand a
migrated image to another user: the import endpoint (``PUT /internal/images/{id}``) and
the repository guards under it, including the conditional backfill's transactions."""

from __future__ import annotations

import json
import uuid
from typing import Any

from chalicelib.models.domain import ImageRecord
from chalicelib.models.imports import ImportImageRequest
from chalicelib.repositories.imports import StoredVersion, UpsertOutcome
from chalicelib.services.imports import build_record
from migration.batch_repository import BatchImportRepository
from tests.functional.conftest import Stack
from tests.functional.support import image_item, post_image
from tests.migration.test_import_endpoint import legacy_body, put, user_headers


def native_image(api: Any, owner: str = "alice") -> str:
    """An image created through ``POST /images`` (a ULID, no legacy keys)."""
    response = post_image(api, user_headers(owner), title="Alice's own")
    assert response.status_code == 201
    image_id: str = json.loads(response.body)["id"]
    return image_id


def imported_record(image_id: str, **overrides: Any) -> ImageRecord:
    return build_record(image_id, ImportImageRequest.model_validate(legacy_body(**overrides)))


def stored(stack: Stack, image_id: str) -> dict[str, Any]:
    item = image_item(stack, image_id)
    assert item is not None
    return item


def error(response: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(response.body)["error"]
    return body


# -- the endpoint ------------------------------------------------------------------------


def test_an_import_token_cannot_take_over_an_image_created_in_the_service(api: Any, aws_stack: Stack) -> None:
    image_id = native_image(api)
    before = stored(aws_stack, image_id)

    response = put(api, image_id, legacy_body(userId="mallory", updatedAt="2099-01-01T00:00:00+00:00"))

    assert response.status_code == 400
    assert error(response)["code"] == "validation_error"
    assert [d["field"] for d in error(response)["details"]] == ["id"]
    assert stored(aws_stack, image_id) == before
    assert api.http.get(f"/images/{image_id}", headers=user_headers("alice")).status_code == 200
    assert api.http.get(f"/images/{image_id}", headers=user_headers("mallory")).status_code == 403
    assert api.http.delete(f"/images/{image_id}", headers=user_headers("mallory")).status_code == 403
    assert stored(aws_stack, image_id) == before


def test_an_import_never_changes_the_owner_of_a_migrated_image(api: Any, aws_stack: Stack) -> None:
    image_id = str(uuid.uuid4())
    assert put(api, image_id, legacy_body(updatedAt="2022-01-01T00:00:00+00:00")).status_code == 201
    before = stored(aws_stack, image_id)

    for updated_at in ("2023-01-01T00:00:00+00:00", "2022-01-01T00:00:00+00:00", "2021-01-01T00:00:00+00:00"):
        response = put(api, image_id, legacy_body(userId="mallory", title="Mine now", updatedAt=updated_at))

        assert response.status_code == 403, updated_at
        assert error(response)["code"] == "forbidden"
        assert "alice" not in response.body.decode() and "Castle" not in response.body.decode()  # nothing leaks
        assert stored(aws_stack, image_id) == before
    assert api.http.get(f"/images/{image_id}", headers=user_headers("mallory")).status_code == 403
    assert api.http.delete(f"/images/{image_id}", headers=user_headers("mallory")).status_code == 403
    owner_view = json.loads(api.http.get(f"/images/{image_id}", headers=user_headers("alice")).body)
    assert (owner_view["userId"], owner_view["title"], owner_view["version"]) == ("alice", "Castle MOC", 1)


def test_an_upper_case_or_braced_uuid_is_refused_like_a_ulid(api: Any) -> None:
    image_id = str(uuid.uuid4())
    for candidate in (image_id.upper(), f"{{{image_id}}}", image_id.replace("-", "")):
        response = put(api, candidate, legacy_body())

        assert response.status_code == 400, candidate
        assert error(response)["details"][0]["field"] == "id"


# -- the repository (the upsert and the backfill's transactions) -------------------------


def test_the_upsert_refuses_to_replace_a_record_it_did_not_import(api: Any, aws_stack: Stack) -> None:
    image_id = native_image(api)
    before = stored(aws_stack, image_id)
    repository = BatchImportRepository(aws_stack.dynamodb, aws_stack.table_name)

    for owner in ("mallory", "alice"):
        result = repository.upsert(imported_record(image_id, userId=owner, updatedAt="2099-01-01T00:00:00+00:00"))

        assert result.outcome is UpsertOutcome.CONFLICT, owner
    assert stored(aws_stack, image_id) == before


def test_the_upsert_refuses_to_give_an_imported_record_another_owner(aws_stack: Stack) -> None:
    repository = BatchImportRepository(aws_stack.dynamodb, aws_stack.table_name)
    image_id = str(uuid.uuid4())
    assert repository.upsert(imported_record(image_id)).outcome is UpsertOutcome.CREATED
    before = stored(aws_stack, image_id)

    result = repository.upsert(imported_record(image_id, userId="mallory", updatedAt="2099-01-01T00:00:00+00:00"))

    assert result.outcome is UpsertOutcome.CONFLICT
    assert stored(aws_stack, image_id) == before
    newer = repository.upsert(imported_record(image_id, title="Renamed", updatedAt="2099-01-01T00:00:00+00:00"))
    assert (newer.outcome, newer.record.user_id, newer.record.version) == (UpsertOutcome.UPDATED, "alice", 2)


def test_a_backfill_transaction_writes_nothing_over_a_native_record_or_another_owner(
    api: Any, aws_stack: Stack
) -> None:
    """The transaction's own conditions refuse it, whatever the caller believed it saw."""
    repository = BatchImportRepository(aws_stack.dynamodb, aws_stack.table_name)
    native_id = native_image(api)
    native = stored(aws_stack, native_id)
    migrated_id = str(uuid.uuid4())
    repository.upsert(imported_record(migrated_id))
    migrated = stored(aws_stack, migrated_id)
    later = "2099-01-01T00:00:00+00:00"

    def over(image_id: str, current: dict[str, Any], owner: str) -> tuple[ImageRecord, StoredVersion]:
        record = imported_record(image_id, userId=owner, updatedAt=later).model_copy(update={"version": 2})
        return record, StoredVersion(updated_at=current["updatedAt"], version=int(current["version"]), deleted=False)

    assert repository.put_all_if_unchanged([over(native_id, native, "alice")]) is False
    assert repository.put_all_if_unchanged([over(migrated_id, migrated, "mallory")]) is False
    assert (stored(aws_stack, native_id), stored(aws_stack, migrated_id)) == (native, migrated)
    assert repository.put_all_if_unchanged([over(migrated_id, migrated, "alice")]) is True
