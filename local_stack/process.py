"""Start the local stack as a child process and wait until it serves (demo, e2e, benchmarks).

The stack (local_stack/supervisor.py, a supervisor with its own children) stops when the
block ends, and is killed by the kernel if the process that started it dies first.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from local_stack.children import die_with_parent
from local_stack.supervisor import READY_LINE

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class RunningStack:
    api_url: str
    aws_url: str
    cdn_url: str
    log: deque[str]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def local_stack(
    aws_port: int | None = None,
    api_port: int | None = None,
    workers: int = 2,
    startup_timeout: float = 90.0,
    echo: bool = False,
    sweep_seconds: float = 10.0,
    environment: dict[str, str] | None = None,
    api_processes: int | None = None,
) -> Iterator[RunningStack]:
    """Run ``local_stack/supervisor.py`` for the duration of the block, then stop it.

    Enter it from a thread that outlives the block (the kernel kills the stack when the
    thread that started it ends)."""
    aws_port = aws_port or free_port()
    api_port = api_port or free_port()
    cdn_port = free_port()
    command = [
        sys.executable,
        "-m",
        "local_stack",
        f"--aws-port={aws_port}",
        f"--api-port={api_port}",
        f"--cdn-port={cdn_port}",
        f"--workers={workers}",
        f"--sweep-seconds={sweep_seconds}",
    ]
    if api_processes is not None:
        command.append(f"--api-processes={api_processes}")
    # ``environment`` overrides the stage configuration (e.g. a short upload window).
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(environment or {})}
    process = subprocess.Popen(
        command,
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=die_with_parent(),
    )
    log: deque[str] = deque(maxlen=2000)
    ready = threading.Event()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            log.append(line.rstrip())
            if echo:
                print(f"  [stack] {line.rstrip()}", file=sys.stderr)
            if READY_LINE in line:
                ready.set()

    threading.Thread(target=pump, name="stack-log", daemon=True).start()
    deadline = time.monotonic() + startup_timeout
    while not ready.wait(0.2):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            tail = "\n".join(list(log)[-30:])
            raise RuntimeError(f"the local stack did not start (exit {process.returncode}):\n{tail}")
    try:
        yield RunningStack(
            api_url=f"http://127.0.0.1:{api_port}",
            aws_url=f"http://127.0.0.1:{aws_port}",
            cdn_url=f"http://127.0.0.1:{cdn_port}",
            log=log,
        )
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
