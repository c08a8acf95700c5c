"""kill -9 halfway through a backfill, --resume, verify: nothing lost, nothing twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT
from tests.migration.conftest import Gallery, run_command

ROWS = 1500
BATCH = 100


def committed(checkpoint: Path) -> int:
    try:
        return int(json.loads(checkpoint.read_text())["rowsCommitted"])
    except (FileNotFoundError, ValueError):
        return 0  # not written yet (it is replaced atomically, so never half-written)


@pytest.mark.parametrize("mode", ["conditional", "batch"])
def test_a_backfill_killed_halfway_resumes_where_it_stopped_and_then_verifies(
    gallery: Gallery, stack_env: dict[str, str], tmp_path: Path, mode: str
) -> None:
    gallery.seed(ROWS, start=100_000 + 10_000 * ["conditional", "batch"].index(mode))
    checkpoint = tmp_path / "checkpoint.json"
    args = ["--dsn", gallery.dsn, "--stage", "local", "--checkpoint", str(checkpoint), "--no-progress"]
    args += ["--batch-size", str(BATCH), "--write-mode", mode]
    migration = subprocess.Popen(
        [sys.executable, str(PROJECT_ROOT / "scripts" / "migrate_gallery.py"), *args],
        env=stack_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while committed(checkpoint) < ROWS // 5 and migration.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(migration.pid, signal.SIGKILL)
    migration.wait(timeout=10)
    at_kill = committed(checkpoint)
    assert migration.returncode == -signal.SIGKILL
    assert ROWS // 5 <= at_kill < ROWS, "the kill must land halfway"

    resumed = run_command(
        "migrate_gallery.py", *args, "--resume", "--summary-json", str(tmp_path / "s.json"), env=stack_env
    )
    verified = run_command(
        "verify_migration.py",
        *("--dsn", gallery.dsn, "--stage", "local", "--report", str(tmp_path / "r.json"), "--no-progress"),
        env=stack_env,
    )

    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["read"] == ROWS - at_kill  # exactly the rows after the checkpoint, none twice
    assert summary["failed"] == 0
    # The batch in flight at the kill may have been written already: it is found unchanged.
    assert summary["unchanged"] <= BATCH
    assert committed(checkpoint) == ROWS
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"{ROWS} match, 0 missing, 0 differ" in verified.stdout
