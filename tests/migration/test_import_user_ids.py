"""Legacy user ids that would break object keys and URLs (chalicelib.models.user_ids):
the import endpoint refuses them naming ``userId``, the backfill lists their rows as
failed with the reason before any write, and every other legacy id is migrated as it is."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from chalicelib.models.domain import ImageRecord
from migration.backfill import WriteMode
from migration.stage import StageTable, open_stage_table
from tests.migration.conftest import Gallery
from tests.migration.test_backfill import MODES, backfill, repository
from tests.migration.test_import_endpoint import legacy_body, put, user_headers

REFUSED = {
    ".": "must not be '.' or '..'",
    "..": "must not be '.' or '..'",
    "alice\nbob": "must not contain control",
    "tab\there": "must not contain control",
    "a\u2028b": "must not contain control",
    "a/b": "must not contain '/'",
    "x" * 129: "at most 128 characters",
}
KEPT = ["Jane Doe", "50%", "#7?", "Zoë 日本", "user+tag@example.com", "..."]


@pytest.fixture
def stage_table(stack_env: dict[str, str]) -> StageTable:
    return open_stage_table("local")


@pytest.mark.parametrize("user_id", REFUSED, ids=["dot", "dot-dot", "newline", "tab", "u2028", "slash", "129"])
def test_the_import_endpoint_refuses_such_a_user_id_with_400_naming_the_field(api: Any, user_id: str) -> None:
    image_id = str(uuid.uuid4())

    response = put(api, image_id, legacy_body(userId=user_id))

    assert response.status_code == 400, response.body
    error = json.loads(response.body)["error"]
    assert error["code"] == "validation_error"
    assert [(d["field"], REFUSED[user_id] in d["message"]) for d in error["details"]] == [("userId", True)]
    assert api.http.get(f"/images/{image_id}", headers=user_headers("alice")).status_code == 404


@pytest.mark.parametrize("user_id", KEPT)
def test_any_other_legacy_user_id_is_imported_as_it_is(api: Any, user_id: str) -> None:
    image_id = str(uuid.uuid4())

    response = put(api, image_id, legacy_body(userId=user_id))

    assert response.status_code == 201, response.body
    assert json.loads(api.http.get(f"/images/{image_id}", headers=user_headers(user_id)).body)["userId"] == user_id


@pytest.mark.parametrize("mode", MODES)
def test_the_backfill_fails_rows_whose_user_id_is_refused_before_any_write(
    gallery: Gallery, stage_table: StageTable, tmp_path: Path, mode: WriteMode
) -> None:
    gallery.seed(40, start=70_000 + 100 * MODES.index(mode))
    ids = gallery.ids()
    bad = dict(zip(ids[1::5], REFUSED, strict=False))  # seven rows, spread over the batches
    kept = dict(zip(ids[2::5], KEPT, strict=False))
    for image_id, user_id in {**bad, **kept}.items():
        gallery.execute("UPDATE gallery_images SET user_id = %s WHERE id = %s", (user_id, image_id))
    written: list[str] = []

    def before_write(records: Sequence[ImageRecord]) -> None:
        written.extend(record.id for record in records)

    summary = backfill(gallery, stage_table, tmp_path, mode, before_write, batch_size=10).run()

    reasons = {failure.image_id: failure.reason for failure in summary.failures}
    assert set(reasons) == set(bad)
    for image_id, user_id in bad.items():
        assert reasons[image_id].startswith("user_id: ") and REFUSED[user_id] in reasons[image_id], reasons[image_id]
    assert not set(written) & set(bad)  # refused before any write
    stored = repository(stage_table).get_many(ids)
    assert set(stored) == set(ids) - set(bad)
    assert {image_id: stored[image_id].user_id for image_id in kept} == kept
    assert (summary.counts.read, summary.counts.failed) == (40, len(bad))
