"""Backfill benchmark: N synthetic rows into the local stack, timed, with peak memory.

    python -m migration.benchmark --rows 10000 --rows 100000 --mode batch --mode conditional

Starts a throwaway PostgreSQL and the local stack (local_stack/supervisor.py) on free
ports, seeds one database per run, runs scripts/migrate_gallery.py as an operator would
(its summary reports elapsed time, rows/s and the process's peak RSS), optionally
verifies a sample, and prints a Markdown table. The servers and their data are removed at
the end; the summaries and logs stay in the work directory it names.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from infra.stage_config import PROJECT_ROOT
from migration.sandbox import LocalStackProcess, TemporaryPostgres, seed_gallery


def run(script: str, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "scripts" / script), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=PROJECT_ROOT,
        check=False,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, action="append", help="table size of a run (repeatable)")
    parser.add_argument("--mode", action="append", choices=["batch", "conditional"], help="write mode (repeatable)")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--verify-sample", type=int, default=0, help="verify a random sample of N rows after each run")
    args = parser.parse_args(argv)
    sizes = args.rows or [10_000, 100_000]
    modes = args.mode or ["batch"]
    work = Path(tempfile.mkdtemp(prefix="migration-benchmark-"))
    postgres = TemporaryPostgres().start()
    stack = LocalStackProcess(work / "stack.log")
    results: list[dict[str, object]] = []
    try:
        stack.start()
        env = {**os.environ, **stack.environment()}
        env.pop("TABLE_NAME", None)
        offset = 0
        for mode in modes:
            for rows in sizes:
                dsn = postgres.create_database(f"bench_{mode}_{rows}")
                seed_gallery(dsn, rows, start=offset)
                offset += rows
                print(f"{mode} {rows} rows: migrating (load average {os.getloadavg()[0]:.1f})...", flush=True)
                summary_path = work / f"{mode}-{rows}.json"
                began = time.monotonic()
                migrated = run(
                    "migrate_gallery.py",
                    [
                        *("--dsn", dsn, "--stage", "local", "--write-mode", mode, "--no-progress"),
                        *("--batch-size", str(args.batch_size), "--workers", str(args.workers)),
                        *("--checkpoint", str(work / f"{mode}-{rows}.checkpoint.json")),
                        *("--summary-json", str(summary_path)),
                    ],
                    env,
                )
                wall = time.monotonic() - began
                if migrated.returncode != 0:
                    print(migrated.stdout + migrated.stderr, file=sys.stderr)
                    return 1
                summary = json.loads(summary_path.read_text())
                verified = "-"
                if args.verify_sample:
                    check = run(
                        "verify_migration.py",
                        [
                            *("--dsn", dsn, "--stage", "local", "--sample", str(min(args.verify_sample, rows))),
                            *("--report", str(work / f"{mode}-{rows}.verify.json"), "--no-progress"),
                        ],
                        env,
                    )
                    verified = f"exit {check.returncode}"
                results.append(
                    {
                        "mode": mode,
                        "rows": rows,
                        "seconds": summary["elapsedSeconds"],
                        "rowsPerSecond": summary["rowsPerSecond"],
                        "peakRssMiB": summary["peakRssMiB"],
                        "wallSeconds": round(wall, 1),
                        "written": summary["written"],
                        "verify": verified,
                        "loadAverage": round(os.getloadavg()[0], 1),
                    }
                )
                print(json.dumps(results[-1]), flush=True)
    finally:
        stack.stop()
        postgres.stop()
    print(f"\nsummaries, checkpoints and the local stack's log: {work}\n")
    print("| write mode | rows | backfill s | rows/s | peak RSS (MiB) | process wall s | written | sample verify |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for r in results:
        print(
            f"| {r['mode']} | {r['rows']:,} | {r['seconds']} | {r['rowsPerSecond']:,.0f} | {r['peakRssMiB']} "
            f"| {r['wallSeconds']} | {r['written']:,} | {r['verify']} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
