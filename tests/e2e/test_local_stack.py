"""The local stack itself: its HTTP edges answer in API.md's error body, and starting and
stopping it (Ctrl-C, SIGTERM, a killed supervisor, a dying child) leaves no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from local_stack.process import PROJECT_ROOT, RunningStack, free_port, local_stack
from local_stack.supervisor import READY_LINE


def assert_api_error(response: requests.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text[:300]
    assert response.headers["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"] and error["requestId"]


@pytest.fixture(params=["api", "cdn"])
def edge(request: pytest.FixtureRequest, stack: RunningStack) -> str:
    return stack.api_url if request.param == "api" else stack.cdn_url


# -- oversized requests and the CDN's root ------------------------------------------------------


def test_a_url_over_64_kib_gets_414_with_the_api_error_body(edge: str) -> None:
    response = requests.get(f"{edge}/images/{'a' * 70_000}", timeout=30)
    assert_api_error(response, 414, "uri_too_long")


def test_a_header_over_64_kib_gets_431_with_the_api_error_body(edge: str) -> None:
    response = requests.get(f"{edge}/health", headers={"X-Padding": "p" * 70_000}, timeout=30)
    assert_api_error(response, 431, "request_header_fields_too_large")


def test_more_than_100_headers_get_431_with_the_api_error_body(edge: str) -> None:
    response = requests.get(f"{edge}/health", headers={f"X-Header-{i}": "1" for i in range(120)}, timeout=30)
    assert_api_error(response, 431, "request_header_fields_too_large")


def test_the_server_still_answers_after_refusing_an_oversized_request(edge: str) -> None:
    with requests.Session() as session:
        assert session.get(f"{edge}/{'b' * 70_000}", timeout=30).status_code == 414
        assert session.get(f"{edge}/health", timeout=30).status_code in (200, 404)


def test_the_cdn_root_is_a_clean_404_without_a_traceback(stack: RunningStack) -> None:
    logged = len(stack.log)
    for method in ("GET", "HEAD"):
        response = requests.request(method, f"{stack.cdn_url}/", timeout=30)
        assert response.status_code == 404
        assert response.headers["Content-Type"].startswith("application/json")
    assert_api_error(requests.get(f"{stack.cdn_url}/", timeout=30), 404, "not_found")
    assert_api_error(requests.get(f"{stack.cdn_url}/no/such/rendition.webp", timeout=30), 404, "not_found")
    time.sleep(0.5)  # the log pump runs in its own thread
    assert not any("Traceback" in line for line in list(stack.log)[logged:])


# -- processes ----------------------------------------------------------------------------------


def children_of(pid: int) -> set[int]:
    """Every live descendant of ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z":
            parents[int(entry.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pids: set[int]) -> set[int]:
    """Those of ``pids`` still running (zombies count as gone)."""
    running = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if state[state.rindex(")") + 2] != "Z":
            running.add(pid)
    return running


def wait_gone(pids: set[int], timeout: float) -> set[int]:
    deadline = time.monotonic() + timeout
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    return alive(pids)


@contextmanager
def supervisor(*extra: str) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    """``python -m local_stack`` as ``make up`` runs it: its own process group, as a
    terminal's foreground job; yields once the ready line is out."""
    command = [
        sys.executable,
        "-m",
        "local_stack",
        f"--aws-port={free_port()}",
        f"--api-port={free_port()}",
        f"--cdn-port={free_port()}",
        *extra,
    ]
    process = subprocess.Popen(
        command,
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    ready = threading.Event()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip())
            if READY_LINE in line:
                ready.set()

    threading.Thread(target=pump, daemon=True).start()
    started: set[int] = set()
    try:
        deadline = time.monotonic() + 120
        while not ready.wait(0.2) and process.poll() is None and time.monotonic() < deadline:
            pass
        time.sleep(0.2)  # the rest of the output, if the process ended
        assert ready.is_set(), "\n".join(lines[-30:])
        started = children_of(process.pid)
        yield process, lines
    finally:
        # Whatever the test did (or the code under test failed to do): nothing of this stack
        # outlives it, not even children its killed supervisor left to init.
        for pid in alive(started | children_of(process.pid) | {process.pid}):
            os.kill(pid, signal.SIGKILL)
        process.wait(timeout=30)


def test_moto_the_api_processes_the_workers_and_the_sweep_run_as_processes_of_their_own() -> None:
    with supervisor("--workers=3", "--api-processes=2") as (process, _):
        roles = []
        for pid in children_of(process.pid):
            arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            roles += [a.decode().removeprefix("--role=") for a in arguments if a.startswith(b"--role=")]
        assert sorted(roles) == ["api", "api", "moto", "sweep", "worker", "worker", "worker"]


def test_ctrl_c_stops_every_process_of_the_stack() -> None:
    with supervisor() as (process, lines):
        children = children_of(process.pid)
        assert len(children) >= 5
        os.killpg(process.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        assert process.wait(timeout=30) == 0
        assert wait_gone(children, 10) == set()
        time.sleep(0.5)
        assert "local stack stopped" in lines
        assert not any("Traceback" in line for line in lines), "\n".join(lines)


def test_sigterm_to_the_supervisor_alone_stops_every_process_of_the_stack() -> None:
    with supervisor() as (process, _):
        children = children_of(process.pid)
        process.terminate()
        assert process.wait(timeout=30) == 0
        assert wait_gone(children, 10) == set()


def test_the_children_die_with_a_killed_supervisor() -> None:
    with supervisor() as (process, _):
        children = children_of(process.pid)
        process.kill()
        process.wait(timeout=10)
        assert wait_gone(children, 10) == set()


def test_a_child_that_dies_stops_the_whole_stack() -> None:
    with supervisor() as (process, lines):
        children = children_of(process.pid)
        moto = next(pid for pid in children if b"--role=moto" in Path(f"/proc/{pid}/cmdline").read_bytes())
        os.kill(moto, signal.SIGKILL)
        assert process.wait(timeout=30) == 1
        assert wait_gone(children, 10) == set()
        time.sleep(0.5)
        assert any("the moto process" in line for line in lines), "\n".join(lines)


def test_a_port_in_use_is_refused_before_anything_starts() -> None:
    with local_stack() as running:
        api_port = running.api_url.rsplit(":", 1)[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "local_stack",
                f"--api-port={api_port}",
                f"--aws-port={free_port()}",
                f"--cdn-port={free_port()}",
            ],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2
        assert "already in use" in result.stderr
        assert requests.get(f"{running.api_url}/health", timeout=10).status_code == 200


def test_the_local_stack_context_manager_leaves_no_process_behind() -> None:
    before = children_of(os.getpid())
    with local_stack() as running:
        assert requests.get(f"{running.api_url}/health", timeout=10).status_code == 200
        started = children_of(os.getpid()) - before
        assert len(started) >= 6  # the supervisor, moto, two API processes, two workers, the sweep
    assert wait_gone(started, 10) == set()


def test_a_stack_whose_test_process_is_killed_goes_with_it(tmp_path: Path) -> None:
    """The e2e runs' guarantee: a test process that dies (SIGKILL) takes its stack along."""
    script = tmp_path / "holder.py"
    script.write_text(
        "import time\n"
        "from local_stack.process import local_stack\n"
        "with local_stack():\n"
        "    print('holding', flush=True)\n"
        "    time.sleep(600)\n"
    )
    holder = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    stack: set[int] = set()
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "holding"
        stack = children_of(holder.pid)
        assert len(stack) >= 6
        holder.kill()
        holder.wait(timeout=10)
        assert wait_gone(stack, 15) == set()
    finally:
        holder.kill()
        for pid in alive(stack | children_of(holder.pid)):
            os.kill(pid, signal.SIGKILL)


def test_a_stack_started_again_at_once_on_the_same_ports_starts() -> None:
    """Connections the stopped stack closed first (TIME_WAIT on its ports) are no 'port in use'."""
    api_port = free_port()
    ports = (f"--aws-port={free_port()}", f"--api-port={api_port}", f"--cdn-port={free_port()}")
    with supervisor(*ports) as (process, _):
        # A refused oversized request: the server closes the connection first.
        assert requests.get(f"http://127.0.0.1:{api_port}/{'x' * 70_000}", timeout=30).status_code == 414
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(timeout=30) == 0
    with supervisor(*ports) as (process, lines):
        assert process.poll() is None, "\n".join(lines)
        assert requests.get(f"http://127.0.0.1:{api_port}/health", timeout=10).status_code == 200
