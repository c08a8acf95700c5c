"""Backfill the legacy gallery's ``gallery_images`` table into a stage's DynamoDB table.

    python scripts/migrate_gallery.py --dsn "host=db user=gallery dbname=gallery" --stage local
    python scripts/migrate_gallery.py --dsn ... --stage prod --resume        # after a crash
    python scripts/migrate_gallery.py --dsn ... --stage local --dry-run      # map only
    python scripts/migrate_gallery.py --dsn ... --stage prod --retry-failures  # the failed rows again

Rows stream through a server-side cursor (flat memory at any table size) in
(created_at, id) order; after each batch is written the checkpoint file records the last
row, atomically, so --resume continues exactly there after a crash or kill -9. A record
already in DynamoDB with the same or a later updatedAt is never replaced (see
--write-mode and docs/migration.md). Failed rows are listed, and kept in
<checkpoint>.failures.jsonl over resumed runs; --retry-failures writes exactly those rows
again and rewrites the file with the ones that still fail. Exit status, from the whole
migration's counts (every run since the first row, not only this one): 0 every row read
so far migrated, 1 some rows failed (listed in the failures file), 2 usage, connection or
permission problem (one line on stderr; DynamoDB refusing the requests themselves, e.g.
AccessDenied or ExpiredToken, stops the run before the batch's checkpoint), 3 stopped
early (progress is saved; run again with --resume).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from migration.backfill import Backfill, BackfillOptions, WriteMode
from migration.errors import MigrationError
from migration.legacy import LegacySource
from migration.stage import open_stage_table


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", required=True, help="libpq connection string or URI of the legacy database")
    parser.add_argument("--stage", required=True, help="a stage of .chalice/config.json (local, dev, ...)")
    parser.add_argument("--dry-run", action="store_true", help="read and map every row, write nothing")
    parser.add_argument("--resume", action="store_true", help="continue after the checkpoint's last row")
    parser.add_argument(
        "--restart", action="store_true", help="ignore an existing checkpoint and its failures file; start over"
    )
    parser.add_argument(
        "--retry-failures",
        action="store_true",
        help="write again the rows of <checkpoint>.failures.jsonl (read afresh), keep there those still failing",
    )
    parser.add_argument("--batch-size", type=positive, default=500, help="rows per batch and checkpoint (500)")
    parser.add_argument("--workers", type=positive, default=16, help="concurrent DynamoDB requests (16)")
    parser.add_argument(
        "--write-mode",
        choices=[m.value for m in WriteMode],
        default=WriteMode.CONDITIONAL.value,
        help="conditional: TransactWriteItems of conditional puts; batch: guarded BatchWriteItem (docs/migration.md)",
    )
    parser.add_argument("--checkpoint", type=Path, help="checkpoint file (default: .migration/<stage>.checkpoint.json)")
    parser.add_argument("--summary-json", type=Path, help="also write the summary as JSON to this file")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.resume and args.restart:
        parser.error("--resume and --restart exclude each other")
    if args.retry_failures and (args.resume or args.restart or args.dry_run):
        parser.error("--retry-failures goes alone (not with --resume, --restart or --dry-run)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    checkpoint = args.checkpoint or Path(".migration") / f"{args.stage}.checkpoint.json"
    options = BackfillOptions(
        stage=args.stage,
        checkpoint_path=checkpoint,
        batch_size=args.batch_size,
        workers=args.workers,
        write_mode=WriteMode(args.write_mode),
        dry_run=args.dry_run,
        resume=args.resume,
        restart=args.restart,
        retry_failures=args.retry_failures,
        progress=not args.no_progress,
    )
    try:
        table = None if args.dry_run else open_stage_table(args.stage, connections=args.workers + 4)
        with LegacySource(args.dsn) as source:
            summary = Backfill(source, table, options).run()
    except MigrationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for line in summary.lines():
        print(line)
    if args.summary_json:
        args.summary_json.write_text(json.dumps(summary.as_json(), indent=2) + "\n")
    if summary.error:
        print(f"error: {summary.error}", file=sys.stderr)
        return 2
    if summary.interrupted:
        return 3
    return 1 if summary.total.failed else 0  # the whole migration's, earlier runs included


if __name__ == "__main__":
    raise SystemExit(main())
