"""The backfill's checkpoint: the last committed keyset position, written atomically.

A checkpoint is replaced, never edited in place: the new content goes to a temporary
file in the same directory, is flushed and fsync'ed, renamed over the old one, and the
directory is fsync'ed. A crash (kill -9, power loss) leaves the old or the new
checkpoint, never a torn one.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migration.errors import MigrationError
from migration.legacy import Position

FORMAT = 1


@dataclass
class Checkpoint:
    stage: str
    table: str
    position: Position | None = None
    rows_committed: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "stage": self.stage,
            "table": self.table,
            "position": self.position.to_json() if self.position else None,
            "rowsCommitted": self.rows_committed,
            "counts": self.counts,
        }

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> Checkpoint:
        position = values.get("position")
        return cls(
            stage=str(values["stage"]),
            table=str(values["table"]),
            position=Position.from_json(position) if position else None,
            rows_committed=int(values.get("rowsCommitted", 0)),
            counts={str(k): int(v) for k, v in dict(values.get("counts", {})).items()},
        )


def load(path: Path) -> Checkpoint | None:
    """The saved checkpoint, None when there is none; a damaged one is a ``MigrationError``."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        values = json.loads(text)
        if values.get("format") != FORMAT:
            raise ValueError(f"unknown format {values.get('format')!r}")
        return Checkpoint.from_json(values)
    except (ValueError, KeyError, TypeError) as exc:
        raise MigrationError(f"checkpoint {path} is not readable ({exc}); move it away to start over") from exc


def save(path: Path, checkpoint: Checkpoint) -> None:
    """Replace the checkpoint atomically and durably."""
    replace_file(path, json.dumps(checkpoint.to_json(), indent=2, sort_keys=True) + "\n")


def replace_file(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically and durably (temporary file, fsync,
    rename, directory fsync): a crash leaves the old or the new content, never a torn one."""
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory_descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(directory_descriptor)
    finally:
        os.close(directory_descriptor)
