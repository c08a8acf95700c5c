"""Metrics (Embedded Metric Format) and tracing switches, without IO."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from chalicelib import tracing
from chalicelib.metrics import NAMESPACE, EmfMetrics, Unit
from chalicelib.services.presenter import Presenter
from chalicelib.services.processing import ProcessingService
from processors import ImageRejected, Limits, ProcessedImage
from tests.unit.fakes import CDN
from tests.unit.test_processing_service import World, s3_message


class RecordedMetrics:
    def __init__(self) -> None:
        self.points: list[tuple[str, float, str, dict[str, str]]] = []

    def emit(self, name: str, value: float, unit: Unit = "Count", **dimensions: str) -> None:
        self.points.append((name, value, unit, dimensions))

    def names(self) -> list[str]:
        return [name for name, *_ in self.points]


def test_an_emf_line_declares_its_metric_namespace_and_dimensions():
    lines: list[str] = []
    EmfMetrics("prod", write=lines.append).emit("ProcessingFailures", 1, Reason="corrupt_image")
    (line,) = lines
    document: dict[str, Any] = json.loads(line)
    directive = document["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == NAMESPACE
    assert directive["Dimensions"] == [["Reason", "Stage"]]
    assert directive["Metrics"] == [{"Name": "ProcessingFailures", "Unit": "Count"}]
    assert (document["Stage"], document["Reason"], document["ProcessingFailures"]) == ("prod", "corrupt_image", 1)
    assert isinstance(document["_aws"]["Timestamp"], int)


def _service(world: World, metrics: RecordedMetrics) -> ProcessingService:
    def timed(data: bytes, limits: Limits) -> ProcessedImage:
        return replace(world.processor(data, limits), timings_ms={"decode": 12.5, "encode": 80.0})

    return ProcessingService(
        world.repo,
        world.store,
        world.publisher,
        Presenter(CDN),
        world.settings,
        processor=timed,
        clock=world.clock,
        metrics=metrics,
    )


def test_processing_reports_completion_and_every_step_duration():
    world, metrics = World(), RecordedMetrics()
    world.pending()
    service = _service(world, metrics)
    service.handle_message(s3_message(world.upload()))
    assert "ImagesCompleted" in metrics.names()
    durations = {d["Step"]: v for name, v, unit, d in metrics.points if name == "ProcessingDuration"}
    assert durations == {"decode": 12.5, "encode": 80.0}
    assert ("EventsPublished", 1, "Count", {"EventType": "completed"}) in metrics.points
    assert "ProcessingFailures" not in metrics.names()


def test_a_rejected_image_is_counted_by_its_reason():
    world, metrics = World(), RecordedMetrics()
    world.pending()
    world.processor.reject = ImageRejected("corrupt_image", "The file is damaged.")
    _service(world, metrics).handle_message(s3_message(world.upload()))
    assert ("ProcessingFailures", 1, "Count", {"Reason": "corrupt_image"}) in metrics.points
    assert "ImagesCompleted" not in metrics.names()


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({}, False),
        ({"AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129:2000"}, True),
        ({"AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129:2000", "TRACING": "off"}, False),
        ({"TRACING": "on"}, True),
    ],
)
def test_tracing_is_on_only_under_active_tracing_or_when_asked(monkeypatch, environment, expected):
    monkeypatch.delenv("AWS_XRAY_DAEMON_ADDRESS", raising=False)
    monkeypatch.delenv("TRACING", raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    tracing.enabled.cache_clear()
    try:
        assert tracing.enabled() is expected
    finally:
        tracing.enabled.cache_clear()


def test_a_subsegment_is_a_plain_block_when_tracing_is_off(monkeypatch):
    monkeypatch.setenv("TRACING", "off")
    tracing.enabled.cache_clear()
    tracing.configure.cache_clear()
    ran = []
    with tracing.subsegment("step"):
        ran.append(True)
    assert ran == [True]
    assert tracing.configure() is False
    tracing.enabled.cache_clear()
    tracing.configure.cache_clear()
