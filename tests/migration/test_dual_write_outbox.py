"""Dropped dual-writes land in a durable outbox (the legacy database's table, or a file
when the table cannot be written), and the replay command sends them again, safely."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from tenacity import wait_none

from migration.dual_write import DualWriteOutcome, DualWriter
from migration.legacy import LegacySource
from migration.outbox import OUTBOX_SCHEMA, FileOutbox, PostgresOutbox
from migration.sandbox import LocalStackProcess, free_port
from tests.conftest import PROJECT_ROOT, local_token
from tests.migration.conftest import Gallery
from tests.migration.misbehaving import MisbehavingServer


def service_token() -> str:
    return local_token("legacy-gallery", scopes=("images:import",))


@pytest.fixture
def outbox_db(gallery: Gallery) -> Gallery:
    """The legacy database with the outbox table, as the operator creates it."""
    gallery.execute(OUTBOX_SCHEMA.read_text())
    return gallery


def writer(url: str, gallery: Gallery, tmp_path: Path, dsn: str | None = None) -> DualWriter:
    environ = {
        "ENABLE_DYNAMODB_DUAL_WRITE": "true",
        "IMAGE_SERVICE_URL": url,
        "DUAL_WRITE_OUTBOX_DSN": dsn or gallery.dsn,
        "DUAL_WRITE_OUTBOX_FILE": str(tmp_path / "outbox.jsonl"),
    }
    return DualWriter.from_environ(environ, service_token, read_timeout=0.3, attempts=2, wait=wait_none())


def outbox_rows(gallery: Gallery) -> dict[str, tuple[int, str]]:
    rows = gallery.execute("SELECT image_id::text, failures, reason FROM gallery_dual_write_outbox")
    return {str(image_id): (int(failures), str(reason)) for image_id, failures, reason in rows}


def rows_of(gallery: Gallery) -> list[Any]:
    with LegacySource(gallery.dsn) as source:
        return [row for batch in source.stream_after(None, 100) for row in batch]


@pytest.mark.parametrize(("mode", "reason"), [("error", "HTTP 503"), ("bad_request", "HTTP 400")])
def test_a_dual_write_dropped_after_its_retries_or_refused_lands_in_the_outbox_table(
    outbox_db: Gallery, tmp_path: Path, mode: str, reason: str
) -> None:
    outbox_db.seed(1)
    (row,) = rows_of(outbox_db)
    with MisbehavingServer(mode) as server:
        dual = writer(server.url, outbox_db, tmp_path)
        outcomes = [dual.after_legacy_write(row), dual.after_legacy_write(row)]

    assert outcomes == [DualWriteOutcome.FAILED] * 2
    failures, recorded = outbox_rows(outbox_db)[row.id]
    assert failures == 2 and reason in recorded
    assert (dual.stats.failed, dual.stats.kept, dual.stats.lost) == (2, 2, 0)
    assert not (tmp_path / "outbox.jsonl").exists()


def test_a_dropped_write_lands_in_the_file_when_the_outbox_table_cannot_be_written(
    outbox_db: Gallery, tmp_path: Path
) -> None:
    outbox_db.seed(1)
    (row,) = rows_of(outbox_db)
    unreachable = f"host=127.0.0.1 port={free_port()} dbname=gallery user=postgres"
    dual = writer(f"http://127.0.0.1:{free_port()}", outbox_db, tmp_path, dsn=unreachable)

    outcome = dual.after_legacy_write(row)

    assert outcome is DualWriteOutcome.FAILED
    (entry,) = FileOutbox.read(tmp_path / "outbox.jsonl")
    assert entry.image_id == row.id
    assert "outbox table unavailable" in entry.reason
    assert dual.stats.kept == 1


def replay(gallery: Gallery, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "migration.replay_outbox", "--dsn", gallery.dsn, "--url", url, *extra],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env={"PATH": "/usr/bin:/bin", "IMAGE_SERVICE_TOKEN": service_token()},
        timeout=120,
        check=False,
    )


def served(local_stack: LocalStackProcess, image_id: str, user_id: str) -> requests.Response:
    headers = {"Authorization": f"Bearer {local_token(user_id)}"}
    return requests.get(f"{local_stack.api_url}/images/{image_id}", headers=headers, timeout=10)


def test_a_replay_sends_each_row_as_it_is_now_empties_the_outbox_and_can_run_again(
    outbox_db: Gallery, local_stack: LocalStackProcess, tmp_path: Path
) -> None:
    outbox_db.seed(3, start=500_000)
    edited, unchanged, deleted = rows_of(outbox_db)
    with MisbehavingServer("error") as server:
        dual = writer(server.url, outbox_db, tmp_path)
        for row in (edited, unchanged, deleted):
            dual.after_legacy_write(row)
    outbox_db.execute(
        "UPDATE gallery_images SET title = 'edited after the drop', updated_at = now() WHERE id = %s", (edited.id,)
    )
    outbox_db.execute("DELETE FROM gallery_images WHERE id = %s", (deleted.id,))

    first = replay(outbox_db, local_stack.api_url)
    again = replay(outbox_db, local_stack.api_url)
    dual.outbox.record(unchanged.id, "dropped twice")  # type: ignore[union-attr]
    repeated = replay(outbox_db, local_stack.api_url)

    assert first.returncode == 0, first.stdout + first.stderr
    assert "replayed 3 dropped dual-write(s): 2 written, 0 stale (newer already stored), 1 no longer" in first.stdout
    assert served(local_stack, edited.id, edited.user_id).json()["title"] == "edited after the drop"
    assert served(local_stack, unchanged.id, unchanged.user_id).json()["title"] == unchanged.title
    assert served(local_stack, deleted.id, deleted.user_id).status_code == 404
    assert (again.returncode, again.stdout.splitlines()[0].split(":")[0]) == (0, "replayed 0 dropped dual-write(s)")
    assert repeated.returncode == 0 and "1 written" in repeated.stdout  # the same row again: newer-wins
    assert outbox_rows(outbox_db) == {}


def test_a_row_that_still_fails_stays_in_the_outbox_with_the_new_reason(
    outbox_db: Gallery, local_stack: LocalStackProcess, tmp_path: Path
) -> None:
    outbox_db.seed(1, start=510_000)
    (row,) = rows_of(outbox_db)
    with MisbehavingServer("error") as server:
        writer(server.url, outbox_db, tmp_path).after_legacy_write(row)
    outbox_db.execute("UPDATE gallery_images SET tags = ARRAY['ok', NULL] WHERE id = %s", (row.id,))

    result = replay(outbox_db, local_stack.api_url)

    assert result.returncode == 1
    assert f"still failing {row.id}: row does not fit the import model" in result.stdout
    failures, reason = outbox_rows(outbox_db)[row.id]
    assert failures == 2 and "tags.1" in reason


def test_an_entry_recorded_again_while_a_replay_ran_is_kept_for_the_next_one(outbox_db: Gallery) -> None:
    outbox_db.seed(1)
    (row,) = rows_of(outbox_db)
    outbox = PostgresOutbox(outbox_db.dsn)
    outbox.record(row.id, "first drop")
    (read,) = outbox.entries()
    time.sleep(0.01)
    outbox.record(row.id, "a newer drop, after the replay read the entry")

    removed = outbox.remove(read)

    assert removed is False
    assert outbox_rows(outbox_db)[row.id] == (2, "a newer drop, after the replay read the entry")
    outbox.close()


def test_a_file_outbox_is_replayed_and_keeps_only_what_still_fails(
    outbox_db: Gallery, local_stack: LocalStackProcess, tmp_path: Path
) -> None:
    outbox_db.seed(2, start=520_000)
    good, bad = rows_of(outbox_db)
    outbox_db.execute("UPDATE gallery_images SET tags = ARRAY['ok', NULL] WHERE id = %s", (bad.id,))
    file = FileOutbox(tmp_path / "outbox.jsonl")
    for row in (good, bad):
        file.record(row.id, "HTTP 503", datetime(2026, 1, 1, tzinfo=UTC))

    result = replay(outbox_db, local_stack.api_url, "--file", str(file.path), "--no-table")

    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 written" in result.stdout
    assert [e.image_id for e in FileOutbox.read(file.path)] == [bad.id]
    assert not (tmp_path / "outbox.jsonl.replaying").exists()
    assert served(local_stack, good.id, good.user_id).status_code == 200


def test_the_replay_without_a_token_or_the_table_is_a_one_line_error(gallery: Gallery) -> None:
    missing_table = replay(gallery, "http://127.0.0.1:1")
    no_token = subprocess.run(
        [sys.executable, "-m", "migration.replay_outbox", "--dsn", gallery.dsn, "--url", "http://x"],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env={"PATH": "/usr/bin:/bin"},
        check=False,
    )

    assert missing_table.returncode == 2 and len(missing_table.stderr.strip().splitlines()) == 1
    assert "gallery_dual_write_outbox" in missing_table.stderr and "dual_write_outbox.sql" in missing_table.stderr
    assert no_token.returncode == 2 and "IMAGE_SERVICE_TOKEN" in no_token.stderr


def test_the_outbox_file_lines_are_json_with_the_id_reason_and_time(tmp_path: Path) -> None:
    FileOutbox(tmp_path / "o.jsonl").record("5d0c3f52-7a3e-4c55-9f0a-3c8b0c7f2a11", "HTTP 503")

    (line,) = (tmp_path / "o.jsonl").read_text().splitlines()

    values = json.loads(line)
    assert values["id"] == "5d0c3f52-7a3e-4c55-9f0a-3c8b0c7f2a11" and values["reason"] == "HTTP 503"
    assert datetime.fromisoformat(values["failedAt"]).tzinfo is not None
