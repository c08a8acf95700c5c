"""Dual-write from the legacy API: sent after the PostgreSQL write, never failing it."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from tenacity import wait_none

from migration.dual_write import DualWriteOutcome, DualWriter
from migration.sandbox import LocalStackProcess, free_port
from tests.conftest import local_token
from tests.migration.misbehaving import MisbehavingServer


def legacy_row(image_id: str, title: str = "Castle", updated: datetime | None = None) -> dict[str, Any]:
    """A row as the legacy API's data layer has it (column names)."""
    return {
        "id": image_id,
        "user_id": "dual-user",
        "album_id": None,
        "title": title,
        "description": None,
        "tags": ["castle"],
        "original_filename": "castle.jpg",
        "mime_type": "image/jpeg",
        "file_size": 1234,
        "s3_key": f"images/dual-user/{image_id}.jpg",
        "thumbnail_key": None,
        "width": 10,
        "height": 20,
        "created_at": datetime(2020, 1, 1, tzinfo=UTC),
        "updated_at": updated or datetime(2021, 1, 1, tzinfo=UTC),
    }


def service_token() -> str:
    return local_token("legacy-gallery", scopes=("image-service/images:import",))


def writer_for(url: str, **options: Any) -> DualWriter:
    return DualWriter(url, service_token, read_timeout=0.3, wait=wait_none(), **options)


def test_a_committed_row_reaches_the_image_service_and_a_retry_of_it_changes_nothing(
    local_stack: LocalStackProcess,
) -> None:
    image_id = "5d0c3f52-7a3e-4c55-9f0a-3c8b0c7f2a11"
    writer = DualWriter(local_stack.api_url, service_token)

    first = writer.after_legacy_write(legacy_row(image_id))
    again = writer.after_legacy_write(legacy_row(image_id, title="same updated_at"))
    older = writer.after_legacy_write(legacy_row(image_id, updated=datetime(2020, 6, 1, tzinfo=UTC)))

    assert (first, again, older) == (DualWriteOutcome.WRITTEN, DualWriteOutcome.WRITTEN, DualWriteOutcome.STALE)
    image = requests.get(
        f"{local_stack.api_url}/images/{image_id}",
        headers={"Authorization": f"Bearer {local_token('dual-user')}"},
        timeout=10,
    ).json()
    assert (image["id"], image["title"], image["status"]) == (image_id, "Castle", "completed")
    assert (writer.stats.written, writer.stats.stale, writer.stats.failed) == (2, 1, 0)


@pytest.mark.parametrize("mode", ["slow", "error"])
def test_a_misbehaving_service_is_retried_a_bounded_number_of_times_then_counted_as_failed(mode: str) -> None:
    with MisbehavingServer(mode, delay=1.0) as server:
        writer = writer_for(server.url, attempts=3)
        began = time.monotonic()

        outcome = writer.after_legacy_write(legacy_row("6e1d4a63-8b4f-4d66-8a1b-4d9c1d8a3b22"))

    assert outcome is DualWriteOutcome.FAILED
    assert len(server.requests) == 3
    assert writer.stats.failed == 1
    assert time.monotonic() - began < 3


def test_a_refused_connection_is_counted_as_failed_without_raising() -> None:
    writer = writer_for(f"http://127.0.0.1:{free_port()}", attempts=2)

    outcome = writer.after_legacy_write(legacy_row("7f2e5b74-9c5a-4e77-9b2c-5eaf2e9b4c33"))

    assert outcome is DualWriteOutcome.FAILED
    assert writer.stats.failed == 1


def test_a_row_the_service_refuses_with_400_is_not_retried() -> None:
    with MisbehavingServer("bad_request") as server:
        outcome = writer_for(server.url).after_legacy_write(legacy_row("8a3f6c85-ad6b-4f88-8c3d-6fb03fac5d44"))

    assert outcome is DualWriteOutcome.FAILED
    assert len(server.requests) == 1


def test_a_row_that_does_not_fit_the_import_model_fails_without_a_request() -> None:
    with MisbehavingServer("ok") as server:
        writer = writer_for(server.url)
        outcome = writer.after_legacy_write(legacy_row("9b4a7d96-be7c-4a99-9d4e-7ac14abd6e55") | {"tags": [None]})

    assert outcome is DualWriteOutcome.FAILED
    assert server.requests == []


def test_dual_write_is_off_unless_the_flag_says_otherwise() -> None:
    with MisbehavingServer("ok") as server:
        off = DualWriter.from_environ({"IMAGE_SERVICE_URL": server.url}, service_token)
        on = DualWriter.from_environ(
            {"ENABLE_DYNAMODB_DUAL_WRITE": "true", "IMAGE_SERVICE_URL": server.url}, service_token
        )

        outcomes = [
            writer.after_legacy_write(legacy_row("ab5b8ea7-cf8d-4baa-8e5f-8bd25bce7f66")) for writer in (off, on)
        ]

    assert outcomes == [DualWriteOutcome.DISABLED, DualWriteOutcome.WRITTEN]
    assert len(server.requests) == 1


def test_turning_dual_write_on_without_a_service_url_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="IMAGE_SERVICE_URL"):
        DualWriter.from_environ({"ENABLE_DYNAMODB_DUAL_WRITE": "1"}, service_token)
