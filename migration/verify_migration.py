"""Compare the legacy ``gallery_images`` rows with the stage's DynamoDB records.

    python scripts/verify_migration.py --dsn "host=db dbname=gallery" --stage local
    python scripts/verify_migration.py --dsn ... --stage prod --sample 10000   # report: .migration/verify-prod.json

Every row (or a uniform random sample) is mapped exactly as the backfill maps it and
compared field by field with the record read back with BatchGetItem; a row whose image
was deleted through the Image Service is a difference (DELETED). A full run then scans
the table's live imported records (a parallel Scan, projected on the key) and reports
each one that has no row (ORPHAN). Each difference is printed with the id; the JSON
report lists them all.
Exit status: 0 everything matches, 1 differences (ids printed), 2 usage, connection or
permission problem (one line on stderr, e.g. DynamoDB refusing BatchGetItem).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from migration.errors import MigrationError
from migration.legacy import LegacySource
from migration.stage import open_stage_table
from migration.verify import SCAN_SEGMENTS, Verification, write_report

MAX_PRINTED = 50


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", required=True, help="libpq connection string or URI of the legacy database")
    parser.add_argument("--stage", required=True, help="a stage of .chalice/config.json")
    parser.add_argument("--sample", type=positive, help="check a uniform random sample of N rows instead of all")
    parser.add_argument(
        "--scan-segments",
        type=positive,
        default=SCAN_SEGMENTS,
        help=f"parallel Scan segments of the imported-records scan ({SCAN_SEGMENTS}; not with --sample)",
    )
    parser.add_argument(
        "--report", type=Path, help="write the JSON report here (default .migration/verify-<stage>.json)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    # Under .migration/ beside the checkpoints (ignored by git): a run leaves the checkout clean.
    report_path = args.report or Path(".migration") / f"verify-{args.stage}.json"
    printed = 0

    def show(line: str) -> None:
        nonlocal printed
        printed += 1
        if printed <= MAX_PRINTED:
            print(line)

    try:
        table = open_stage_table(args.stage)
        with LegacySource(args.dsn) as source:
            verification = Verification(
                source, table, args.sample, progress=not args.no_progress, scan_segments=args.scan_segments
            )
            report = verification.run(show)
    except MigrationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if printed > MAX_PRINTED:
        print(f"... {printed - MAX_PRINTED} more differences in {report_path}")
    write_report(report_path, report)
    what = f"a sample of {report.checked}" if args.sample else f"{report.checked}"
    orphans = (
        "imported records not scanned (--sample)"
        if report.orphaned is None
        else f"{len(report.orphaned)} of {report.imported_scanned} imported records without a row"
    )
    print(
        f"verified {what} rows in {report.elapsed:.1f} s: {report.matched} match, {len(report.missing)} missing, "
        f"{len(report.mismatched)} differ, {len(report.unmappable)} unmappable, {len(report.deleted)} deleted; "
        f"{orphans}; report: {report_path}"
    )
    if report.ok:
        return 0
    ids = report.differing_ids
    shown = ", ".join(ids[:20]) + (f" and {len(ids) - 20} more" if len(ids) > 20 else "")
    print(f"FAILED: rows that differ: {shown}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
