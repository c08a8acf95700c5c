"""Commands against the local stack need no AWS profile (no IO: environment only)."""

from __future__ import annotations

import os

import pytest

from infra.stage_config import FAKE_AWS_ENVIRONMENT, use_local_credentials


def test_the_local_stage_gets_motos_placeholder_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in FAKE_AWS_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    use_local_credentials("local")
    assert {name: os.environ[name] for name in FAKE_AWS_ENVIRONMENT} == FAKE_AWS_ENVIRONMENT


def test_credentials_already_set_and_aws_stages_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "mine")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    use_local_credentials("local")
    assert os.environ["AWS_ACCESS_KEY_ID"] == "mine"
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    use_local_credentials("prod")
    assert "AWS_SECRET_ACCESS_KEY" not in os.environ
