"""Failed rows over the whole migration: the exit status counts every run's failures, a
resumed run says where they are, ``--retry-failures`` writes exactly those rows again,
``--restart`` starts a new failures file, and DynamoDB refusing the requests themselves
stops the run before its checkpoint instead of failing every row."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.migration.conftest import Gallery, run_command
from tests.migration.misbehaving import RefusingDynamoDB


def failed_ids(checkpoint: Path) -> list[str]:
    path = Path(f"{checkpoint}.failures.jsonl")
    if not path.exists():
        return []
    return [json.loads(line)["id"] for line in path.read_text().splitlines() if line.strip()]


def break_rows(gallery: Gallery, *image_ids: str) -> None:
    """Rows the import model refuses (a NULL tag), as a legacy table may hold."""
    gallery.execute("UPDATE gallery_images SET tags = ARRAY['ok', NULL] WHERE id = ANY(%s::uuid[])", (list(image_ids),))


def mend_rows(gallery: Gallery, *image_ids: str) -> None:
    gallery.execute(
        "UPDATE gallery_images SET tags = ARRAY['ok'], updated_at = updated_at + interval '1 minute' "
        "WHERE id = ANY(%s::uuid[])",
        (list(image_ids),),
    )


def migrate(gallery: Gallery, env: dict[str, str], tmp_path: Path, *extra: str) -> tuple[int, str, str, dict[str, Any]]:
    summary = tmp_path / "summary.json"
    summary.unlink(missing_ok=True)
    result = run_command(
        "migrate_gallery.py",
        *("--dsn", gallery.dsn, "--stage", "local", "--checkpoint", str(tmp_path / "cp.json"), "--no-progress"),
        *("--batch-size", "20", "--summary-json", str(summary), *extra),
        env=env,
    )
    values = json.loads(summary.read_text()) if summary.exists() else {}
    return result.returncode, result.stdout, result.stderr, values


def test_a_resumed_run_exits_1_for_rows_that_failed_in_an_earlier_run_and_says_where_they_are(
    gallery: Gallery, stack_env: dict[str, str], tmp_path: Path
) -> None:
    gallery.seed(40)
    bad = gallery.ids()[3]
    break_rows(gallery, bad)
    first, *_ = migrate(gallery, stack_env, tmp_path)
    gallery.seed(20, start=40)  # rows added later (later created_at): the resumed run reads them

    status, stdout, _, summary = migrate(gallery, stack_env, tmp_path, "--resume")

    assert first == 1
    assert status == 1, stdout
    assert (summary["read"], summary["failed"], summary["created"]) == (20, 0, 20)
    assert (summary["total"]["read"], summary["total"]["failed"], summary["total"]["written"]) == (60, 1, 59)
    assert summary["earlierFailed"] == 1
    assert f"failed in earlier runs 1, listed in {tmp_path / 'cp.json'}.failures.jsonl" in stdout
    assert "whole migration      read 60, written 59, failed 1" in stdout
    assert failed_ids(tmp_path / "cp.json") == [bad]


def test_retry_failures_writes_exactly_the_failed_rows_again_and_keeps_those_that_still_fail(
    gallery: Gallery, stack_env: dict[str, str], tmp_path: Path
) -> None:
    gallery.seed(30)
    mended, still_bad = gallery.ids()[4], gallery.ids()[25]
    break_rows(gallery, mended, still_bad)
    first, *_ = migrate(gallery, stack_env, tmp_path)
    mend_rows(gallery, mended)

    status, stdout, _, summary = migrate(gallery, stack_env, tmp_path, "--retry-failures")

    assert first == 1
    assert status == 1, stdout
    assert (summary["retried"], summary["read"], summary["created"], summary["failed"]) == (2, 2, 1, 1)
    assert summary["total"]["failed"] == 1
    assert failed_ids(tmp_path / "cp.json") == [still_bad]
    assert f"failed row {still_bad}: tags.1" in stdout
    assert json.loads((tmp_path / "cp.json").read_text())["counts"]["failed"] == 1

    mend_rows(gallery, still_bad)
    again, *_ = migrate(gallery, stack_env, tmp_path, "--retry-failures")
    resumed, _, _, after = migrate(gallery, stack_env, tmp_path, "--resume")
    verified = run_command(
        "verify_migration.py",
        *("--dsn", gallery.dsn, "--stage", "local", "--report", str(tmp_path / "r.json"), "--no-progress"),
        env=stack_env,
    )

    assert again == 0
    assert failed_ids(tmp_path / "cp.json") == []
    assert (resumed, after["read"], after["total"]["failed"], after["total"]["written"]) == (0, 0, 0, 30)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_restart_starts_a_new_failures_file(gallery: Gallery, stack_env: dict[str, str], tmp_path: Path) -> None:
    gallery.seed(30)
    bad, mended = gallery.ids()[2], gallery.ids()[12]
    break_rows(gallery, bad, mended)
    migrate(gallery, stack_env, tmp_path)
    mend_rows(gallery, mended)

    status, stdout, _, summary = migrate(gallery, stack_env, tmp_path, "--restart")

    assert status == 1, stdout
    assert failed_ids(tmp_path / "cp.json") == [bad]  # listed once, and the mended row no more
    assert summary["total"]["failed"] == 1


REFUSALS = [
    pytest.param("conditional", {"TransactWriteItems", "PutItem"}, "AccessDeniedException", id="writes-denied"),
    pytest.param("batch", {"BatchWriteItem", "PutItem"}, "AccessDeniedException", id="batch-writes-denied"),
    pytest.param("conditional", {"BatchGetItem"}, "ExpiredTokenException", id="token-expired-on-read"),
]


@pytest.mark.parametrize(("mode", "refused", "code"), REFUSALS)
def test_dynamodb_refusing_the_requests_stops_the_run_before_the_batch_checkpoint(
    gallery: Gallery, stack_env: dict[str, str], tmp_path: Path, mode: str, refused: set[str], code: str
) -> None:
    gallery.seed(60)
    upstream = stack_env["AWS_ENDPOINT_URL"]
    with RefusingDynamoDB(upstream, refused, code, allow=1) as proxy:  # the first batch goes through
        status, stdout, stderr, summary = migrate(
            gallery, {**stack_env, "AWS_ENDPOINT_URL": proxy.url}, tmp_path, "--write-mode", mode
        )

    lines = stderr.strip().splitlines()
    assert status == 2, stdout + stderr
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    assert lines[0].startswith("error: DynamoDB refused ") and code in lines[0] and "--resume" in lines[0]
    assert json.loads((tmp_path / "cp.json").read_text())["rowsCommitted"] == 20
    assert (summary["failed"], summary["total"]["failed"]) == (0, 0)
    assert failed_ids(tmp_path / "cp.json") == []

    resumed, _, _, after = migrate(gallery, stack_env, tmp_path, "--resume", "--write-mode", mode)

    assert (resumed, after["total"]["read"], after["total"]["failed"]) == (0, 60, 0)


def test_a_restart_that_stops_before_its_first_batch_is_continued_by_resume_not_the_old_run(
    gallery: Gallery, stack_env: dict[str, str], tmp_path: Path
) -> None:
    gallery.seed(30)
    break_rows(gallery, gallery.ids()[7])
    migrate(gallery, stack_env, tmp_path)
    with RefusingDynamoDB(stack_env["AWS_ENDPOINT_URL"], {"BatchGetItem"}, "ExpiredTokenException") as proxy:
        stopped, *_ = migrate(gallery, {**stack_env, "AWS_ENDPOINT_URL": proxy.url}, tmp_path, "--restart")

    resumed, _, _, summary = migrate(gallery, stack_env, tmp_path, "--resume")

    assert stopped == 2
    assert (resumed, summary["read"], summary["unchanged"], summary["failed"]) == (1, 30, 29, 1)
    assert summary["earlierFailed"] == 0
    assert len(failed_ids(tmp_path / "cp.json")) == 1
