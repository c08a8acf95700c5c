"""Cold-start import cost: ``import app`` against ``import boto3``, side by side.

    python scripts/bench_import.py [--runs 15] [--json]

Each sample is a fresh interpreter timing only the import (interpreter start-up is not
counted), alternating the two so both see the same background load. Prints the medians
and their ratio (the issue's target: app <= 1.5x boto3), and whether Pillow or the
processors were imported (they must not be, on the API path).
"""

from __future__ import annotations

import os
import sys

if __package__ in (None, ""):
    # Run as a file: put the project root first, and drop scripts/ so that
    # scripts/token.py cannot shadow the standard library's token module.
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import argparse
import json
import statistics
import subprocess

from scripts.stage_config import LOCAL_STAGE, PROJECT_ROOT, stage_environment

PROBE = """
import sys, time
started = time.perf_counter()
import {module}
elapsed = time.perf_counter() - started
print(elapsed * 1000, "PIL" in sys.modules, "processors" in sys.modules)
"""


def sample(module: str) -> tuple[float, bool, bool]:
    env = {**os.environ, **stage_environment(LOCAL_STAGE), "PYTHONDONTWRITEBYTECODE": "1"}
    output = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module)],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return float(output[0]), output[1] == "True", output[2] == "True"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    boto3_ms: list[float] = []
    app_ms: list[float] = []
    heavy = False
    for run in range(args.runs):
        boto3_ms.append(sample("boto3")[0])
        elapsed, pil, processors = sample("app")
        app_ms.append(elapsed)
        heavy = heavy or pil or processors
        print(f"\rrun {run + 1}/{args.runs}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    result = {
        "boto3_ms": round(statistics.median(boto3_ms), 1),
        "app_ms": round(statistics.median(app_ms), 1),
        "ratio": round(statistics.median(app_ms) / statistics.median(boto3_ms), 2),
        "imports_pillow_or_processors": heavy,
        "runs": args.runs,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"import boto3 {result['boto3_ms']} ms, import app {result['app_ms']} ms "
            f"(median of {args.runs}): ratio {result['ratio']}; "
            f"Pillow/processors imported: {result['imports_pillow_or_processors']}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
