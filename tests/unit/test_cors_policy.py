"""CORS_ALLOWED_ORIGINS: what the stage config may say, and which origins it lets in."""

from __future__ import annotations

import pytest

from chalicelib.api.cors import OriginPolicy
from chalicelib.settings import Settings, SettingsError
from tests.conftest import LOCAL_ENV


def _origins(value: str) -> tuple[str, ...]:
    return Settings.from_environ({**LOCAL_ENV, "CORS_ALLOWED_ORIGINS": value}).cors_allowed_origins


def test_the_list_is_comma_separated_and_empty_means_none() -> None:
    assert _origins(" https://gallery.example.com , http://localhost:* ") == (
        "https://gallery.example.com",
        "http://localhost:*",
    )
    assert _origins("") == ()
    assert (
        Settings.from_environ({k: v for k, v in LOCAL_ENV.items() if k != "CORS_ALLOWED_ORIGINS"}).cors_allowed_origins
        == ()
    )


@pytest.mark.parametrize(
    "value",
    [
        "*,https://gallery.example.com",  # '*' stands alone
        "https://gallery.example.com/",  # an origin has no path
        "https://gallery.example.com/app",
        "HTTPS://Gallery.example.com",  # browsers send it lower case: a capital never matches
        "gallery.example.com",  # no scheme
        "ftp://gallery.example.com",
        "https://*.example.com",  # no host wildcards
        "null",
    ],
)
def test_a_value_that_is_not_a_list_of_origins_is_refused_at_startup(value: str) -> None:
    with pytest.raises(SettingsError, match="CORS_ALLOWED_ORIGINS"):
        _origins(value)


LOCAL = OriginPolicy.of(("http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"))


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("http://localhost:5173", True),
        ("http://127.0.0.1:8000", True),
        ("http://[::1]:3000", True),
        ("http://localhost", True),  # port 80 is sent without a port
        ("https://localhost:5173", False),  # another scheme is another origin
        ("http://localhost.evil.example:5173", False),
        ("http://localhost:99999", False),
        ("http://localhost:", False),
        ("http://localhost:80abc", False),
        ("http://127.0.0.2:8000", False),
        ("null", False),
    ],
)
def test_any_port_entries_allow_that_scheme_and_host_on_any_port_only(origin: str, allowed: bool) -> None:
    assert LOCAL.allows(origin) is allowed
    assert LOCAL.allow_origin_header(origin) == (origin if allowed else None)


def test_exact_entries_match_exactly_and_star_answers_star_to_anyone() -> None:
    exact = OriginPolicy.of(("https://gallery.example.com",))
    assert exact.allow_origin_header("https://gallery.example.com") == "https://gallery.example.com"
    assert exact.allow_origin_header("https://gallery.example.com:443") is None
    assert exact.allow_origin_header(None) is None
    anyone = OriginPolicy.of(("*",))
    assert anyone.allow_origin_header("https://anything.example") == "*"
    assert anyone.allow_origin_header(None) == "*"
    assert not OriginPolicy.of(()).allows_cross_origin
