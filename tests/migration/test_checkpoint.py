"""The checkpoint file: exact keyset positions, atomic replacement, clear errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from migration import checkpoint
from migration.checkpoint import Checkpoint
from migration.errors import MigrationError
from migration.legacy import Position


def test_a_saved_checkpoint_loads_back_with_the_microsecond_position(tmp_path: Path) -> None:
    path = tmp_path / "local.checkpoint.json"
    position = Position(created_at=datetime(2015, 1, 1, 0, 0, 37, 123457, tzinfo=UTC), id="7396f622-21c3-225f-ea78")
    checkpoint.save(path, Checkpoint(stage="local", table="T", position=position, rows_committed=500))

    loaded = checkpoint.load(path)

    assert loaded is not None
    assert loaded.position == position
    assert loaded.rows_committed == 500


def test_saving_replaces_the_file_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    path = tmp_path / "local.checkpoint.json"
    for rows in (100, 200, 300):
        checkpoint.save(path, Checkpoint(stage="local", table="T", rows_committed=rows))

    assert [p.name for p in tmp_path.iterdir()] == ["local.checkpoint.json"]
    assert json.loads(path.read_text())["rowsCommitted"] == 300


def test_a_torn_temporary_file_from_a_crash_does_not_affect_the_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "local.checkpoint.json"
    checkpoint.save(path, Checkpoint(stage="local", table="T", rows_committed=100))
    (tmp_path / ".local.checkpoint.json.abc.tmp").write_text('{"format": 1, "stage": "lo')  # killed mid-write

    loaded = checkpoint.load(path)

    assert loaded is not None and loaded.rows_committed == 100


def test_no_checkpoint_file_means_no_checkpoint(tmp_path: Path) -> None:
    assert checkpoint.load(tmp_path / "absent.json") is None


def test_a_damaged_checkpoint_is_a_clear_error_not_a_silent_restart(tmp_path: Path) -> None:
    path = tmp_path / "local.checkpoint.json"
    path.write_text("{not json")

    with pytest.raises(MigrationError, match="not readable"):
        checkpoint.load(path)
