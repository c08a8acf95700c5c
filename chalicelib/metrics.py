"""CloudWatch metrics in Embedded Metric Format: one JSON line on stdout per data point.

Lambda ships stdout to CloudWatch Logs, which extracts the metrics: no API call and no
latency on the request path. Namespace ``ImageService``, dimension ``Stage`` plus the
ones a metric names (``Step``, ``Reason``, ``EventType``). Services receive a ``Metrics``
in their constructor; the default records nothing.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Literal, Protocol

Unit = Literal["Count", "Milliseconds"]
NAMESPACE = "ImageService"


class Metrics(Protocol):
    def emit(self, name: str, value: float, unit: Unit = "Count", **dimensions: str) -> None: ...


class NoMetrics:
    def emit(self, name: str, value: float, unit: Unit = "Count", **dimensions: str) -> None:
        return None


NO_METRICS = NoMetrics()


def _stdout(line: str) -> None:
    print(line, file=sys.stdout, flush=True)


class EmfMetrics:
    def __init__(self, stage: str, write: Callable[[str], None] = _stdout) -> None:
        self._stage = stage
        self._write = write

    def emit(self, name: str, value: float, unit: Unit = "Count", **dimensions: str) -> None:
        all_dimensions = {"Stage": self._stage, **dimensions}
        document = {
            "_aws": {
                "Timestamp": int(time.time() * 1000),
                "CloudWatchMetrics": [
                    {
                        "Namespace": NAMESPACE,
                        "Dimensions": [sorted(all_dimensions)],
                        "Metrics": [{"Name": name, "Unit": unit}],
                    }
                ],
            },
            **all_dimensions,
            name: value,
        }
        self._write(json.dumps(document, separators=(",", ":")))
