"""Reads a stage's environment from ``.chalice/config.json`` (global values, then the stage's)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG_PATH = PROJECT_ROOT / ".chalice" / "config.json"
LOCAL_STAGE = "local"
# The folder of shared material beside the project (API.md, DESIGN.md, corpus/):
# IMAGE_SERVICE_SHARED_DIR, else ../shared. The image corpus can be pointed at on its own.
SHARED_DIR = Path(os.environ.get("IMAGE_SERVICE_SHARED_DIR", str(PROJECT_ROOT.parent / "shared")))
CORPUS_DIR = Path(os.environ.get("IMAGE_CORPUS_DIR", str(SHARED_DIR / "corpus")))
# The legacy monolith's gallery_images DDL: a verbatim copy of shared/legacy_schema.sql
# (tests/migration/test_legacy_mapping.py checks they stay equal), so that the throwaway
# PostgreSQL of the tests and the benchmark needs nothing outside the repository.
LEGACY_SCHEMA = PROJECT_ROOT / "migration" / "legacy_schema.sql"
# moto accepts any credentials; these keep boto3 from looking for real ones.
FAKE_AWS_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


def command_environment(parser: argparse.ArgumentParser, stage: str, endpoint_url: str | None) -> dict[str, str]:
    """For an operator command: the stage's environment, after refusing the local stage
    without an endpoint (it never talks to AWS) and giving it moto's credentials."""
    if stage == LOCAL_STAGE and not endpoint_url:
        parser.error("the local stage needs --endpoint-url (or AWS_ENDPOINT_URL), e.g. http://127.0.0.1:4566")
    use_local_credentials(stage)
    return stage_environment(stage)


def use_local_credentials(stage: str) -> None:
    """The local stage talks to moto only: give boto3 moto's placeholder credentials
    unless some are set, so a command against the local stack needs no AWS profile."""
    if stage == LOCAL_STAGE:
        for name, value in FAKE_AWS_ENVIRONMENT.items():
            os.environ.setdefault(name, value)


def load_config(path: Path = CONFIG_PATH) -> dict[str, Any]:
    config: dict[str, Any] = json.loads(path.read_text())
    return config


def stage_environment(stage: str, path: Path = CONFIG_PATH) -> dict[str, str]:
    config = load_config(path)
    if stage not in config.get("stages", {}):
        known = ", ".join(sorted(config.get("stages", {})))
        raise SystemExit(f"unknown stage {stage!r}; .chalice/config.json has: {known}")
    environment = dict(config.get("environment_variables", {}))
    environment.update(config["stages"][stage].get("environment_variables", {}))
    return {name: str(value) for name, value in environment.items()}


def apply_stage_environment(stage: str) -> dict[str, str]:
    """Put the stage's variables into ``os.environ`` (without overriding explicit ones)."""
    environment = stage_environment(stage)
    for name, value in environment.items():
        os.environ.setdefault(name, value)
    return environment
