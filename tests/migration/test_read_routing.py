"""Read routing for the cutover: a stable per-user split, and fallback to PostgreSQL."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from typing import Any

import pytest

from chalicelib.services.presenter import Presenter
from migration.legacy import LegacySource, row_to_record
from migration.read_routing import (
    ImageServiceReader,
    ImageServiceUnavailable,
    ReadRouter,
    RolloutConfig,
    Route,
    ServiceAnswer,
    rollout_bucket,
)
from migration.sandbox import free_port
from tests.conftest import PROJECT_ROOT
from tests.migration.conftest import Gallery
from tests.migration.misbehaving import MisbehavingServer

USERS = [f"user-{n}" for n in range(10_000)]
SPLIT_SCRIPT = """
import json, sys
from migration.read_routing import RolloutConfig
config = RolloutConfig(use_image_service=True, percentage=float(sys.argv[1]))
users = [f"user-{n}" for n in range(10_000)]
print(json.dumps([u for u in users if config.routes_to_image_service(u)]))
"""


def routed(percentage: float) -> list[str]:
    config = RolloutConfig(use_image_service=True, percentage=percentage)
    return [user for user in USERS if config.routes_to_image_service(user)]


@pytest.mark.parametrize(("percentage", "tolerance"), [(0, 0.0), (10, 1.5), (50, 1.5), (100, 0.0)])
def test_the_share_of_users_routed_to_the_image_service_matches_the_percentage(
    percentage: float, tolerance: float
) -> None:
    share = 100 * len(routed(percentage)) / len(USERS)

    assert abs(share - percentage) <= tolerance


def test_raising_the_percentage_only_adds_users() -> None:
    assert set(routed(10)) <= set(routed(50)) <= set(routed(100))


@pytest.mark.parametrize("percentage", [10, 50])
def test_the_split_is_the_same_in_another_process_with_another_hash_seed(percentage: int) -> None:
    result = subprocess.run(
        [sys.executable, "-c", SPLIT_SCRIPT, str(percentage)],
        capture_output=True,
        text=True,
        check=True,
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(PROJECT_ROOT)},
    )

    assert json.loads(result.stdout) == routed(percentage)


def test_a_users_bucket_is_a_sha256_value_not_pythons_hash() -> None:
    assert rollout_bucket("alice") == int.from_bytes(__import__("hashlib").sha256(b"alice").digest()[:8]) % 10_000


@pytest.mark.parametrize(
    "environ",
    [
        {"USE_IMAGE_SERVICE": "false", "ROLLOUT_PERCENTAGE": "100"},
        {"USE_IMAGE_SERVICE": "true", "ROLLOUT_PERCENTAGE": "0"},
        {},
    ],
)
def test_rollback_settings_send_every_read_to_postgresql_without_calling_the_service(environ: dict[str, str]) -> None:
    router = ReadRouter(RolloutConfig.from_environ(environ))
    calls: list[str] = []

    def from_service() -> str:
        calls.append("service")
        return "service"

    results = [router.read(user, from_service, lambda: "legacy") for user in USERS[:500]]

    assert calls == []
    assert {r.route for r in results} == {Route.LEGACY}


@pytest.mark.parametrize(
    "environ", [{"ROLLOUT_PERCENTAGE": "150"}, {"ROLLOUT_PERCENTAGE": "ten"}, {"USE_IMAGE_SERVICE": "maybe"}]
)
def test_an_invalid_rollout_setting_is_a_clear_error(environ: dict[str, str]) -> None:
    with pytest.raises(ValueError, match=r"USE_IMAGE_SERVICE|ROLLOUT_PERCENTAGE"):
        RolloutConfig.from_environ(environ)


# -- fallback against a misbehaving server, with the legacy read from PostgreSQL -------------


@pytest.fixture
def legacy_read(gallery: Gallery) -> Any:
    """Reads one seeded row from PostgreSQL, shaped like the Image Service's answer."""
    gallery.seed(1)
    image_id = gallery.ids()[0]
    presenter = Presenter("https://cdn.example")

    def read() -> dict[str, Any]:
        with LegacySource(gallery.dsn) as source:
            (row,) = source.rows_by_id([image_id])
        return presenter.image(row_to_record(row)).model_dump(mode="json", by_alias=True)

    read.image_id = image_id  # type: ignore[attr-defined]
    return read


def everyone() -> ReadRouter:
    return ReadRouter(RolloutConfig(use_image_service=True, percentage=100))


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("slow", "timeout"),
        ("error", "HTTP 503"),
        ("throttled", "HTTP 429"),
        ("cut_off", "response cut off"),
        ("bad_encoding", "undecodable response"),
        ("not_json", "HTTP 200 without a JSON body"),
        ("json_not_object", "HTTP 200 without a JSON object"),
    ],
)
def test_a_routed_read_falls_back_to_postgresql_when_the_service_misbehaves(
    legacy_read: Any, mode: str, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    with MisbehavingServer(mode, delay=1.0) as server:
        reader = ImageServiceReader(server.url, timeout=0.2)
        with caplog.at_level(logging.INFO, logger="gallery.read_routing"):
            result = everyone().read("user-0", lambda: reader.get_image(legacy_read.image_id, "token"), legacy_read)

    assert len(server.requests) == 1
    assert result.route is Route.FALLBACK
    assert result.reason == reason
    assert result.value["id"] == legacy_read.image_id
    assert result.value["status"] == "completed"
    decision = caplog.records[-1]
    assert (decision.route, decision.userId, decision.reason) == ("fallback", "user-0", reason)  # type: ignore[attr-defined]


def test_a_routed_read_falls_back_to_postgresql_when_the_connection_is_refused(legacy_read: Any) -> None:
    reader = ImageServiceReader(f"http://127.0.0.1:{free_port()}", timeout=0.5)

    result = everyone().read("user-0", lambda: reader.get_image(legacy_read.image_id, "token"), legacy_read)

    assert result.route is Route.FALLBACK
    assert result.reason == "connection error"
    assert result.value["id"] == legacy_read.image_id


def test_an_answer_from_the_service_is_used_and_a_404_is_an_answer_not_a_failure() -> None:
    legacy = ServiceAnswer(status=0, body="legacy")
    with MisbehavingServer("ok", body={"id": "from-service"}) as ok, MisbehavingServer("not_found") as missing:
        served = everyone().read("u", lambda: ImageServiceReader(ok.url).get_image("x", "t"), lambda: legacy)
        not_found = everyone().read("u", lambda: ImageServiceReader(missing.url).get_image("x", "t"), lambda: legacy)

    assert served.route is Route.IMAGE_SERVICE
    assert served.value.body == {"id": "from-service"}
    assert not_found.route is Route.IMAGE_SERVICE
    assert not_found.value.status == 404


def test_unavailable_is_the_only_failure_that_falls_back() -> None:
    def broken() -> str:
        raise RuntimeError("a bug in the caller is not hidden by the fallback")

    with pytest.raises(RuntimeError):
        everyone().read("u", broken, lambda: "legacy")
    assert everyone().read(
        "u", lambda: (_ for _ in ()).throw(ImageServiceUnavailable("x")), lambda: "legacy"
    ).value == ("legacy")
