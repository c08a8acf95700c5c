"""Cold-start import cost: ``import app`` against ``import boto3``, side by side.

    python scripts/bench_import.py [--runs 15] [--json]
    python scripts/bench_import.py --package build/lambda/package/deployment.zip [--stage prod]
        [--against an-earlier-build/deployment.zip]

Each sample is a fresh interpreter timing only the import (interpreter start-up is not
counted); the cases alternate so that all of them see the same background load. Prints
the medians and, for each case, the median of its per-run ratios to ``import boto3`` (the
issue's target: app <= 1.5x boto3), both in wall-clock time and in the process's CPU time
(which leaves out the time a busy host gives to other guests), and whether Pillow or the
processors were imported (they must not be, on the API path).

Without ``--package``: the working tree with the venv, in the local stage's environment.

With ``--package ZIP`` (``make package`` builds it): what Lambda runs. The zip is unpacked
twice, as built (with its bytecode) and with every ``.pyc`` removed (what plain ``chalice
package`` ships), and each is imported by the clean Python 3.12 the venv was made from,
started ``-I -S -B`` (no site-packages, no ``PYTHON*`` variables, no bytecode written:
``/var/task`` is read-only) with only the package on ``sys.path`` and the stage's
environment. The cases:

- ``import app``: an on-demand init, as the API function, the processor and the sweep
  each do it. PyJWT and each model's validator are left to first use
  (``chalicelib.coldstart``), so two more cases show where that work went:
- ``import app + first token``: the same init, then what the API's first request adds
  before any route runs (the verifier loads PyJWT with cryptography and refuses a bad token);
- ``import app, init ahead of traffic``: with ``AWS_LAMBDA_INITIALIZATION_TYPE`` set to
  ``provisioned-concurrency``, the init does everything (``coldstart.prewarm``);
- ``import app (X-Ray)``: the variables an actively traced function gets, so
  ``chalicelib.tracing`` imports and configures the X-Ray SDK as it does in AWS;
- ``floor``: boto3, Chalice's runtime and what defining any pydantic model loads, with the
  collector paused as ``app.py`` pauses it: what any ``app`` on these libraries costs;
- ``import boto3 (GC paused)``: the baseline with the same pause, to show how much of the
  ratio the pause alone buys.

``--against ZIP`` adds another build's ``import boto3``, ``import app`` and ``import app
(X-Ray)`` to the same interleaved run: a before/after comparison on equal terms.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from infra.stage_config import FAKE_AWS_ENVIRONMENT, LOCAL_STAGE, PROJECT_ROOT, stage_environment

PROBE = """
import sys, time
if {root!r}:
    sys.path.insert(0, {root!r})
started, cpu_started = time.perf_counter(), time.process_time()
{before}
import {module}
{then}
elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
print(elapsed * 1000, cpu * 1000, "PIL" in sys.modules, "processors" in sys.modules)
"""
PAUSE_GC = "import gc; gc.disable()"
# What the API's first request adds before a route runs: the token verifier (PyJWT and
# cryptography) refusing a malformed token, which needs no network.
FIRST_REQUEST_AUTH = """
from chalicelib import dependencies, errors
try:
    dependencies.token_verifier().verify("not-a-jwt")
except errors.Unauthenticated:
    pass
"""
# What defining any pydantic model loads (pydantic.main, fields, types), deferred or not.
FLOOR_THEN = "from pydantic import BaseModel, Field"
# What Lambda sets for a function with active tracing (values are placeholders).
XRAY_ENVIRONMENT = {
    "AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129:2000",
    "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
    "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
    "AWS_LAMBDA_FUNCTION_NAME": "image-service-prod",
    "LAMBDA_TASK_ROOT": "/var/task",
}
FLOOR_MODULES = "boto3, chalice.app, pydantic"
AHEAD_OF_TRAFFIC = {"AWS_LAMBDA_INITIALIZATION_TYPE": "provisioned-concurrency"}
# The interpreter the venv was made from: the CPython 3.12 that Lambda's python3.12 runs.
CLEAN_PYTHON = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"


@dataclass(frozen=True)
class Case:
    name: str
    module: str
    command: tuple[str, ...]
    root: str
    environment: dict[str, str]
    cwd: Path
    before: str = ""
    then: str = ""
    # The case whose median this one is divided by: the boto3 import of the same files.
    baseline: str = "import boto3"


class Sample(NamedTuple):
    wall_ms: float
    cpu_ms: float  # user + system time of the process: what a busy host's steal leaves out
    pil: bool
    processors: bool


def sample(case: Case) -> Sample:
    output = subprocess.run(
        [*case.command, PROBE.format(module=case.module, root=case.root, before=case.before, then=case.then)],
        cwd=case.cwd,
        env=case.environment,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return Sample(float(output[0]), float(output[1]), output[2] == "True", output[3] == "True")


def tree_cases(stage: str) -> list[Case]:
    env = {**os.environ, **stage_environment(stage), "PYTHONDONTWRITEBYTECODE": "1"}
    command = (sys.executable, "-c")
    return [
        Case("import boto3", "boto3", command, "", env, PROJECT_ROOT),
        Case("import app", "app", command, "", env, PROJECT_ROOT),
    ]


def unpack(zip_path: Path, target: Path, *, bytecode: bool) -> Path:
    with zipfile.ZipFile(zip_path) as archive:
        members = [name for name in archive.namelist() if bytecode or not name.endswith(".pyc")]
        archive.extractall(target, members)
    return target


def package_environment(stage: str) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", **FAKE_AWS_ENVIRONMENT, **stage_environment(stage)}


def package_cases(zip_path: Path, stage: str, scratch: Path) -> list[Case]:
    if not CLEAN_PYTHON.exists():
        raise SystemExit(f"no clean Python at {CLEAN_PYTHON}")
    env = package_environment(stage)
    command = (str(CLEAN_PYTHON), "-I", "-S", "-B", "-c")
    shipped = str(unpack(zip_path, scratch / "shipped", bytecode=True))
    source_only = str(unpack(zip_path, scratch / "source-only", bytecode=False))
    no_bytecode = "import boto3, no bytecode"
    return [
        Case("import boto3", "boto3", command, shipped, env, scratch),
        Case("import app", "app", command, shipped, env, scratch),
        Case("import app + first token", "app", command, shipped, env, scratch, then=FIRST_REQUEST_AUTH),
        Case("import app, init ahead of traffic", "app", command, shipped, {**env, **AHEAD_OF_TRAFFIC}, scratch),
        Case("import app (X-Ray)", "app", command, shipped, {**env, **XRAY_ENVIRONMENT}, scratch),
        Case("floor", FLOOR_MODULES, command, shipped, env, scratch, before=PAUSE_GC, then=FLOOR_THEN),
        Case("import boto3 (GC paused)", "boto3", command, shipped, env, scratch, before=PAUSE_GC),
        Case(no_bytecode, "boto3", command, source_only, env, scratch, baseline=no_bytecode),
        Case("import app, no bytecode", "app", command, source_only, env, scratch, baseline=no_bytecode),
    ]


def earlier_package_cases(zip_path: Path, stage: str, scratch: Path) -> list[Case]:
    """Another build (``--against``), measured in the same run: boto3, app, app with X-Ray."""
    env = package_environment(stage)
    command = (str(CLEAN_PYTHON), "-I", "-S", "-B", "-c")
    root = str(unpack(zip_path, scratch / "against", bytecode=True))
    boto3 = "against: import boto3"
    return [
        Case(boto3, "boto3", command, root, env, scratch, baseline=boto3),
        Case("against: import app", "app", command, root, env, scratch, baseline=boto3),
        Case("against: import app (X-Ray)", "app", command, root, {**env, **XRAY_ENVIRONMENT}, scratch, baseline=boto3),
    ]


def measure(cases: Sequence[Case], runs: int) -> tuple[dict[str, list[Sample]], bool]:
    """Every case once per run, in turn: the samples of one run saw the same load."""
    samples: dict[str, list[Sample]] = {case.name: [] for case in cases}
    heavy = False
    for run in range(runs):
        for case in cases:
            taken = sample(case)
            samples[case.name].append(taken)
            if case.module == "app":  # the floor imports no project code
                heavy = heavy or taken.pil or taken.processors
        print(f"\rrun {run + 1}/{runs}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return samples, heavy


def median_ratio(samples: Sequence[float], baseline: Sequence[float]) -> float:
    """The median of the per-run ratios: a slow spell slows a run's baseline too."""
    return statistics.median(value / base for value, base in zip(samples, baseline, strict=True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--package", type=Path, help="a deployment.zip (make package) to measure as Lambda runs it")
    parser.add_argument("--stage", help="whose environment (default: local for the tree, prod for --package)")
    parser.add_argument("--against", type=Path, help="with --package: another build's zip, measured in the same run")
    args = parser.parse_args(argv)
    if args.against is not None and args.package is None:
        parser.error("--against needs --package")
    with tempfile.TemporaryDirectory(prefix="bench-import-") as scratch:
        if args.package is not None:
            stage = args.stage or "prod"
            cases = package_cases(args.package.resolve(), stage, Path(scratch))
            if args.against is not None:
                cases += earlier_package_cases(args.against.resolve(), stage, Path(scratch))
        else:
            stage = args.stage or LOCAL_STAGE
            cases = tree_cases(stage)
        samples, heavy = measure(cases, args.runs)
    baselines = {case.name: case.baseline for case in cases}
    wall = {name: [taken.wall_ms for taken in values] for name, values in samples.items()}
    cpu = {name: [taken.cpu_ms for taken in values] for name, values in samples.items()}

    def ratios(times: dict[str, list[float]]) -> dict[str, float]:
        return {
            name: round(median_ratio(values, times[baselines[name]]), 2)
            for name, values in times.items()
            if name != baselines[name]
        }

    result = {
        "where": f"package {args.package}" if args.package else "working tree",
        "stage": stage,
        "runs": args.runs,
        "median_ms": {name: round(statistics.median(values), 1) for name, values in wall.items()},
        # Each case against the boto3 import of the same files (with or without bytecode).
        "ratio_to_boto3": ratios(wall),
        "cpu_median_ms": {name: round(statistics.median(values), 1) for name, values in cpu.items()},
        "cpu_ratio_to_boto3": ratios(cpu),
        "imports_pillow_or_processors": heavy,
    }
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{result['where']}, stage {stage}, median of {args.runs} runs (wall clock | CPU time):")
    for name in wall:
        line = f"  {name:34s} {result['median_ms'][name]:7.1f} ms | {result['cpu_median_ms'][name]:7.1f} ms"
        if name in result["ratio_to_boto3"]:
            wall_ratio, cpu_ratio = result["ratio_to_boto3"][name], result["cpu_ratio_to_boto3"][name]
            line += f"  ({wall_ratio}x | {cpu_ratio}x {baselines[name]})"
        print(line)
    print(f"  Pillow/processors imported by app: {heavy}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
