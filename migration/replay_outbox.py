"""Send the dual-writes the outbox kept again (docs/migration.md, "Dropped dual-writes").

    IMAGE_SERVICE_TOKEN=$(...) python -m migration.replay_outbox \\
        --dsn "$LEGACY_DSN" --url "$IMAGE_SERVICE_URL"                  # the table
    ... --file /var/lib/gallery/dual-write-outbox.jsonl                  # and/or a file
    ... --file dual-write-outbox.jsonl --no-table                        # a file only

For each image of the outbox the row is read from ``gallery_images`` as it is now and
sent to ``PUT /internal/images/{id}``, with the dual-write's own timeouts and retries.
Safe to run at any time and as often as wanted (the endpoint's newer-wins): a row written
(or found stored, or newer there) leaves the outbox; a row deleted from PostgreSQL since
leaves it too (nothing to send); a row that fails again stays, with the new reason. An
entry recorded again while the replay ran (a newer drop) stays for the next replay.

The token (``images:import`` scope) comes from ``IMAGE_SERVICE_TOKEN``, never from the
command line. Exit status: 0 the outbox is empty of what was read, 1 some writes still
fail (listed), 2 usage or connection problem.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from migration.dual_write import DualWriteOutcome, DualWriter
from migration.errors import MigrationError
from migration.legacy import LegacySource, describe_dsn
from migration.outbox import OUTBOX_SCHEMA, OUTBOX_TABLE, FileOutbox, OutboxEntry, PostgresOutbox

ENV_TOKEN = "IMAGE_SERVICE_TOKEN"  # noqa: S105 - the variable's name, not a token
MAX_LISTED = 20
BATCH = 200


@dataclass
class ReplayReport:
    written: int = 0
    stale: int = 0
    gone: int = 0
    failing: list[tuple[str, str]] = field(default_factory=list)

    @property
    def replayed(self) -> int:
        return self.written + self.stale + self.gone + len(self.failing)

    def lines(self) -> list[str]:
        lines = [
            f"replayed {self.replayed} dropped dual-write(s): {self.written} written, {self.stale} stale "
            f"(newer already stored), {self.gone} no longer in PostgreSQL, {len(self.failing)} still failing"
        ]
        lines += [f"  still failing {image_id}: {reason}" for image_id, reason in self.failing[:MAX_LISTED]]
        if len(self.failing) > MAX_LISTED:
            lines.append(f"  ... {len(self.failing) - MAX_LISTED} more")
        return lines


class Replay:
    def __init__(self, source: LegacySource, writer: DualWriter) -> None:
        self._source = source
        self._writer = writer

    def _send(
        self,
        entries: Sequence[OutboxEntry],
        report: ReplayReport,
        done: Callable[[OutboxEntry], object],
        failed: Callable[[OutboxEntry, str], None],
    ) -> None:
        rows = {row.id: row for row in self._source.rows_by_id([e.image_id for e in entries])}
        for entry in entries:
            row = rows.get(entry.image_id)
            if row is None:
                report.gone += 1
                done(entry)
                continue
            _, outcome, reason = self._writer.deliver(row)
            if outcome is DualWriteOutcome.WRITTEN:
                report.written += 1
                done(entry)
            elif outcome is DualWriteOutcome.STALE:
                report.stale += 1
                done(entry)
            else:
                report.failing.append((entry.image_id, reason or "failed"))
                failed(entry, reason or "failed")

    def table(self, outbox: PostgresOutbox, report: ReplayReport) -> None:
        """Every entry of the table, ``BATCH`` at a time, in image id order."""
        after: str | None = None
        while entries := outbox.entries(BATCH, after):
            after = entries[-1].image_id
            self._send(entries, report, outbox.remove, outbox.still_failing)

    def file(self, outbox: FileOutbox, report: ReplayReport) -> None:
        """The file's entries: claimed (renamed), replayed, those still failing written
        back to the live file, then the claim removed. A crash leaves the claim, which
        the next replay takes first."""
        claimed = outbox.claim()
        if claimed is None:
            return
        entries = FileOutbox.read(claimed)
        for start in range(0, len(entries), BATCH):
            self._send(
                entries[start : start + BATCH],
                report,
                lambda _entry: None,
                lambda entry, reason: outbox.record(entry.image_id, reason, entry.failed_at),
            )
        claimed.unlink()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", required=True, help="libpq connection string of the legacy database")
    parser.add_argument("--url", required=True, help="the Image Service's base URL (IMAGE_SERVICE_URL)")
    parser.add_argument("--file", type=Path, help="also replay this outbox file (DUAL_WRITE_OUTBOX_FILE)")
    parser.add_argument("--no-table", action="store_true", help=f"do not replay the {OUTBOX_TABLE} table")
    args = parser.parse_args(argv)
    token = os.environ.get(ENV_TOKEN, "").strip()
    if not token:
        parser.error(f"set {ENV_TOKEN} to a service token with the images:import scope")
    if args.no_table and args.file is None:
        parser.error("--no-table needs --file")
    if not args.url.startswith(("http://", "https://")):
        parser.error(f"--url must be an http(s) URL, got {args.url!r}")
    writer = DualWriter(args.url, lambda: token)
    report = ReplayReport()
    try:
        with LegacySource(args.dsn) as source:
            replay = Replay(source, writer)
            if not args.no_table:
                table = PostgresOutbox(args.dsn, timeout_seconds=10)
                try:
                    if not table.table_exists():
                        raise MigrationError(
                            f"table {OUTBOX_TABLE!r} not found in {describe_dsn(args.dsn)}; create it with: "
                            f'psql "<dsn>" -f {OUTBOX_SCHEMA}'
                        )
                    replay.table(table, report)
                finally:
                    table.close()
            if args.file is not None:
                replay.file(FileOutbox(args.file), report)
    except MigrationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except psycopg.Error as exc:
        print(f"error: PostgreSQL failed: {str(exc).strip().splitlines()[0]}", file=sys.stderr)
        return 2
    for line in report.lines():
        print(line)
    return 1 if report.failing else 0


if __name__ == "__main__":
    raise SystemExit(main())
