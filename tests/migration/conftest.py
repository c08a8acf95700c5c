"""Fixtures of the migration tests: a throwaway PostgreSQL, the local stack as a
subprocess, a real Redis server, and helpers to run the migration commands."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest

from infra.stage_config import LEGACY_SCHEMA
from migration.sandbox import LocalStackProcess, TemporaryPostgres, find_initdb, free_port, seed_gallery
from tests.conftest import PROJECT_ROOT
from tests.functional.conftest import api, aws_stack  # noqa: F401 - fixtures of the import endpoint tests


@pytest.fixture(scope="session")
def postgres() -> Iterator[TemporaryPostgres]:
    """One PostgreSQL server for the session (initdb into a temporary directory)."""
    if find_initdb() is None:
        pytest.skip("initdb not found: install Debian's postgresql package (scripts/bootstrap.sh does)")
    server = TemporaryPostgres().start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Gallery:
    """A fresh database holding the legacy ``gallery_images`` table."""

    dsn: str

    def seed(self, count: int, start: int = 0) -> None:
        seed_gallery(self.dsn, count, start=start)

    def execute(self, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.dsn, autocommit=True) as connection, connection.cursor() as cursor:
            cursor.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def ids(self) -> list[str]:
        return [str(row[0]) for row in self.execute("SELECT id FROM gallery_images ORDER BY created_at, id")]


@pytest.fixture
def gallery(postgres: TemporaryPostgres) -> Gallery:
    return Gallery(postgres.create_database(f"gallery_{uuid.uuid4().hex[:12]}", LEGACY_SCHEMA))


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackProcess]:
    """``local_stack/supervisor.py`` on free ports, for the commands that talk to DynamoDB."""
    stack = LocalStackProcess(tmp_path_factory.mktemp("local-stack") / "stack.log").start()
    try:
        yield stack
    finally:
        stack.stop()


def provision_table(local_stack: LocalStackProcess, table_name: str) -> None:
    """A table of the stages' layout (``scripts/provision.py``'s own code) in the local stack."""
    from infra.provision import Report, StageResources, ensure_table

    client = boto3.client("dynamodb", endpoint_url=local_stack.aws_endpoint, **FAKE_CLIENT_OPTIONS)
    resources = StageResources(
        stage="local",
        region="us-east-1",
        table_name=table_name,
        upload_bucket="-",
        image_bucket="-",
        queue_name="-",
        topic_name="-",
        webhook_dlq_name="-",
    )
    ensure_table(client, resources, Report())


FAKE_CLIENT_OPTIONS: dict[str, Any] = {
    "region_name": "us-east-1",
    "aws_access_key_id": "testing",
    "aws_secret_access_key": "testing",
}


@contextmanager
def applied(environment: dict[str, str]) -> Iterator[dict[str, str]]:
    """``environment`` applied to this process too, and restored after (opening a stage
    table sets stage variables)."""
    saved = dict(os.environ)
    os.environ.pop("TABLE_NAME", None)
    os.environ.update(environment)
    try:
        yield dict(os.environ)
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture
def stack_env(local_stack: LocalStackProcess) -> Iterator[dict[str, str]]:
    """The environment of a migration command aimed at the local stack, with a table of
    this test's own (``TABLE_NAME``): a full verification scans every imported record of
    the table, and other tests' records must not be there."""
    table_name = f"ImageMetadata-test-{uuid.uuid4().hex[:12]}"
    provision_table(local_stack, table_name)
    with applied({**local_stack.environment(), "TABLE_NAME": table_name}) as environment:
        yield environment


@pytest.fixture
def api_stack_env(local_stack: LocalStackProcess) -> Iterator[dict[str, str]]:
    """As ``stack_env``, but on the local stage's own table: the one the local stack's API
    serves, for tests that go through the API too."""
    with applied(local_stack.environment()) as environment:
        yield environment


def run_command(
    script: str, *args: str, env: dict[str, str], timeout: float = 120, cwd: Path = PROJECT_ROOT
) -> subprocess.CompletedProcess[str]:
    """``python scripts/<script> args...`` as an operator runs it (from ``cwd``)."""
    return subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "scripts" / script), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[Any]:
    """A real redis-server on a free port, its files in a temporary directory."""
    import redis

    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server not found: apt-get install redis-server (scripts/bootstrap.sh does)")
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(tmp_path),
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise
            time.sleep(0.05)
    try:
        yield client
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=10)
