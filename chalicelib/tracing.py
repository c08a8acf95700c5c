"""AWS X-Ray: boto3 calls and the processing steps as subsegments.

On when the function runs with active tracing (Lambda sets AWS_XRAY_DAEMON_ADDRESS) or
when TRACING=on; off in tests and in the local stack unless asked for. The SDK is only
imported when tracing is on, so it costs nothing on a cold start otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache


@lru_cache(maxsize=1)
def enabled() -> bool:
    setting = os.environ.get("TRACING", "auto").lower()
    if setting in ("on", "true", "1"):
        return True
    if setting in ("off", "false", "0"):
        return False
    return bool(os.environ.get("AWS_XRAY_DAEMON_ADDRESS"))


@lru_cache(maxsize=1)
def configure() -> bool:
    """Patch boto3 once, if tracing is on. Returns whether it is."""
    if not enabled():
        return False
    from aws_xray_sdk.core import patch, xray_recorder

    xray_recorder.configure(service="image-service", context_missing="LOG_ERROR")
    patch(["boto3"])
    return True


@contextmanager
def subsegment(name: str) -> Iterator[None]:
    """Time a step of processing as an X-Ray subsegment (a no-op when tracing is off)."""
    if not configure():
        yield
        return
    from aws_xray_sdk.core import xray_recorder

    with xray_recorder.in_subsegment(name):
        yield
