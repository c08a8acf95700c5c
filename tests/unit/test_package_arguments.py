"""What scripts/package_lambda.py refuses before building anything (no IO)."""

from __future__ import annotations

import pytest

from infra.package_lambda import parse_args


def test_the_local_stage_is_never_deployed(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as refused:
        parse_args(["--stage", "local", "--deploy"])
    assert refused.value.code == 2
    assert "never deployed" in capsys.readouterr().err


def test_an_aws_stage_may_be_deployed_and_the_local_one_packaged() -> None:
    assert parse_args(["--stage", "prod", "--deploy"]).deploy
    assert not parse_args(["--stage", "local"]).deploy
