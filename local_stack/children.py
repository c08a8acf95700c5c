"""Child processes that never outlive the process that started them (Linux).

The local stack is a supervisor and its children (moto, API, workers, sweep); the e2e
tests, the demo and the benchmarks start the supervisor itself as a child. A parent that
ends normally stops its children (``stop``); one that is killed (SIGKILL, an OOM kill, a
crashed test runner) cannot, so each child asks the kernel for SIGKILL when its parent
dies (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable

PR_SET_PDEATHSIG = 1


def die_with_parent() -> Callable[[], None]:
    """A ``preexec_fn`` for ``subprocess.Popen``: the child is killed when this process dies.

    The kernel ties the signal to the thread that forks: start children from a thread that
    lives as long as they should (the main thread, or the one holding a ``with`` block).
    """
    parent = os.getpid()
    try:
        # Looked up here, not after the fork: the child should only make the call.
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux: stop() still ends the children
        prctl = None

    def preexec() -> None:
        if prctl is None:
            return
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl: no signal will come
            os._exit(1)

    return preexec


def stop_processes(processes: Iterable[subprocess.Popen[bytes] | subprocess.Popen[str]], timeout: float = 10.0) -> None:
    """SIGTERM each process still running, wait up to ``timeout`` seconds, SIGKILL the rest."""
    running = [p for p in processes if p.poll() is None]
    for process in running:
        process.terminate()
    deadline = time.monotonic() + timeout
    for process in running:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
