"""The work bounds of one upload, through the processor Lambda on moto: the scan bomb, the
per-image time budget and the records of a batch that could not finish in the invocation."""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from typing import Any

import pytest
from chalice.local import LambdaContext

from chalicelib import dependencies
from chalicelib.events.uploads import FINISH_MARGIN_SECONDS
from chalicelib.settings import get_settings
from tests.functional.conftest import Stack
from tests.functional.support import EventCapture, Uploader, deliver, image_bytes
from tests.processors import hostile

#: A JPEG within every structure limit that still takes well over a second to decode:
#: 32 scans (the limit) over 7000x7000 pixels, 50-200 ms each.
SLOW_BUT_WELL_FORMED = hostile.scan_bomb(32 - 6)


@pytest.fixture
def image_timeout(monkeypatch: pytest.MonkeyPatch, aws_stack: Stack) -> Iterator[float]:
    """IMAGE_TIMEOUT_SECONDS=1 for this test (the settings are read once, so reset them)."""
    monkeypatch.setenv("IMAGE_TIMEOUT_SECONDS", "1")
    get_settings.cache_clear()
    dependencies.reset()
    yield 1.0
    get_settings.cache_clear()
    dependencies.reset()


def _terminal(uploader: Uploader, image_id: str) -> tuple[str, str | None]:
    status = uploader.status(image_id)
    return status["status"], status.get("error", {}).get("code")


def test_the_issues_scan_bomb_fails_at_once_as_too_complex_with_one_event(
    uploader: Uploader, sns_events: EventCapture
) -> None:
    started = time.perf_counter()
    image_id, _ = uploader.process(hostile.scan_bomb(2000))  # 99 s of decoding without the bound

    assert time.perf_counter() - started < 10
    assert _terminal(uploader, image_id) == ("failed", "image_too_complex")
    [event] = sns_events.drain()
    assert event.body["type"] == "image.failed"
    assert event.body["image"]["error"]["code"] == "image_too_complex"


def test_an_image_over_its_time_budget_fails_while_the_rest_of_its_batch_completes(
    uploader: Uploader, sns_events: EventCapture, image_timeout: float
) -> None:
    images = [image_bytes(), SLOW_BUT_WELL_FORMED, image_bytes(640, 480)]
    created = [uploader.create(size=len(data)) for data in images]
    bodies = [body for entry, data in zip(created, images, strict=True) for body in uploader.put(entry, data)]

    started = time.perf_counter()
    response = deliver(uploader.api, bodies)
    assert response == {"batchItemFailures": []}  # one batch; every record was finished
    elapsed = time.perf_counter() - started

    assert [_terminal(uploader, entry["id"]) for entry in created] == [
        ("completed", None),
        ("failed", "processing_timeout"),
        ("completed", None),
    ]
    assert elapsed < 10  # the slow image was stopped near its 1 s budget, not decoded to the end
    events = {e.body["image"]["id"]: e.body["type"] for e in sns_events.drain()}
    assert events == {
        created[0]["id"]: "image.completed",
        created[1]["id"]: "image.failed",
        created[2]["id"]: "image.completed",
    }


def _invoke_with(uploader: Uploader, monkeypatch: pytest.MonkeyPatch, bodies: list[str], seconds: float) -> Any:
    """Invoke the processor with a context that has ``seconds`` left, as a late invocation would."""
    import chalice.test

    context = functools.partial(LambdaContext, max_runtime_ms=int(seconds * 1000))
    monkeypatch.setattr(chalice.test, "LambdaContext", context)
    return deliver(uploader.api, bodies)


def test_a_record_that_could_not_finish_before_the_function_timeout_is_not_started(
    uploader: Uploader, sns_events: EventCapture, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = image_bytes()
    created = uploader.create(size=len(data))
    bodies = uploader.put(created, data)
    too_little = get_settings().image_timeout_seconds + FINISH_MARGIN_SECONDS - 1

    assert len(_invoke_with(uploader, monkeypatch, bodies, too_little)["batchItemFailures"]) == 1

    # Not failed, not even started: the record goes back to the queue untouched.
    assert _terminal(uploader, created["id"]) == ("pending", None)
    assert sns_events.drain() == []


def test_after_a_slow_image_the_records_left_in_the_batch_go_back_to_the_queue(
    uploader: Uploader, sns_events: EventCapture, monkeypatch: pytest.MonkeyPatch, image_timeout: float
) -> None:
    # Time for the slow image and its margin, but not for another image after it.
    images = [SLOW_BUT_WELL_FORMED, image_bytes()]
    created = [uploader.create(size=len(data)) for data in images]
    bodies = [body for entry, data in zip(created, images, strict=True) for body in uploader.put(entry, data)]

    response = _invoke_with(uploader, monkeypatch, bodies, image_timeout + FINISH_MARGIN_SECONDS + 0.5)
    assert len(response["batchItemFailures"]) == 1  # the second image, not started

    assert _terminal(uploader, created[0]["id"]) == ("failed", "processing_timeout")
    assert _terminal(uploader, created[1]["id"]) == ("pending", None)
    assert [e.body["type"] for e in sns_events.drain()] == ["image.failed"]
