"""Throwaway servers for the migration's tests and benchmark: a PostgreSQL cluster in a
temporary directory, the local stack as a subprocess, and synthetic gallery rows.

Nothing here is used against real stages.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg

from infra.stage_config import LEGACY_SCHEMA, PROJECT_ROOT

LOCAL_STACK_READY = "local stack ready"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def find_initdb() -> Path | None:
    """``initdb`` on PATH, else Debian's versioned directory."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve()
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(candidates[-1]) if candidates else None


class TemporaryPostgres:
    """``initdb`` into a new temporary directory, ``pg_ctl start`` on a free port with the
    socket in that directory, and ``stop()`` (which removes it) at the end.

    As root the server runs as the ``postgres`` user (PostgreSQL refuses root). Durability
    is off (fsync, synchronous_commit): the data is thrown away.
    """

    def __init__(self) -> None:
        initdb = find_initdb()
        if initdb is None:
            raise FileNotFoundError("initdb not found (install Debian's postgresql package)")
        self._bin = initdb.parent
        # Its own directory under the system temp dir: the postgres user must reach it,
        # and pytest's tmp_path is private to the user running the tests.
        self.base_dir = Path(tempfile.mkdtemp(prefix="gallery-pg-"))
        self.data_dir = self.base_dir / "data"
        self.socket_dir = self.base_dir / "socket"
        self.port = free_port()
        self._user: str | None = "postgres" if os.geteuid() == 0 else None

    def _run(self, *args: str) -> None:
        result = subprocess.run(list(args), user=self._user, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{Path(args[0]).name} failed ({result.returncode}): {result.stderr or result.stdout}")

    def start(self) -> TemporaryPostgres:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self.socket_dir.mkdir(exist_ok=True)
        if self._user is not None:
            shutil.chown(self.base_dir, self._user)
            shutil.chown(self.socket_dir, self._user)
        self._run(
            str(self._bin / "initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        options = (
            f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=50"
        )
        self._run(
            str(self._bin / "pg_ctl"),
            "-D",
            str(self.data_dir),
            "-o",
            options,
            "-l",
            str(self.base_dir / "log"),
            "-w",
            "start",
        )

    def stop(self) -> None:
        if self.data_dir.exists():
            subprocess.run(
                [str(self._bin / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "-w", "stop"],
                user=self._user,
                capture_output=True,
                check=False,
            )
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def dsn(self, dbname: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={dbname}"

    def create_database(self, name: str, schema: Path = LEGACY_SCHEMA) -> str:
        """A new database holding the legacy schema; returns its DSN."""
        with psycopg.connect(self.dsn(), autocommit=True) as admin:
            admin.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
        with psycopg.connect(self.dsn(name), autocommit=True) as connection:
            connection.execute(schema.read_text())
        return self.dsn(name)


def seed_gallery(dsn: str, count: int, *, start: int = 0, users: int = 1000) -> None:
    """``count`` synthetic rows, generated inside PostgreSQL (fast at any size).

    Ids are derived from the row number, so the same call gives the same rows. About a
    tenth of the rows have no album, no title or no thumbnail; tags vary in number.
    """
    query = """
    INSERT INTO gallery_images (id, user_id, album_id, title, description, tags, original_filename,
                                mime_type, file_size, s3_key, thumbnail_key, width, height, created_at, updated_at)
    SELECT md5('gallery-row-' || i)::uuid,
           'user-' || (i %% %(users)s),
           CASE WHEN i %% 10 = 0 THEN NULL ELSE 'album-' || (i %% 97) END,
           CASE WHEN i %% 11 = 0 THEN NULL ELSE 'Photo ' || i || ' – château' END,
           CASE WHEN i %% 3 = 0 THEN 'Description of photo ' || i ELSE NULL END,
           (ARRAY['castle', 'moc', 'space', 'city', 'technic'])[1:(i %% 6)],
           'photo-' || i || '.jpg',
           CASE WHEN i %% 7 = 0 THEN 'image/PNG' ELSE 'image/jpeg' END,
           10000 + i * 13,
           'images/user-' || (i %% %(users)s) || '/' || md5('gallery-row-' || i)::uuid || '.jpg',
           CASE WHEN i %% 9 = 0 THEN NULL
                ELSE 'images/user-' || (i %% %(users)s) || '/thumbnails/' || md5('gallery-row-' || i)::uuid || '.jpg'
           END,
           CASE WHEN i %% 13 = 0 THEN NULL ELSE 800 + i %% 1200 END,
           CASE WHEN i %% 13 = 0 THEN NULL ELSE 600 + i %% 900 END,
           -- pairs of rows share created_at: the keyset must break ties by id
           timestamptz '2015-01-01 00:00:00+00' + ((i / 2) * interval '37 seconds') + interval '1 microsecond',
           timestamptz '2015-01-01 00:00:00+00' + (i * interval '37 seconds') + interval '3 days'
    FROM generate_series(%(first)s::integer, %(last)s::integer) AS i
    """
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(query, {"users": users, "first": start, "last": start + count - 1})


class LocalStackProcess:
    """``local_stack/supervisor.py`` as a subprocess on free ports; ``stop()`` ends it."""

    def __init__(self, log_path: Path, workers: int = 1) -> None:
        self.aws_port = free_port()
        self.api_port = free_port()
        self.cdn_port = free_port()
        self._log_path = log_path
        self._workers = workers
        self._process: subprocess.Popen[str] | None = None
        self._ready = threading.Event()

    @property
    def aws_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.aws_port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def start(self, timeout: float = 90.0) -> LocalStackProcess:
        command = [
            sys.executable,
            "-m",
            "local_stack",
            "--aws-port",
            str(self.aws_port),
            "--api-port",
            str(self.api_port),
            "--cdn-port",
            str(self.cdn_port),
            "--workers",
            str(self._workers),
        ]
        environment = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LOCAL_"))}
        self._process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=environment,
            cwd=PROJECT_ROOT,
        )
        threading.Thread(target=self._pump, name="local-stack-log", daemon=True).start()
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.2):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                log = self._log_path.read_text() if self._log_path.exists() else ""
                raise RuntimeError(f"the local stack did not start:\n{log[-3000:]}")
        return self

    def _pump(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        with self._log_path.open("w") as log:
            for line in self._process.stdout:
                log.write(line)
                log.flush()
                if LOCAL_STACK_READY in line:
                    self._ready.set()

    def stop(self) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        self._process.send_signal(signal.SIGTERM)
        try:
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=5)

    def environment(self) -> dict[str, str]:
        """What a migration command needs to reach this stack's DynamoDB."""
        return {
            "AWS_ENDPOINT_URL": self.aws_endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
        }
