"""A migrated image deleted through the service stays deleted: its record becomes a
tombstone that no import (endpoint, backfill in either mode, late dual-write) replaces,
the public API answers 404 for it, and the verification reports records whose row is gone."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from chalicelib.models.common import parse_time
from chalicelib.repositories.images import TOMBSTONE_DAYS, ImageQueries
from chalicelib.repositories.imports import UpsertOutcome
from migration.backfill import Backfill, BackfillOptions, WriteMode
from migration.batch_repository import BatchImportRepository
from migration.dual_write import DualWriteOutcome, DualWriter
from migration.legacy import LegacySource, row_to_record
from migration.stage import StageTable, open_stage_table
from tests.conftest import local_token
from tests.functional.conftest import Stack
from tests.functional.support import post_image
from tests.migration.conftest import Gallery, run_command
from tests.migration.test_import_endpoint import legacy_body, put, user_headers

MODES = [WriteMode.CONDITIONAL, WriteMode.BATCH]


def stored_item(stack: Stack, image_id: str) -> dict[str, Any] | None:
    item: dict[str, Any] | None = stack.dynamodb.get_item(
        TableName=stack.table_name, Key={"PK": {"S": f"IMAGE#{image_id}"}, "SK": {"S": "METADATA"}}, ConsistentRead=True
    ).get("Item")
    return item


def object_keys(stack: Stack) -> set[str]:
    return {o["Key"] for o in stack.s3.list_objects_v2(Bucket=stack.image_bucket).get("Contents", [])}


def imported_with_objects(api: Any, stack: Stack, **overrides: Any) -> tuple[str, dict[str, Any]]:
    image_id = str(uuid.uuid4())
    body = legacy_body(
        imageKey=f"images/alice/{image_id}.jpg", thumbnailKey=f"images/alice/thumbnails/{image_id}.jpg", **overrides
    )
    for key in (body["imageKey"], body["thumbnailKey"]):
        stack.s3.put_object(Bucket=stack.image_bucket, Key=key, Body=b"legacy bytes")
    assert put(api, image_id, body).status_code == 201
    return image_id, body


def answers_for_a_gone_image(api: Any, image_id: str) -> list[int]:
    alice, bob = user_headers("alice"), user_headers("bob")
    patched = api.http.patch(f"/images/{image_id}", headers=alice, body=json.dumps({"title": "x", "version": 1}))
    return [
        api.http.get(f"/images/{image_id}", headers=alice).status_code,
        api.http.get(f"/images/{image_id}/status", headers=alice).status_code,
        patched.status_code,
        api.http.delete(f"/images/{image_id}", headers=alice).status_code,
        api.http.get(f"/images/{image_id}", headers=bob).status_code,
        api.http.delete(f"/images/{image_id}", headers=bob).status_code,
    ]


def listed(api: Any, query: str = "") -> list[str]:
    response = api.http.get(f"/images?{query}", headers=user_headers("alice"))
    assert response.status_code == 200
    return [image["id"] for image in json.loads(response.body)["images"]]


def test_a_deleted_migrated_image_is_not_brought_back_by_a_retried_or_newer_import(api: Any, aws_stack: Stack) -> None:
    image_id, body = imported_with_objects(api, aws_stack)

    deleted = api.http.delete(f"/images/{image_id}", headers=user_headers("alice"))
    retried_import = put(api, image_id, body)  # a late dual-write retry of the same row
    newer_import = put(api, image_id, legacy_body(**{**body, "updatedAt": "2030-01-01T00:00:00+00:00"}))

    assert deleted.status_code == 204
    for response in (retried_import, newer_import):
        assert response.status_code == 409, response.body
        error = json.loads(response.body)["error"]
        assert error["code"] == "stale_update"
        assert "deleted" in error["message"]
    assert object_keys(aws_stack).isdisjoint({body["imageKey"], body["thumbnailKey"]})
    assert answers_for_a_gone_image(api, image_id) == [404, 404, 404, 404, 404, 404]
    assert image_id not in listed(api)
    assert image_id not in listed(api, "albumId=album-1")


def test_the_tombstone_keeps_only_what_the_guards_need_and_expires_after_the_documented_days(
    api: Any, aws_stack: Stack
) -> None:
    image_id, body = imported_with_objects(api, aws_stack)

    assert api.http.delete(f"/images/{image_id}", headers=user_headers("alice")).status_code == 204

    item = stored_item(aws_stack, image_id)
    assert item is not None
    assert item["userId"] == {"S": "alice"}
    assert item["legacyImageKey"] == {"S": body["imageKey"]}
    assert item["updatedAt"] == {"S": "2022-01-02T03:04:05.678Z"}
    assert item["purged"] == {"BOOL": True}
    deleted_at = parse_time(item["deletedAt"]["S"])
    assert int(item["ttl"]["N"]) == int(deleted_at.timestamp()) + TOMBSTONE_DAYS * 86_400
    assert not {name for name in item if name.startswith("GSI")}
    assert not {"title", "description", "tags", "albumId", "legacyThumbnailKey", "width"} & set(item)
    assert item["originalFilename"] == {"S": ""}


def test_a_delete_that_crashed_before_the_objects_were_removed_is_finished_by_a_retried_delete(
    api: Any, aws_stack: Stack
) -> None:
    image_id, body = imported_with_objects(api, aws_stack)
    queries = ImageQueries(aws_stack.dynamodb, aws_stack.table_name)
    queries.begin_delete(image_id, "alice", "2026-11-22T00:00:00.000Z")  # the crash comes right after
    assert api.http.get(f"/images/{image_id}", headers=user_headers("alice")).status_code == 404
    assert {body["imageKey"], body["thumbnailKey"]} <= object_keys(aws_stack)

    retried = api.http.delete(f"/images/{image_id}", headers=user_headers("alice"))
    again = api.http.delete(f"/images/{image_id}", headers=user_headers("alice"))

    assert (retried.status_code, again.status_code) == (204, 404)
    assert object_keys(aws_stack).isdisjoint({body["imageKey"], body["thumbnailKey"]})
    item = stored_item(aws_stack, image_id)
    assert item is not None and item["purged"] == {"BOOL": True}
    assert put(api, image_id, body).status_code == 409


def test_another_users_delete_of_a_migrated_image_under_way_is_still_403(api: Any, aws_stack: Stack) -> None:
    image_id, _ = imported_with_objects(api, aws_stack)
    ImageQueries(aws_stack.dynamodb, aws_stack.table_name).begin_delete(image_id, "alice", "2026-11-22T00:00:00.000Z")

    assert api.http.delete(f"/images/{image_id}", headers=user_headers("bob")).status_code == 403


def test_a_deleted_image_the_service_created_leaves_no_record(api: Any, aws_stack: Stack, auth_for: Any) -> None:
    created = post_image(api, auth_for("alice"))
    image_id = created.json_body["id"]

    first = api.http.delete(f"/images/{image_id}", headers=auth_for("alice"))
    again = api.http.delete(f"/images/{image_id}", headers=auth_for("alice"))

    assert (first.status_code, again.status_code) == (204, 404)
    assert stored_item(aws_stack, image_id) is None


# -- the backfill and the dual-write against the local stack ---------------------------------


@pytest.fixture
def stage_table(api_stack_env: dict[str, str]) -> StageTable:
    """The local stage's own table: the local stack's API deletes there."""
    return open_stage_table("local")


def delete_through_the_api(api_url: str, image_id: str, user_id: str) -> None:
    response = requests.delete(
        f"{api_url}/images/{image_id}", headers={"Authorization": f"Bearer {local_token(user_id)}"}, timeout=10
    )
    assert response.status_code == 204, response.text


def run_backfill(gallery: Gallery, table: StageTable, tmp_path: Path, mode: WriteMode, restart: bool) -> Any:
    options = BackfillOptions(
        stage="local",
        checkpoint_path=tmp_path / "checkpoint.json",
        batch_size=40,
        workers=4,
        write_mode=mode,
        progress=False,
        restart=restart,
    )
    with LegacySource(gallery.dsn) as source:
        return Backfill(source, table, options).run()


@pytest.mark.parametrize("mode", MODES)
def test_a_backfill_of_an_older_snapshot_does_not_bring_back_an_image_deleted_through_the_service(
    gallery: Gallery, stage_table: StageTable, local_stack: Any, tmp_path: Path, mode: WriteMode
) -> None:
    gallery.seed(30, start=300_000 + 1000 * MODES.index(mode))  # rows no other test writes to this table
    run_backfill(gallery, stage_table, tmp_path, mode, restart=False)
    with LegacySource(gallery.dsn) as source:
        (row, *_) = [row for batch in source.stream_after(None, 30) for row in batch]
    delete_through_the_api(local_stack.api_url, row.id, row.user_id)

    # The legacy row is still there (legacy deletes are not dual-written): a re-run reads it.
    summary = run_backfill(gallery, stage_table, tmp_path, mode, restart=True)
    late_retry = DualWriter(
        local_stack.api_url, lambda: local_token("legacy-gallery", scopes=("images:import",))
    ).after_legacy_write(row)

    counts = summary.counts
    assert (counts.read, counts.skipped_deleted, counts.unchanged, counts.created, counts.failed) == (30, 1, 29, 0, 0)
    assert late_retry is DualWriteOutcome.STALE
    repository = BatchImportRepository(stage_table.client, stage_table.table_name)
    assert repository.stored_versions([row.id])[row.id].deleted
    answer = requests.get(
        f"{local_stack.api_url}/images/{row.id}",
        headers={"Authorization": f"Bearer {local_token(row.user_id)}"},
        timeout=10,
    )
    assert answer.status_code == 404


def test_neither_a_transaction_nor_an_upsert_replaces_a_tombstone(gallery: Gallery, stack_env: dict[str, str]) -> None:
    table = open_stage_table("local")
    gallery.seed(1)
    with LegacySource(gallery.dsn) as source:
        (row,) = source.rows_by_id(gallery.ids())
    repository = BatchImportRepository(table.client, table.table_name)
    record = row_to_record(row)
    repository.upsert(record)
    queries = ImageQueries(table.client, table.table_name)
    queries.begin_delete(record.id, record.user_id, "2026-11-22T00:00:00.000Z")
    queries.finish_delete(record.id)

    transaction = repository.put_all_if_unchanged([(record.model_copy(update={"version": 1}), None)])
    upserted = repository.upsert(record.model_copy(update={"updated_at": "2099-01-01T00:00:00.000Z"}))

    assert transaction is False
    assert upserted.outcome is UpsertOutcome.DELETED
    assert repository.stored_versions([record.id])[record.id].deleted
    assert repository.delete_if_unchanged(record.id, record.updated_at) is False


def test_verify_reports_an_imported_record_whose_row_is_gone_and_a_row_whose_image_was_deleted(
    gallery: Gallery, stack_env: dict[str, str], tmp_path: Path
) -> None:
    table = open_stage_table("local")
    gallery.seed(12, start=400_000)
    run_backfill(gallery, table, tmp_path, WriteMode.CONDITIONAL, restart=False)
    orphan, deleted, both = gallery.ids()[2], gallery.ids()[5], gallery.ids()[7]
    queries = ImageQueries(table.client, table.table_name)
    user_of = {str(i): str(u) for i, u in gallery.execute("SELECT id, user_id FROM gallery_images")}
    for image_id in (deleted, both):  # deleted through the service (the same calls as its DELETE)
        queries.begin_delete(image_id, user_of[image_id], "2026-11-22T00:00:00.000Z")
        queries.finish_delete(image_id)
    gallery.execute("DELETE FROM gallery_images WHERE id = ANY(%s::uuid[])", ([orphan, both],))

    verified = run_command(
        "verify_migration.py",
        *("--dsn", gallery.dsn, "--stage", "local", "--report", str(tmp_path / "r.json"), "--no-progress"),
        *("--scan-segments", "3"),
        env=stack_env,
    )

    assert verified.returncode == 1, verified.stdout + verified.stderr
    assert f"ORPHAN {orphan}: an imported record with no gallery_images row" in verified.stdout
    assert f"DELETED {deleted}: deleted through the Image Service" in verified.stdout
    assert both not in verified.stdout  # deleted on both sides: nothing to report
    assert "9 match" in verified.stdout and "1 of 10 imported records without a row" in verified.stdout
    report = json.loads((tmp_path / "r.json").read_text())
    assert (report["orphaned"], report["deleted"], report["importedScanned"]) == ([orphan], [deleted], 10)
    assert orphan in verified.stderr and deleted in verified.stderr
