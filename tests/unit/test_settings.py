"""Settings: one validated, frozen model; unsafe stage configurations are refused."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from chalicelib.settings import MIB, Settings, SettingsError

SECRET = "x" * 32
CURSOR = "c" * 32
JWKS = "https://cognito-idp.us-east-1.amazonaws.com/pool/.well-known/jwks.json"


def local(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "stage": "local",
        "auth_mode": "local",
        "local_jwt_secret": SECRET,
        "cursor_secret": CURSOR,
    }
    values.update(overrides)
    return Settings(**values)


def test_the_defaults_are_the_documented_limits() -> None:
    settings = local()

    assert settings.max_upload_bytes == 10 * MIB
    assert settings.upload_url_ttl_seconds == 15 * 60
    assert settings.idempotency_ttl_seconds >= 24 * 3600


@pytest.mark.parametrize("stage", ["dev", "staging", "prod", "Local"])
def test_local_auth_is_refused_outside_the_local_stage(stage: str) -> None:
    with pytest.raises(ValidationError, match="only allowed in the local stage"):
        Settings(stage=stage, auth_mode="local", local_jwt_secret=SECRET, cursor_secret=CURSOR)


@pytest.mark.parametrize("secret", ["", "short", "x" * 31])
def test_a_local_secret_shorter_than_32_characters_is_refused(secret: str) -> None:
    with pytest.raises(ValidationError, match="at least 32 characters"):
        local(local_jwt_secret=secret)


def test_a_32_character_local_secret_is_enough() -> None:
    assert local(local_jwt_secret="y" * 32).local_jwt_secret == "y" * 32


@pytest.mark.parametrize("url", ["", "http://cognito.example/jwks.json", "ftp://x"])
def test_jwks_auth_needs_an_https_key_set_url(url: str) -> None:
    with pytest.raises(ValidationError, match="https"):
        Settings(stage="prod", auth_mode="jwks", jwks_url=url, cursor_secret=CURSOR)


def test_jwks_auth_with_an_https_url_is_accepted_in_aws_stages() -> None:
    settings = Settings(stage="prod", auth_mode="jwks", jwks_url=JWKS, cursor_secret=CURSOR)

    assert settings.auth_mode == "jwks"


def test_the_default_stage_configuration_is_not_usable_without_a_secret() -> None:
    with pytest.raises(ValidationError):
        Settings()


@pytest.mark.parametrize(
    "overrides",
    [
        {"max_upload_bytes": 0},
        {"upload_url_ttl_seconds": 0},
        {"upload_url_ttl_seconds": 8 * 24 * 3600},
        {"idempotency_ttl_seconds": 3600},
        {"auth_mode": "anonymous"},
    ],
)
def test_values_outside_their_bounds_are_refused(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        local(**overrides)


def test_settings_are_frozen() -> None:
    settings = local()

    with pytest.raises(ValidationError):
        settings.max_upload_bytes = 1  # type: ignore[misc]


def test_from_environ_reads_upper_case_names_and_converts_types() -> None:
    settings = Settings.from_environ(
        {
            "STAGE": "local",
            "AUTH_MODE": "local",
            "LOCAL_JWT_SECRET": SECRET,
            "CURSOR_SECRET": CURSOR,
            "MAX_UPLOAD_BYTES": "2048",
            "USE_TRANSFER_ACCELERATION": "true",
            "TABLE_NAME": "T",
            "UNRELATED": "ignored",
        }
    )

    assert settings.max_upload_bytes == 2048
    assert settings.use_transfer_acceleration is True
    assert settings.table_name == "T"


def test_from_environ_turns_an_unusable_environment_into_a_settings_error() -> None:
    with pytest.raises(SettingsError):
        Settings.from_environ(
            {"STAGE": "prod", "AUTH_MODE": "local", "LOCAL_JWT_SECRET": SECRET, "CURSOR_SECRET": CURSOR}
        )


def test_from_environ_refuses_a_non_numeric_limit() -> None:
    with pytest.raises(SettingsError):
        Settings.from_environ(
            {"AUTH_MODE": "local", "LOCAL_JWT_SECRET": SECRET, "CURSOR_SECRET": CURSOR, "MAX_UPLOAD_BYTES": "ten"}
        )


def test_an_explicit_image_base_url_is_used_without_a_trailing_slash() -> None:
    assert local(image_base_url="https://d111.cloudfront.net/").public_image_base_url == "https://d111.cloudfront.net"
