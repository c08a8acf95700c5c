"""The backfill into the local stack: every row arrives, newer records are never
replaced, concurrent changes are repaired, and the commands fail with clear messages."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from chalicelib.models.domain import ImageRecord
from chalicelib.repositories.imports import UpsertOutcome
from migration.backfill import Backfill, BackfillOptions, WriteMode
from migration.batch_repository import BatchImportRepository
from migration.legacy import LegacySource, row_to_record
from migration.sandbox import free_port
from migration.stage import StageTable, open_stage_table
from migration.verify import Verification
from tests.conftest import PROJECT_ROOT
from tests.migration.conftest import Gallery, run_command
from tests.migration.misbehaving import RefusingDynamoDB

MODES = [WriteMode.CONDITIONAL, WriteMode.BATCH]


@pytest.fixture
def table(stack_env: dict[str, str]) -> StageTable:
    return open_stage_table("local")


def repository(table: StageTable) -> BatchImportRepository:
    return BatchImportRepository(table.client, table.table_name)


def backfill(
    gallery: Gallery, table: StageTable, tmp_path: Path, mode: WriteMode, before_write=None, **options
) -> Backfill:
    settings = BackfillOptions(
        stage="local",
        checkpoint_path=tmp_path / "checkpoint.json",
        batch_size=options.pop("batch_size", 40),
        workers=4,
        write_mode=mode,
        progress=False,
        **options,
    )
    return Backfill(LegacySource(gallery.dsn), table, settings, before_write)


@pytest.mark.parametrize("mode", [m.value for m in MODES])
def test_every_row_is_migrated_and_the_verification_passes(
    gallery: Gallery, stack_env: dict[str, str], tmp_path: Path, mode: str
) -> None:
    gallery.seed(200, start=1000 * [m.value for m in MODES].index(mode))  # rows no other test writes
    checkpoint = tmp_path / "checkpoint.json"

    migrated = run_command(
        "migrate_gallery.py",
        *("--dsn", gallery.dsn, "--stage", "local", "--batch-size", "64", "--write-mode", mode),
        *("--checkpoint", str(checkpoint), "--summary-json", str(tmp_path / "summary.json")),
        env=stack_env,
    )
    verified = run_command(
        "verify_migration.py",
        *("--dsn", gallery.dsn, "--stage", "local", "--report", str(tmp_path / "report.json"), "--no-progress"),
        env=stack_env,
    )

    assert migrated.returncode == 0, migrated.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert (summary["read"], summary["created"], summary["failed"]) == (200, 200, 0)
    assert "rows/s" in migrated.stdout and "peak memory" in migrated.stdout
    assert "rows" in migrated.stderr  # the progress bar (rate and ETA) goes to stderr
    assert json.loads(checkpoint.read_text())["rowsCommitted"] == 200
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "200 match, 0 missing, 0 differ" in verified.stdout
    assert json.loads((tmp_path / "report.json").read_text())["ok"] is True


def test_a_backfill_and_its_verification_leave_their_files_under_the_ignored_folder(
    gallery: Gallery, stack_env: dict[str, str], tmp_path: Path
) -> None:
    """Run from a checkout with the defaults, the checkpoint and the verification report
    land in ``.migration/`` (ignored by git), nothing beside it: ``git status`` stays clean."""
    gallery.seed(20, start=90_000)
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    dsn = ("--dsn", gallery.dsn, "--stage", "local")
    migrated = run_command("migrate_gallery.py", *dsn, "--no-progress", env=stack_env, cwd=checkout)
    verified = run_command("verify_migration.py", *dsn, "--no-progress", env=stack_env, cwd=checkout)

    assert migrated.returncode == 0, migrated.stderr
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert sorted(path.name for path in checkout.iterdir()) == [".migration"]
    assert sorted(path.name for path in (checkout / ".migration").iterdir()) == [
        "local.checkpoint.json",
        "verify-local.json",
    ]
    assert json.loads((checkout / ".migration" / "verify-local.json").read_text())["ok"] is True
    assert ".migration/" in (PROJECT_ROOT / ".gitignore").read_text().splitlines()


@pytest.mark.parametrize("mode", MODES)
def test_a_newer_record_already_in_dynamodb_is_never_replaced_and_an_older_one_is(
    gallery: Gallery, table: StageTable, tmp_path: Path, mode: WriteMode
) -> None:
    gallery.seed(50, start=10_000 + 100 * MODES.index(mode))
    with LegacySource(gallery.dsn) as source:
        rows = [row for batch in source.stream_after(None, 50) for row in batch]
    newer = row_to_record(rows[0]).model_copy(
        update={"title": "dual-written later", "updated_at": "2099-01-01T00:00:00.000Z"}
    )
    older = row_to_record(rows[1]).model_copy(update={"title": "stale copy", "updated_at": "2000-01-01T00:00:00.000Z"})
    for record in (newer, older):
        repository(table).upsert(record)

    summary = backfill(gallery, table, tmp_path, mode).run()

    stored = repository(table).get_many([rows[0].id, rows[1].id])
    assert stored[rows[0].id].title == "dual-written later"
    assert stored[rows[1].id].title == rows[1].title
    assert stored[rows[1].id].version == 2
    counts = summary.counts
    assert (counts.read, counts.skipped_older, counts.updated, counts.created) == (50, 1, 1, 48)


@pytest.mark.parametrize("mode", MODES)
def test_a_row_whose_stored_record_has_another_owner_is_failed_not_replaced_nor_skipped(
    gallery: Gallery, table: StageTable, tmp_path: Path, mode: WriteMode
) -> None:
    gallery.seed(20, start=20_000 + 100 * MODES.index(mode))
    with LegacySource(gallery.dsn) as source:
        rows = [row for batch in source.stream_after(None, 20) for row in batch]
    # Stored earlier for another owner, and older than the row: only the owner stops it.
    theirs = row_to_record(rows[0]).model_copy(
        update={"user_id": "someone-else", "title": "theirs", "updated_at": "2000-01-01T00:00:00.000Z"}
    )
    repository(table).upsert(theirs)

    summary = backfill(gallery, table, tmp_path, mode).run()

    stored = repository(table).get_many([rows[0].id])[rows[0].id]
    assert (stored.user_id, stored.title) == ("someone-else", "theirs")
    counts = summary.counts
    assert (counts.read, counts.failed, counts.skipped_older, counts.created) == (20, 1, 0, 19)
    assert [f.image_id for f in summary.failures] == [rows[0].id]
    assert "another owner" in summary.failures[0].reason
    # The gallery and the table are shared by the module's tests, whose verifications
    # walk every row: leave no difference behind.
    gallery.execute("DELETE FROM gallery_images WHERE id = %s", (rows[0].id,))
    table.client.delete_item(
        TableName=table.table_name, Key={"PK": {"S": f"IMAGE#{rows[0].id}"}, "SK": {"S": "METADATA"}}
    )


def dual_write_once(
    gallery: Gallery, table: StageTable, changed: list[str], pick: int
) -> Callable[[Sequence[ImageRecord]], None]:
    """A ``before_write`` hook: the first time, the legacy API edits ``records[pick]`` and
    dual-writes it (after its commit), between the backfill's read and its write."""

    def dual_write_meanwhile(records: Sequence[ImageRecord]) -> None:
        if changed:
            return
        target = records[pick]
        changed.append(target.id)
        gallery.execute(
            "UPDATE gallery_images SET title = 'edited during backfill', updated_at = updated_at + interval '1 hour' "
            "WHERE id = %s",
            (target.id,),
        )
        with LegacySource(gallery.dsn) as source:
            (row,) = source.rows_by_id([target.id])
        repository(table).upsert(row_to_record(row))

    return dual_write_meanwhile


def test_batch_mode_repairs_a_row_dual_written_between_its_read_and_its_write(
    gallery: Gallery, table: StageTable, tmp_path: Path
) -> None:
    gallery.seed(80, start=20_000)
    changed: list[str] = []
    dual_write_meanwhile = dual_write_once(gallery, table, changed, pick=0)

    summary = backfill(gallery, table, tmp_path, WriteMode.BATCH, dual_write_meanwhile).run()

    assert summary.counts.repaired == 1
    assert repository(table).get_many(changed)[changed[0]].title == "edited during backfill"
    with LegacySource(gallery.dsn) as source:
        assert Verification(source, table, sample=None, progress=False).run().ok


def test_conditional_mode_keeps_a_row_dual_written_between_its_read_and_its_transaction(
    gallery: Gallery, table: StageTable, tmp_path: Path
) -> None:
    gallery.seed(150, start=25_000)
    changed: list[str] = []
    # The last record is in the batch's second transaction (records 100..149).
    dual_write_meanwhile = dual_write_once(gallery, table, changed, pick=-1)

    summary = backfill(gallery, table, tmp_path, WriteMode.CONDITIONAL, dual_write_meanwhile, batch_size=150).run()

    # The second transaction lost the race and wrote nothing; its 50 rows were then written
    # one by one, and the dual-written row (newer) was left as it was.
    counts = summary.counts
    assert (counts.read, counts.created, counts.skipped_older, counts.failed) == (150, 149, 1, 0)
    assert repository(table).get_many(changed)[changed[0]].title == "edited during backfill"
    with LegacySource(gallery.dsn) as source:
        assert Verification(source, table, sample=None, progress=False).run().ok


def test_batch_mode_removes_again_a_row_deleted_from_postgresql_during_the_backfill(
    gallery: Gallery, table: StageTable, tmp_path: Path
) -> None:
    gallery.seed(40, start=30_000)
    deleted: list[str] = []

    def delete_meanwhile(records: Sequence[ImageRecord]) -> None:
        if not deleted:
            deleted.append(records[-1].id)
            gallery.execute("DELETE FROM gallery_images WHERE id = %s", (records[-1].id,))

    summary = backfill(gallery, table, tmp_path, WriteMode.BATCH, delete_meanwhile).run()

    assert summary.counts.removed == 1
    assert repository(table).get_many(deleted) == {}


def test_a_second_run_needs_resume_or_restart_and_a_restart_rewrites_nothing(
    gallery: Gallery, stack_env: dict[str, str], tmp_path: Path
) -> None:
    gallery.seed(60, start=40_000)
    args = ("--dsn", gallery.dsn, "--stage", "local", "--checkpoint", str(tmp_path / "cp.json"), "--no-progress")
    first = run_command("migrate_gallery.py", *args, env=stack_env)

    again = run_command("migrate_gallery.py", *args, env=stack_env)
    restarted = run_command("migrate_gallery.py", *args, "--restart", env=stack_env)

    assert first.returncode == 0
    assert again.returncode == 2
    assert "--resume" in again.stderr and len(again.stderr.strip().splitlines()) == 1
    assert restarted.returncode == 0
    assert "unchanged            60" in restarted.stdout


def test_a_dry_run_maps_every_row_and_writes_nothing(gallery: Gallery, table: StageTable, tmp_path: Path) -> None:
    gallery.seed(30, start=50_000)

    summary = backfill(gallery, None, tmp_path, WriteMode.CONDITIONAL, dry_run=True).run()  # type: ignore[arg-type]

    assert (summary.counts.read, summary.counts.written, summary.counts.failed) == (30, 0, 0)
    assert repository(table).get_many(gallery.ids()) == {}
    assert not (tmp_path / "checkpoint.json").exists()


def test_a_row_that_does_not_fit_is_reported_by_id_and_every_other_row_is_migrated(
    gallery: Gallery, stack_env: dict[str, str], tmp_path: Path
) -> None:
    gallery.seed(20, start=60_000)
    bad_id = gallery.ids()[5]
    gallery.execute("UPDATE gallery_images SET tags = ARRAY['ok', NULL] WHERE id = %s", (bad_id,))
    checkpoint = tmp_path / "cp.json"

    migrated = run_command(
        "migrate_gallery.py",
        *("--dsn", gallery.dsn, "--stage", "local", "--checkpoint", str(checkpoint), "--no-progress"),
        env=stack_env,
    )
    verified = run_command(
        "verify_migration.py",
        *("--dsn", gallery.dsn, "--stage", "local", "--report", str(tmp_path / "r.json"), "--no-progress"),
        env=stack_env,
    )

    assert migrated.returncode == 1
    assert f"failed row {bad_id}: tags.1" in migrated.stdout
    assert json.loads(Path(f"{checkpoint}.failures.jsonl").read_text().splitlines()[0])["id"] == bad_id
    assert "written              19" in migrated.stdout
    assert verified.returncode == 1
    assert bad_id in verified.stderr
    assert "19 match" in verified.stdout


def test_verify_names_a_row_changed_in_postgresql_after_the_migration_and_a_missing_record(
    gallery: Gallery, table: StageTable, stack_env: dict[str, str], tmp_path: Path
) -> None:
    gallery.seed(25, start=70_000)
    backfill(gallery, table, tmp_path, WriteMode.BATCH).run()
    changed, missing = gallery.ids()[3], gallery.ids()[9]
    gallery.execute(
        "UPDATE gallery_images SET title = 'renamed later', updated_at = updated_at + interval '1 day' WHERE id = %s",
        (changed,),
    )
    table.client.delete_item(TableName=table.table_name, Key={"PK": {"S": f"IMAGE#{missing}"}, "SK": {"S": "METADATA"}})

    verified = run_command(
        "verify_migration.py",
        *("--dsn", gallery.dsn, "--stage", "local", "--report", str(tmp_path / "r.json"), "--no-progress"),
        env=stack_env,
    )

    assert verified.returncode == 1
    assert f"MISMATCH {changed}: title: expected 'renamed later'" in verified.stdout
    assert f"MISSING {missing}" in verified.stdout
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["missing"] == [missing]
    assert report["mismatched"][0]["id"] == changed
    assert set(report["mismatched"][0]["fields"]) == {"title", "updated_at"}


def test_verify_can_check_a_random_sample(
    gallery: Gallery, table: StageTable, stack_env: dict[str, str], tmp_path: Path
) -> None:
    gallery.seed(50, start=80_000)
    backfill(gallery, table, tmp_path, WriteMode.BATCH).run()

    verified = run_command(
        "verify_migration.py",
        *("--dsn", gallery.dsn, "--stage", "local", "--sample", "10", "--report", str(tmp_path / "r.json")),
        "--no-progress",
        env=stack_env,
    )

    assert verified.returncode == 0
    assert json.loads((tmp_path / "r.json").read_text())["checked"] == 10


# -- clear errors --------------------------------------------------------------------------


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stdout + result.stderr
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return str(lines[0])


def test_bad_input_to_the_backfill_is_a_one_line_error_not_a_traceback(
    gallery: Gallery, stack_env: dict[str, str], postgres: Any
) -> None:
    unreachable = {**stack_env, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"}
    cases = [
        (("--dsn", "host=127.0.0.1 port=1 dbname=x", "--stage", "local"), stack_env, "cannot connect to PostgreSQL"),
        (("--dsn", "not a dsn", "--stage", "local"), stack_env, "invalid --dsn"),
        (("--dsn", gallery.dsn, "--stage", "moon"), stack_env, "unknown stage 'moon'"),
        (("--dsn", gallery.dsn, "--stage", "local"), unreachable, "cannot reach DynamoDB"),
        (("--dsn", postgres.dsn("postgres"), "--stage", "local"), stack_env, "table 'gallery_images' not found"),
    ]
    for args, env, message in cases:
        assert message in one_line_error(run_command("migrate_gallery.py", *args, env=env)), args


def test_bad_input_to_the_verification_is_a_one_line_error_not_a_traceback(
    gallery: Gallery, stack_env: dict[str, str]
) -> None:
    cases = [
        (("--dsn", "host=127.0.0.1 port=1 dbname=x", "--stage", "local"), "cannot connect to PostgreSQL"),
        (("--dsn", gallery.dsn, "--stage", "moon"), "unknown stage 'moon'"),
    ]
    for args, message in cases:
        assert message in one_line_error(run_command("verify_migration.py", *args, env=stack_env)), args


@pytest.mark.parametrize("script", ["migrate_gallery.py", "verify_migration.py"])
@pytest.mark.parametrize("code", ["AccessDeniedException", "ExpiredTokenException"])
def test_a_refused_batch_get_is_a_one_line_error_not_a_traceback_nor_exit_1(
    gallery: Gallery, stack_env: dict[str, str], tmp_path: Path, script: str, code: str
) -> None:
    gallery.seed(10)
    with RefusingDynamoDB(stack_env["AWS_ENDPOINT_URL"], {"BatchGetItem"}, code) as proxy:
        result = run_command(
            script,
            *("--dsn", gallery.dsn, "--stage", "local", "--no-progress"),
            *("--checkpoint", str(tmp_path / "cp.json")) if script == "migrate_gallery.py" else (),
            *("--report", str(tmp_path / "r.json")) if script == "verify_migration.py" else (),
            env={**stack_env, "AWS_ENDPOINT_URL": proxy.url},
        )

    assert f"DynamoDB refused BatchGetItem: {code}" in one_line_error(result)


@pytest.mark.parametrize("mode", [m.value for m in MODES])
def test_a_restart_repairs_a_row_changed_within_the_same_millisecond_that_a_plain_upsert_leaves(
    gallery: Gallery, stack_env: dict[str, str], tmp_path: Path, mode: str
) -> None:
    gallery.seed(30)
    args = ("--dsn", gallery.dsn, "--stage", "local", "--checkpoint", str(tmp_path / "cp.json"), "--no-progress")
    assert run_command("migrate_gallery.py", *args, "--write-mode", mode, env=stack_env).returncode == 0
    changed = gallery.ids()[11]
    # A second legacy update within the same millisecond: updated_at moves by microseconds only.
    gallery.execute(
        "UPDATE gallery_images SET title = 'second edit, same millisecond', "
        "updated_at = date_trunc('milliseconds', updated_at) + interval '999 microseconds' WHERE id = %s",
        (changed,),
    )
    with LegacySource(gallery.dsn) as source:
        (row,) = source.rows_by_id([changed])
    table = open_stage_table("local")
    endpoint_upsert = repository(table).upsert(row_to_record(row))
    verify_args = ("--dsn", gallery.dsn, "--stage", "local", "--report", str(tmp_path / "r.json"), "--no-progress")
    before = run_command("verify_migration.py", *verify_args, env=stack_env)

    restarted = run_command(
        "migrate_gallery.py",
        *args,
        "--write-mode",
        mode,
        "--restart",
        "--summary-json",
        str(tmp_path / "s.json"),
        env=stack_env,
    )
    after = run_command("verify_migration.py", *verify_args, env=stack_env)

    assert endpoint_upsert.outcome is UpsertOutcome.UNCHANGED  # the endpoint cannot tell which write is later
    assert before.returncode == 1 and f"MISMATCH {changed}: title" in before.stdout
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    summary = json.loads((tmp_path / "s.json").read_text())
    assert (summary["updated"], summary["unchanged"]) == (1, 29)
    stored = repository(table).get_many([changed])[changed]
    assert (stored.title, stored.version) == ("second edit, same millisecond", 2)
    assert after.returncode == 0, after.stdout + after.stderr
