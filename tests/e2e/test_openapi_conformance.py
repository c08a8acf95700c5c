"""schemathesis against the local stack: every endpoint, with auth, all checks."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import requests

from local_stack.process import RunningStack
from tests.conftest import local_token

CONFIG = Path(__file__).with_name("schemathesis.toml")


def test_schemathesis_finds_no_5xx_and_no_response_outside_the_document(stack: RunningStack):
    schemathesis = Path(sys.executable).with_name("schemathesis")
    command = [
        str(schemathesis),
        "--config-file",
        str(CONFIG),
        "run",
        f"{stack.api_url}/openapi.json",
        "--header",
        f"Authorization: Bearer {local_token('schemathesis-user')}",
        "--checks",
        "all",
        "--max-examples",
        "25",
        "--workers",
        "2",
        "--seed",
        "20261122",
        "--no-color",
    ]
    document = requests.get(f"{stack.api_url}/openapi.json", timeout=30).json()
    methods = {"get", "put", "post", "patch", "delete"}
    operations = sum(len(methods & set(item)) for item in document["paths"].values())
    run = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    summary = "\n".join(run.stdout.splitlines()[-25:])
    print(summary)  # the operation and case counts, for the record
    assert run.returncode == 0, run.stdout[-6000:]
    selected = re.search(r"Selected: (\d+)/(\d+)\s+Tested: (\d+)", run.stdout)
    assert selected, summary
    # Every selected operation was tested; schemathesis leaves out only the document itself.
    assert selected[1] == selected[2] == selected[3], summary
    assert int(selected[3]) >= operations - 1, (operations, summary)
    assert re.search(r"(\d+) generated, \1 passed", run.stdout), summary
